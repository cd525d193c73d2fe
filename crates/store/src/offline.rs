//! The offline store: one Delta Lake table per asset under `<warehouse>/tables/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use deltalake_core::delta_datafusion::planner::DeltaPlanner;
use deltalake_core::operations::write::SchemaMode;
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sluice_core::AssetKind;
use url::Url;

use crate::content::{ContentHash, hashed_table};
use crate::copy;
use crate::split::SplitScan;
use crate::spread::{self, Spread};
pub use crate::writes::WriteMode;
use crate::writes::{
    commit_properties, same_columns, sorted, spread_asked, storable, writer_properties,
};
use crate::{Error, Result};

/// The key under which sluice writes its provenance into a Delta commit.
pub(crate) const COMMIT_KEY: &str = "sluice";

/// Which version of an asset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The newest committed version.
    Latest,
    /// A version number.
    Version(u64),
    /// The newest version committed at or before this time.
    Time(DateTime<Utc>),
}

/// What produced a version, written into its commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitMeta {
    /// Hash of the definition and of the inputs: equal means up to date.
    pub fingerprint: String,
    /// The run that wrote the version.
    pub run_id: i64,
    /// The versions of the input assets that were read.
    #[serde(default)]
    pub inputs: BTreeMap<String, u64>,
    /// The kind of asset that wrote the version: a name reused by another kind
    /// starts a history of its own ([`OfflineStore::history_of`]). `None` in
    /// versions written before sluice recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AssetKind>,
    /// The partition the commit replaced (`2024-01-05`); `None` when it
    /// replaced the whole table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// An incremental source's watermark: the greatest value of its
    /// incremental column among the rows read up to this version, as text
    /// (cast back to the column's type). In the same commit as the rows, so the
    /// two can never disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

/// One committed version of an asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Delta version number.
    pub version: u64,
    /// Commit time.
    pub committed_at: Option<DateTime<Utc>>,
    /// The Delta operation (`WRITE`, `CREATE TABLE`...).
    pub operation: String,
    /// Rows written by the commit.
    pub rows: Option<u64>,
    /// sluice's provenance, absent for commits made by other tools.
    pub meta: Option<CommitMeta>,
    /// The hash of the rows ([`ContentHash`]), known for the version a
    /// [`OfflineStore::write`] just made; `None` when read from the log.
    pub content: Option<String>,
}

/// The warehouse's tables.
#[derive(Debug, Clone)]
pub struct OfflineStore {
    root: PathBuf,
    newest: Arc<Newest>,
}

/// The newest commit of each table this process wrote or opened at its
/// latest version, kept so that a run does not load a Delta log again
/// (listing it, reading its commits, building a snapshot: about a
/// millisecond) when nothing was committed since. An entry stands only while
/// its commit file is the very file it was (size, modification time, inode)
/// and no next commit exists, so a commit by another process, or a table
/// removed and made again, is seen at the next look.
#[derive(Default)]
struct Newest(Mutex<HashMap<String, Known>>);

impl std::fmt::Debug for Newest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Newest")
    }
}

/// A table at its newest version, with that commit's file's stamp.
#[derive(Clone)]
struct Known {
    table: DeltaTable,
    info: VersionInfo,
    stamp: Stamp,
}

/// What tells one commit file from another with the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
        })
    }
}

impl OfflineStore {
    /// The store whose tables live in the folder `root`, one folder per asset.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            newest: Arc::default(),
        }
    }

    /// The file of commit `version` of `asset`'s table.
    fn commit_file(&self, asset: &str, version: u64) -> PathBuf {
        self.table_path(asset)
            .join("_delta_log")
            .join(format!("{version:020}.json"))
    }

    /// The table at its newest version, if this process holds it and nothing
    /// was committed to it since.
    fn known(&self, asset: &str) -> Option<Known> {
        let mut newest = self.newest.0.lock().unwrap_or_else(|p| p.into_inner());
        let known = newest.get(asset)?;
        let v = known.info.version;
        let current = Stamp::of(&self.commit_file(asset, v)).as_ref() == Some(&known.stamp)
            && !self.commit_file(asset, v + 1).exists();
        if current {
            Some(known.clone())
        } else {
            newest.remove(asset);
            None
        }
    }

    /// Remembers `table`, loaded or written at its newest version `info`.
    pub(crate) fn remember(&self, asset: &str, table: &DeltaTable, info: &VersionInfo) {
        let Some(stamp) = Stamp::of(&self.commit_file(asset, info.version)) else {
            return;
        };
        let known = Known {
            table: table.clone(),
            info: VersionInfo {
                content: None,
                ..info.clone()
            },
            stamp,
        };
        self.newest
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(asset.to_string(), known);
    }

    /// The table of `asset` to write its next version into: the newest held
    /// in memory, else loaded, else a new one.
    pub(crate) async fn for_writing(&self, asset: &str) -> Result<DeltaTable> {
        let url = self.url(asset)?;
        match self.known(asset) {
            Some(known) => Ok(known.table),
            None if self.exists(asset) => DeltaTable::try_from_url(url).await,
            None => DeltaTableBuilder::from_url(url).and_then(|b| b.build()),
        }
        .map_err(|source| Error::Write {
            asset: asset.to_string(),
            source,
        })
    }

    /// The folder of an asset's Delta table.
    pub fn table_path(&self, asset: &str) -> PathBuf {
        self.root.join(asset)
    }

    fn url(&self, asset: &str) -> Result<Url> {
        let path = self.table_path(asset);
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let path = path.canonicalize().map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Url::from_directory_path(&path).map_err(|()| Error::Io {
            path,
            source: std::io::Error::other("not an absolute path"),
        })
    }

    pub(crate) fn exists(&self, asset: &str) -> bool {
        self.table_path(asset).join("_delta_log").is_dir()
    }

    pub(crate) async fn open(&self, asset: &str, at: AsOf) -> Result<DeltaTable> {
        if !self.exists(asset) {
            return Err(Error::NotMaterialized {
                asset: asset.to_string(),
            });
        }
        if let Some(known) = self.known(asset) {
            match at {
                AsOf::Latest => return Ok(known.table),
                AsOf::Version(v) if v == known.info.version => return Ok(known.table),
                _ => {}
            }
        }
        let open_err = |source| Error::OpenTable {
            asset: asset.to_string(),
            source,
        };
        let builder = DeltaTableBuilder::from_url(self.url(asset)?).map_err(open_err)?;
        let builder = match at {
            AsOf::Latest | AsOf::Time(_) => builder,
            AsOf::Version(v) => builder.with_version(v),
        };
        let mut table = builder.build().map_err(open_err)?;
        let loaded = match at {
            AsOf::Time(t) => table.load_with_datetime(t).await,
            AsOf::Version(v) => table.load_version(v).await,
            AsOf::Latest => table.load().await,
        };
        // Delta resolves a time before the first commit to the first version;
        // that version did not exist yet at that time.
        let loaded = match (loaded, at) {
            (Ok(()), AsOf::Time(t)) => {
                let first = self.commits(asset, &table, Some(1)).await?;
                match first.first().and_then(|c| c.committed_at) {
                    Some(committed) if committed > t => Err(DeltaTableError::InvalidVersion(0)),
                    _ => Ok(()),
                }
            }
            (other, _) => other,
        };
        match loaded {
            Ok(()) => Ok(table),
            Err(e) => match at {
                AsOf::Latest => Err(open_err(e)),
                _ => {
                    let latest = self.latest(asset).await?;
                    let wanted = match at {
                        AsOf::Version(v) => format!("{v}"),
                        AsOf::Time(t) => {
                            format!("at or before {}", sluice_core::render::instant(t))
                        }
                        AsOf::Latest => String::new(),
                    };
                    Err(Error::NoSuchVersion {
                        asset: asset.to_string(),
                        wanted,
                        help: match latest {
                            Some(l) => format!(
                                "its versions go up to {} (see `sluice history {asset}`)",
                                l.version
                            ),
                            None => "it has no versions yet".into(),
                        },
                    })
                }
            },
        }
    }

    /// The newest version, or `None` if the asset was never materialized.
    pub async fn latest(&self, asset: &str) -> Result<Option<VersionInfo>> {
        if !self.exists(asset) {
            self.newest
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(asset);
            return Ok(None);
        }
        if let Some(known) = self.known(asset) {
            return Ok(Some(known.info));
        }
        let table = Box::pin(self.open(asset, AsOf::Latest)).await?;
        let newest = self
            .commits(asset, &table, Some(1))
            .await?
            .into_iter()
            .next();
        if let Some(info) = &newest {
            self.remember(asset, &table, info);
        }
        Ok(newest)
    }

    /// Every version, newest first.
    pub async fn history(&self, asset: &str) -> Result<Vec<VersionInfo>> {
        let table = self.open(asset, AsOf::Latest).await?;
        self.commits(asset, &table, None).await
    }

    /// The versions `kind` wrote under the name `asset`, newest first: down to,
    /// not including, the newest version another kind wrote. An asset renamed
    /// away leaves its versions in the table, and an asset of another kind that
    /// takes the name later must not show them as its own. A version with no
    /// recorded kind (another tool's commit, or one written before sluice
    /// recorded kinds) counts as `kind`'s.
    pub async fn history_of(&self, asset: &str, kind: AssetKind) -> Result<Vec<VersionInfo>> {
        Ok(own_versions(self.history(asset).await?, kind))
    }

    /// A DataFusion table over a version of the asset of kind `kind`: like
    /// [`OfflineStore::provider`], but a version another kind wrote under the
    /// same name is not this asset's ([`OfflineStore::history_of`]).
    pub async fn provider_of(
        &self,
        asset: &str,
        kind: AssetKind,
        at: AsOf,
        state: &SessionState,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = self.open(asset, at).await?;
        let version = table.version().unwrap_or(0);
        let theirs = |v: &VersionInfo| {
            v.meta
                .as_ref()
                .and_then(|m| m.kind)
                .is_some_and(|k| k != kind)
        };
        let other = match at {
            // The newest commit alone tells whether the newest version is ours.
            AsOf::Latest => self
                .commits(asset, &table, Some(1))
                .await?
                .into_iter()
                .find(|v| theirs(v))
                .and_then(|v| v.meta.and_then(|m| m.kind)),
            AsOf::Version(_) | AsOf::Time(_) => {
                let all = self.history(asset).await?;
                let own = own_versions(all.clone(), kind);
                let first = own.last().map(|v| v.version);
                if first.is_some_and(|f| version >= f) {
                    None
                } else {
                    let latest = own.first().map(|v| v.version);
                    let earlier = all
                        .iter()
                        .find(|v| v.version <= version && theirs(v))
                        .and_then(|v| v.meta.as_ref().and_then(|m| m.kind));
                    return Err(Error::NoSuchVersion {
                        asset: asset.to_string(),
                        wanted: match at {
                            AsOf::Time(t) => {
                                format!("at or before {}", sluice_core::render::instant(t))
                            }
                            _ => format!("{version}"),
                        },
                        help: format!(
                            "version {version} was written by an earlier {} named `{asset}`; {}",
                            earlier.map_or("asset", AssetKind::as_str),
                            match (first, latest) {
                                (Some(f), Some(l)) => format!(
                                    "this {kind}'s versions go from {f} to {l} (see `sluice history {asset}`)"
                                ),
                                _ => format!("this {kind} has no versions yet"),
                            }
                        ),
                    });
                }
            }
        };
        if other.is_some() {
            // The name's newest version belongs to the asset it named before.
            return Err(Error::NotMaterialized {
                asset: asset.to_string(),
            });
        }
        self.provider_over(asset, table, state).await
    }

    pub(crate) async fn commits(
        &self,
        asset: &str,
        table: &DeltaTable,
        limit: Option<usize>,
    ) -> Result<Vec<VersionInfo>> {
        let latest = table.version().unwrap_or(0);
        let infos: Vec<_> =
            table
                .history(limit)
                .try_collect()
                .await
                .map_err(|source| Error::OpenTable {
                    asset: asset.to_string(),
                    source,
                })?;
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(i, info)| {
                let version = info
                    .read_version
                    .map_or(latest.saturating_sub(i as u64), |v| v + 1);
                let rows = info
                    .info
                    .get("operationMetrics")
                    .and_then(|m| m.get("num_added_rows"))
                    .and_then(serde_json::Value::as_u64);
                let meta = info
                    .info
                    .get(COMMIT_KEY)
                    .and_then(|m| serde_json::from_value::<CommitMeta>(m.clone()).ok());
                VersionInfo {
                    content: None,
                    version,
                    committed_at: info.timestamp.and_then(DateTime::from_timestamp_millis),
                    operation: info.operation.unwrap_or_default(),
                    rows,
                    meta,
                }
            })
            .collect())
    }

    /// Writes the result of `plan` as the asset's new version, replacing the rows of
    /// the previous one (which stays readable by version). Nothing is visible until
    /// the commit; a crash before it leaves the previous version as it was.
    pub async fn write(
        &self,
        asset: &str,
        plan: LogicalPlan,
        state: &SessionState,
        meta: &CommitMeta,
    ) -> Result<VersionInfo> {
        self.write_where(asset, plan, state, meta, WriteMode::Whole)
            .await
            .map(|(info, _)| info)
    }

    /// Writes the result of `plan` into the asset's table as `mode` says, in
    /// one commit. For [`WriteMode::Where`] see [`OfflineStore::write_partition`].
    /// The version's `content` is the hash of the rows written, which is the
    /// table's only for [`WriteMode::Whole`] (the second value says whether
    /// the table was written whole). An append or merge that changes nothing
    /// makes no commit and gives `None`.
    pub async fn write_with(
        &self,
        asset: &str,
        plan: LogicalPlan,
        state: &SessionState,
        meta: &CommitMeta,
        mode: WriteMode,
    ) -> Result<Option<(VersionInfo, bool)>> {
        match mode {
            WriteMode::Merge { keys, insert_only } => {
                self.merge(asset, plan, state, meta, &keys, insert_only)
                    .await
            }
            mode => self
                .write_where(asset, plan, state, meta, mode)
                .await
                .map(Some),
        }
    }

    /// Writes the result of `plan` as the asset's new version replacing only
    /// the rows that match `predicate` (one partition), in one commit. Every row
    /// of `plan` must match it. When the table's columns differ from the
    /// plan's (the definition changed), the whole table is replaced instead,
    /// and the second value says so. The version's `content` is the hash of
    /// the rows written, the partition's (not the table's) when it is `false`.
    pub async fn write_partition(
        &self,
        asset: &str,
        plan: LogicalPlan,
        state: &SessionState,
        meta: &CommitMeta,
        predicate: Expr,
    ) -> Result<(VersionInfo, bool)> {
        self.write_where(asset, plan, state, meta, WriteMode::Where(predicate))
            .await
    }

    pub(crate) async fn write_where(
        &self,
        asset: &str,
        plan: LogicalPlan,
        state: &SessionState,
        meta: &CommitMeta,
        mode: WriteMode,
    ) -> Result<(VersionInfo, bool)> {
        let plan_err = Error::plan(asset);
        let plan = storable(plan).map_err(&plan_err)?;
        let schema = plan.schema().as_arrow().clone();
        let physical = state.create_physical_plan(&plan).await.map_err(&plan_err)?;
        let physical = keep_order(&plan, physical);
        let write_err = Error::write(asset);
        let table = self.for_writing(asset).await?;
        // A partition replaces its rows only where the table keeps its columns;
        // with other columns, every partition was stale anyway.
        let mode = match mode {
            WriteMode::Where(_) if !same_columns(&table, &schema) => WriteMode::Whole,
            mode => mode,
        };
        let partial = !matches!(mode, WriteMode::Whole);
        // Appended rows are not the table's: their hash is not its content.
        let appends = matches!(mode, WriteMode::Append);
        let spread = match mode {
            WriteMode::Whole => Spread::of(&table, &schema, true),
            WriteMode::Append => Spread::of(&table, &schema, false),
            WriteMode::Where(_) | WriteMode::Merge { .. } => None,
        };
        let (table, hash) = match spread {
            // One Parquet writer per stream of the plan (see `spread`).
            Some(how) => {
                // One stream stays one stream, in the order it comes in (a
                // sorted query's rows, through a contract's gate or not),
                // unless the plan itself deals its rows out (`spread_asked`).
                let streams = physical.output_partitioning().partition_count();
                let physical = if sorted(&plan) || (streams <= 1 && !spread_asked(&plan)) {
                    physical
                } else {
                    spread::over_cores(physical, state.config().target_partitions())
                        .map_err(&plan_err)?
                };
                tracing::debug!(
                    "writing `{asset}` ({how:?}) with {} writers",
                    physical.output_partitioning().partition_count()
                );
                let done = spread::write(table, asset, physical, state.task_ctx(), how, meta)
                    .await
                    .map_err(&write_err)?;
                (done.table, done.hash)
            }
            None => {
                tracing::debug!("writing `{asset}` through delta-rs's write");
                self.write_through_delta(asset, table, physical, state, meta, mode)
                    .await?
            }
        };
        let info = self
            .committed(asset, &table, hash, &schema, appends)
            .await?;
        Ok((info, !partial))
    }

    /// The version just committed to `table`, remembered as its newest, with
    /// the hash of the rows written as its content (not for an append, whose
    /// rows are not the table's).
    async fn committed(
        &self,
        asset: &str,
        table: &DeltaTable,
        hash: ContentHash,
        schema: &datafusion::arrow::datatypes::Schema,
        appends: bool,
    ) -> Result<VersionInfo> {
        let written = self.commits(asset, table, Some(1)).await?;
        if let Some(info) = written.first() {
            self.remember(asset, table, info);
        }
        let content = hash.finish(schema);
        written
            .into_iter()
            .next()
            .map(|v| VersionInfo {
                // With a partition, the hash of its rows, not the table's.
                content: (!appends).then_some(content),
                ..v
            })
            .ok_or_else(|| Error::NotMaterialized {
                asset: asset.to_string(),
            })
    }

    /// [`OfflineStore::write`] of rows that are exactly those of the Parquet
    /// `files`, read in order (a source stored unchanged): the files' encoded
    /// columns are copied as they are when the table can hold them so (see
    /// `copy`), sparing the decoding and encoding of every value; otherwise
    /// `plan`'s rows are written.
    pub async fn write_copies(
        &self,
        asset: &str,
        plan: LogicalPlan,
        files: &[PathBuf],
        state: &SessionState,
        meta: &CommitMeta,
    ) -> Result<VersionInfo> {
        let plan = storable(plan).map_err(Error::plan(asset))?;
        let schema = plan.schema().as_arrow().clone();
        let table = self.for_writing(asset).await?;
        let how = Spread::of(&table, &schema, true).zip(copy::indexed_columns(&table));
        let copyable = match how {
            Some((how, indexed)) => {
                let (files, schema) = (files.to_vec(), schema.clone());
                let root = self.table_path(asset);
                tokio::task::spawn_blocking(move || copy::copyable(&files, &schema, &root, indexed))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
                    .map(|files| (how, files))
            }
            None => Err("the table's columns or settings differ".to_string()),
        };
        match copyable {
            Ok((how, files)) => {
                tracing::debug!("writing `{asset}` as copies of its Parquet files");
                let cores = state.config().target_partitions();
                let done = copy::write(table, asset, &schema, files, how, meta, cores)
                    .await
                    .map_err(Error::write(asset))?;
                self.committed(asset, &done.table, done.hash, &schema, false)
                    .await
            }
            Err(why) => {
                tracing::debug!("writing `{asset}` by its rows, not as copies: {why}");
                self.write(asset, plan, state, meta).await
            }
        }
    }

    /// Writes `physical`'s rows into `table` through delta-rs's own write, as
    /// `mode` says: the writes [`spread`] does not take.
    async fn write_through_delta(
        &self,
        asset: &str,
        table: DeltaTable,
        physical: Arc<dyn ExecutionPlan>,
        state: &SessionState,
        meta: &CommitMeta,
        mode: WriteMode,
    ) -> Result<(DeltaTable, ContentHash)> {
        let plan_err = Error::plan(asset);
        let write_err = Error::write(asset);
        // The rows are hashed as they stream into the writer.
        let hash = Arc::new(Mutex::new(ContentHash::default()));
        // One stream in (a query ending in `ORDER BY` among them): written as one
        // stream, so the files keep its rows in the order written. With more
        // target partitions the writer's plan would deal the rows out round-robin.
        let one_stream = physical.output_partitioning().partition_count() <= 1;
        let plan = hashed_table(physical, hash.clone())
            .and_then(|t| LogicalPlanBuilder::scan(asset, provider_as_source(t), None)?.build())
            .map_err(&plan_err)?;
        // Delta's writer plans through its own extension nodes, so the session must
        // carry Delta's query planner on top of sluice's configuration.
        let mut state = SessionStateBuilder::new_from_existing(state.clone())
            .with_query_planner(DeltaPlanner::new());
        if one_stream && let Some(config) = state.config() {
            config.options_mut().execution.target_partitions = 1;
        }
        let state = state.build();
        let commit = commit_properties(meta, []).map_err(&write_err)?;
        let write = table
            .write(Vec::new())
            .with_input_plan(plan)
            .with_session_state(Arc::new(state))
            .with_writer_properties(writer_properties())
            .with_commit_properties(commit)
            .with_table_name(asset);
        let write = match mode {
            WriteMode::Where(p) => write
                .with_save_mode(SaveMode::Overwrite)
                .with_replace_where(p),
            WriteMode::Append => write.with_save_mode(SaveMode::Append),
            WriteMode::Whole | WriteMode::Merge { .. } => write
                .with_save_mode(SaveMode::Overwrite)
                .with_schema_mode(SchemaMode::Overwrite),
        };
        let table = write.await.map_err(&write_err)?;
        let hash = *hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok((table, hash))
    }

    /// A DataFusion table over a version of the asset.
    pub async fn provider(
        &self,
        asset: &str,
        at: AsOf,
        state: &SessionState,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = self.open(asset, at).await?;
        self.provider_over(asset, table, state).await
    }

    async fn provider_over(
        &self,
        asset: &str,
        table: DeltaTable,
        state: &SessionState,
    ) -> Result<Arc<dyn TableProvider>> {
        let open_err = |source| Error::OpenTable {
            asset: asset.to_string(),
            source,
        };
        table.update_datafusion_session(state).map_err(open_err)?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| open_err(DeltaTableError::from(e)))?;
        Ok(Arc::new(SplitScan::new(provider)))
    }
}

/// `physical`, planned from `plan`, as one stream in `plan`'s order when `plan`
/// ends in `ORDER BY`. DataFusion may deal a sorted result out round-robin to
/// the projection above it (the casts of `storable`), each partition still
/// sorted: the partitions are merged back into one sorted stream.
pub fn keep_order(plan: &LogicalPlan, physical: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if !sorted(plan) || physical.output_partitioning().partition_count() <= 1 {
        return physical;
    }
    match physical.output_ordering() {
        Some(ordering) => Arc::new(SortPreservingMergeExec::new(ordering.clone(), physical)),
        None => physical,
    }
}

/// `physical` (the plan of `plan`) dealt out to one stream per core when
/// `plan` asks so at its top (a source read from fewer files than cores) and
/// DataFusion's optimizer dropped that repartition: for a reader of the
/// streams that is not the store's write (a contract's gate, whose
/// validation and whose write then use every core).
pub fn spread_as_asked(
    plan: &LogicalPlan,
    physical: Arc<dyn ExecutionPlan>,
    cores: usize,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let streams = physical.output_partitioning().partition_count();
    if sorted(plan) || !spread_asked(plan) || streams >= cores {
        return Ok(physical);
    }
    spread::over_cores(physical, cores)
}

/// `history` (newest first) down to, not including, the newest version a kind
/// other than `kind` wrote.
fn own_versions(history: Vec<VersionInfo>, kind: AssetKind) -> Vec<VersionInfo> {
    history
        .into_iter()
        .take_while(|v| {
            v.meta
                .as_ref()
                .and_then(|m| m.kind)
                .is_none_or(|k| k == kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, RecordBatch};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// Writes `SELECT {x} AS x` as `asset`'s next version.
    async fn write(store: &OfflineStore, asset: &str, x: i64) -> VersionInfo {
        let ctx = SessionContext::new();
        let plan = ctx
            .sql(&format!("SELECT CAST({x} AS BIGINT) AS x"))
            .await
            .expect("plan")
            .logical_plan()
            .clone();
        store
            .write(asset, plan, &ctx.state(), &CommitMeta::default())
            .await
            .expect("write")
    }

    /// The one value of `x` in the asset's version `at`.
    async fn read(store: &OfflineStore, asset: &str, at: AsOf) -> i64 {
        let ctx = SessionContext::new();
        let provider = store
            .provider(asset, at, &ctx.state())
            .await
            .expect("provider");
        let batches: Vec<RecordBatch> = ctx
            .read_table(provider)
            .expect("read")
            .collect()
            .await
            .expect("collect");
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    }

    /// Two stores over one folder stand for two processes: what one commits,
    /// the other sees at its next look although it holds the table it loaded,
    /// also when the table is removed and made again with the same version.
    #[tokio::test]
    async fn the_newest_table_held_in_memory_gives_way_to_a_commit_made_elsewhere() {
        let dir = tempfile::tempdir().expect("dir");
        let (one, other) = (OfflineStore::new(dir.path()), OfflineStore::new(dir.path()));
        assert_eq!(write(&one, "t", 1).await.version, 0);
        assert_eq!(read(&one, "t", AsOf::Latest).await, 1);
        assert_eq!(
            one.latest("t").await.expect("latest").map(|v| v.version),
            Some(0)
        );

        assert_eq!(write(&other, "t", 2).await.version, 1);
        assert_eq!(
            one.latest("t").await.expect("latest").map(|v| v.version),
            Some(1)
        );
        assert_eq!(read(&one, "t", AsOf::Latest).await, 2);
        assert_eq!(read(&one, "t", AsOf::Version(0)).await, 1);
        // Written by this store, read at the version it just made.
        assert_eq!(write(&one, "t", 3).await.version, 2);
        assert_eq!(read(&one, "t", AsOf::Version(2)).await, 3);
        assert_eq!(read(&other, "t", AsOf::Latest).await, 3);

        std::fs::remove_dir_all(one.table_path("t")).expect("remove");
        assert_eq!(one.latest("t").await.expect("latest"), None);
        for x in [10, 11, 12] {
            write(&other, "t", x).await;
        }
        assert_eq!(
            one.latest("t").await.expect("latest").map(|v| v.version),
            Some(2)
        );
        assert_eq!(read(&one, "t", AsOf::Latest).await, 12);
    }
}
