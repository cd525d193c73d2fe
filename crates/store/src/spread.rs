//! A write spread over one Parquet writer per stream of its plan, all committed
//! in one Delta commit.
//!
//! delta-rs 1.1 writes an unpartitioned table through a single writer task,
//! whatever the partitioning of its input: the Parquet encoding (and the zstd
//! compression) of every row runs on one core. The writer itself is public
//! ([`DeltaWriter`]), and so is the commit ([`CommitBuilder`], [`CreateBuilder`]),
//! so sluice drives one writer per stream here and commits their files at once.
//! A crash before the commit leaves only files no version lists, as delta-rs's
//! own write does.
//!
//! Only the writes whose commit is plain take this way: a new table (created
//! by delta-rs's own [`CreateBuilder`], which derives its protocol from the
//! columns), and a whole replacement of, or an append to, a table whose columns
//! are exactly the rows' (names, types and nullability, so no metadata
//! changes). Every other write (a partition's replacement, a merge, new
//! columns) goes through delta-rs's write.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::Schema;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, Partitioning};
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::schema::cast::normalize_for_delta;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add, StructType};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::operations::write::WriterStatsConfig;
use deltalake_core::operations::write::writer::{DeltaWriter, WriterConfig};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::table::config::DEFAULT_TARGET_FILE_SIZE;
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;

use crate::content::ContentHash;
use crate::offline::CommitMeta;
use crate::writes::{commit_properties, writer_properties};

/// The commit a spread write ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spread {
    /// The table does not exist yet: created with the rows.
    Create,
    /// The rows replace every file of the table.
    Replace,
    /// The rows are added to the table's.
    Append,
}

impl Spread {
    /// How a write of rows of `schema` into `table` is spread, when it can be:
    /// `whole` replaces the table, else the rows are appended.
    pub(crate) fn of(table: &DeltaTable, schema: &Schema, whole: bool) -> Option<Self> {
        // Types delta-rs would change on the way in (views, nanoseconds) are
        // for its own write; sluice's writes cast them before.
        let normalized = normalize_for_delta(&Arc::new(schema.clone()));
        if normalized.fields() != schema.fields() {
            return None;
        }
        let Ok(state) = table.snapshot() else {
            // Not loaded: no commit yet (for_writing loads a table that has one).
            // Columns Delta cannot hold are for delta-rs's write to refuse.
            let holds: Result<StructType, _> = schema.try_into_kernel();
            return (whole && holds.is_ok()).then_some(Spread::Create);
        };
        let have = state.snapshot().arrow_schema();
        let same = have.fields().len() == schema.fields().len()
            && have.fields().iter().zip(schema.fields()).all(|(a, b)| {
                a.name() == b.name()
                    && a.data_type() == b.data_type()
                    && a.is_nullable() == b.is_nullable()
            })
            && state.metadata().partition_columns().is_empty();
        match (same, whole) {
            (true, true) => Some(Spread::Replace),
            (true, false) => Some(Spread::Append),
            (false, _) => None,
        }
    }
}

/// `plan`'s rows dealt out batch by batch to one stream per core, when it has
/// another number of streams: fewer would leave cores idle; more (a union of
/// many inputs) would write as many small files at once.
pub(crate) fn over_cores(
    plan: Arc<dyn ExecutionPlan>,
    cores: usize,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let streams = plan.output_partitioning().partition_count();
    if streams == cores || streams == 0 {
        return Ok(plan);
    }
    Ok(Arc::new(RepartitionExec::try_new(
        plan,
        Partitioning::RoundRobinBatch(cores),
    )?))
}

/// What a spread write wrote and committed.
pub(crate) struct Spreaded {
    /// The table at the version committed.
    pub table: DeltaTable,
    /// The hash of the rows written.
    pub hash: ContentHash,
}

/// Writes every stream of `plan` (see [`over_cores`]) through a writer of its
/// own, each on a task of its own, and commits all their files in one commit
/// as `how` says, with sluice's `meta` and the write's metrics.
pub(crate) async fn write(
    table: DeltaTable,
    asset: &str,
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<TaskContext>,
    how: Spread,
    meta: &CommitMeta,
) -> DeltaResult<Spreaded> {
    let started = Instant::now();
    let schema = plan.schema();
    let stats = match table.snapshot() {
        Ok(state) => WriterStatsConfig::from_config(state.snapshot().table_configuration()),
        Err(_) => WriterStatsConfig::new(Default::default(), None),
    };
    let target_file_size = match table.snapshot() {
        Ok(state) => state
            .table_config()
            .target_file_size
            .unwrap_or(DEFAULT_TARGET_FILE_SIZE),
        Err(_) => DEFAULT_TARGET_FILE_SIZE,
    };
    let config = WriterConfig::new(
        schema.clone(),
        Vec::new(),
        Some(writer_properties()),
        Some(target_file_size),
        None,
        stats.num_indexed_cols,
        stats.stats_columns,
    );
    let store = table.log_store().object_store(None);

    let mut writers = JoinSet::new();
    for index in 0..plan.output_partitioning().partition_count() {
        let mut stream = plan.execute(index, ctx.clone())?;
        let mut writer = DeltaWriter::new(store.clone(), config.clone());
        writers.spawn(async move {
            let mut hash = ContentHash::default();
            let written = async {
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    hash.add(ContentHash::of(&batch)?);
                    writer.write(&batch).await?;
                }
                Ok::<_, DeltaTableError>(())
            }
            .await;
            match written {
                Ok(()) => Ok((writer.close().await?, hash)),
                Err(e) => {
                    // Files already closed stay as orphans no commit lists.
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        });
    }
    let mut adds: Vec<Add> = Vec::new();
    let mut hash = ContentHash::default();
    for (files, part) in joined(writers, &format!("a writer task of `{asset}`")).await? {
        adds.extend(files);
        hash.add(part);
    }

    commit(table, asset, &schema, how, adds, hash, meta, started).await
}

/// The results of every task of `tasks` (`what` they are, for an error), in
/// the order they end; the first failure cancels the others and is the answer.
pub(crate) async fn joined<T: 'static>(
    mut tasks: JoinSet<DeltaResult<T>>,
    what: &str,
) -> DeltaResult<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        let done = done
            .map_err(|e| DeltaTableError::Generic(format!("{what} failed: {e}")))
            .and_then(|r| r);
        match done {
            Ok(t) => out.push(t),
            Err(e) => {
                tasks.shutdown().await;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Commits the files `adds` (of rows of `schema`, hashing to `hash`) into
/// `table` as `how` says, in one commit with sluice's `meta` and the numbers
/// delta-rs's write puts in its commit (the write began at `started`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn commit(
    table: DeltaTable,
    asset: &str,
    schema: &Schema,
    how: Spread,
    adds: Vec<Add>,
    hash: ContentHash,
    meta: &CommitMeta,
    started: Instant,
) -> DeltaResult<Spreaded> {
    let removes: Vec<Action> = match (how, table.snapshot()) {
        (Spread::Replace, Ok(state)) => {
            state
                .snapshot()
                .file_views(table.log_store().as_ref(), None)
                .map_ok(|f| f.remove_action(true).into())
                .try_collect()
                .await?
        }
        _ => Vec::new(),
    };
    // The numbers delta-rs's write puts in its commit, which sluice's history
    // reads (`num_added_rows`).
    let metrics = serde_json::json!({
        "num_added_files": adds.len(),
        "num_removed_files": removes.len(),
        "num_partitions": 0,
        "num_added_rows": hash.rows(),
        "execution_time_ms": started.elapsed().as_millis() as u64,
    });
    let commit = commit_properties(meta, [("operationMetrics".to_string(), metrics)])?;
    let actions = removes.into_iter().chain(adds.into_iter().map(Action::Add));
    let table = match how {
        Spread::Create => {
            let columns: StructType = schema.try_into_kernel()?;
            CreateBuilder::new()
                .with_log_store(table.log_store())
                .with_table_name(asset)
                .with_columns(columns.fields().cloned())
                .with_actions(actions)
                .with_commit_properties(commit)
                .with_save_mode(SaveMode::ErrorIfExists)
                .await?
        }
        Spread::Replace | Spread::Append => {
            let state = table.snapshot()?;
            let mode = match how {
                Spread::Append => SaveMode::Append,
                _ => SaveMode::Overwrite,
            };
            let operation = DeltaOperation::Write {
                mode,
                partition_by: None,
                predicate: None,
            };
            let version = CommitBuilder::from(commit)
                .with_actions(actions.collect())
                .build(Some(state), table.log_store(), operation)
                .await?
                .version;
            // The one commit just made is applied to the state held.
            let mut table = table;
            table.update_incremental(Some(version)).await?;
            table
        }
    };
    Ok(Spreaded { table, hash })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, SchemaRef};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::offline::{AsOf, OfflineStore, VersionInfo, WriteMode};

    fn schema(nullable: bool) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, nullable),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    /// `parts` streams of `per` rows each, ids from `from`.
    fn batches(schema: &SchemaRef, from: i64, parts: i64, per: i64) -> Vec<Vec<RecordBatch>> {
        (0..parts)
            .map(|p| {
                let ids: Vec<i64> = (0..per).map(|i| from + p * per + i).collect();
                let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
                vec![
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(Int64Array::from(ids)),
                            Arc::new(StringArray::from(names)),
                        ],
                    )
                    .expect("batch"),
                ]
            })
            .collect()
    }

    /// Writes the streams as `asset`'s next version in `mode`.
    async fn write(
        store: &OfflineStore,
        asset: &str,
        streams: Vec<Vec<RecordBatch>>,
        mode: WriteMode,
    ) -> VersionInfo {
        // Four "cores", whatever the machine's.
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
        let schema = streams[0][0].schema();
        let table = MemTable::try_new(schema, streams).expect("table");
        let plan = ctx
            .read_table(Arc::new(table))
            .expect("read")
            .logical_plan()
            .clone();
        let meta = CommitMeta {
            fingerprint: format!("{asset}-{mode:?}"),
            ..Default::default()
        };
        store
            .write_with(asset, plan, &ctx.state(), &meta, mode)
            .await
            .expect("write")
            .expect("a version")
            .0
    }

    /// The ids of a version, sorted.
    async fn ids(store: &OfflineStore, asset: &str, at: AsOf) -> Vec<i64> {
        let ctx = SessionContext::new();
        let provider = store.provider(asset, at, &ctx.state()).await.expect("open");
        let batches = ctx
            .read_table(provider)
            .expect("read")
            .collect()
            .await
            .expect("collect");
        let mut ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The data files version `at` of `asset` lists.
    async fn files(store: &OfflineStore, asset: &str) -> usize {
        let table = deltalake_core::open_table(
            url::Url::from_directory_path(store.table_path(asset).canonicalize().expect("path"))
                .expect("url"),
        )
        .await
        .expect("open");
        table.snapshot().expect("loaded").log_data().num_files()
    }

    /// Created, replaced and appended to, each by one writer per stream in one
    /// commit; a changed column goes through delta-rs's write. Every version
    /// holds exactly its rows, keeps them after later versions, and records its
    /// rows and the hash of its rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_spread_over_writers_commit_once_and_keep_every_version() {
        let dir = tempfile::tempdir().expect("dir");
        let store = OfflineStore::new(dir.path());
        let s = schema(false);

        let streams = batches(&s, 0, 3, 1000);
        let expected = streams
            .iter()
            .flatten()
            .fold(ContentHash::default(), |mut h, b| {
                h.add(ContentHash::of(b).expect("hash"));
                h
            });
        let v0 = write(&store, "t", streams, WriteMode::Whole).await;
        assert_eq!((v0.version, v0.rows), (0, Some(3000)));
        assert_eq!(v0.content, Some(expected.finish(&s)));
        assert_eq!(
            v0.meta.as_ref().map(|m| m.fingerprint.as_str()),
            Some("t-Whole")
        );
        assert_eq!(
            ids(&store, "t", AsOf::Latest).await,
            (0..3000).collect::<Vec<_>>()
        );
        assert_eq!(files(&store, "t").await, 3, "one file per stream");

        // More streams than cores: one writer per core.
        let v1 = write(&store, "t", batches(&s, 5000, 6, 10), WriteMode::Whole).await;
        assert_eq!(
            (v1.version, v1.rows, v1.operation.as_str()),
            (1, Some(60), "WRITE")
        );
        assert_eq!(
            ids(&store, "t", AsOf::Latest).await,
            (5000..5060).collect::<Vec<_>>()
        );
        assert_eq!(
            files(&store, "t").await,
            4,
            "the replaced files are removed"
        );
        assert_eq!(ids(&store, "t", AsOf::Version(0)).await.len(), 3000);

        let v2 = write(&store, "t", batches(&s, 9000, 2, 5), WriteMode::Append).await;
        assert_eq!((v2.version, v2.rows), (2, Some(10)));
        let mut want: Vec<i64> = (5000..5060).chain(9000..9010).collect();
        want.sort_unstable();
        assert_eq!(ids(&store, "t", AsOf::Latest).await, want);

        // A nullable `id` changes the table's metadata: delta-rs's write.
        let n = schema(true);
        let v3 = write(&store, "t", batches(&n, 100, 2, 3), WriteMode::Whole).await;
        assert_eq!((v3.version, v3.rows), (3, Some(6)));
        assert_eq!(
            ids(&store, "t", AsOf::Latest).await,
            (100..106).collect::<Vec<_>>()
        );
        assert_eq!(ids(&store, "t", AsOf::Version(2)).await, want);
    }

    /// One stream stays one writer's, in its order, unless the plan deals its
    /// rows out round-robin at its top (a source read from one file).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_stream_is_spread_only_where_the_plan_asks() {
        let dir = tempfile::tempdir().expect("dir");
        let store = OfflineStore::new(dir.path());
        let s = schema(false);
        // One stream of four batches.
        let one: Vec<Vec<RecordBatch>> =
            vec![batches(&s, 0, 4, 10).into_iter().flatten().collect()];
        for (asset, asks, want) in [("kept", false, 1), ("spread", true, 4)] {
            let ctx =
                SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
            let table = MemTable::try_new(s.clone(), one.clone()).expect("table");
            let mut frame = ctx.read_table(Arc::new(table)).expect("read");
            if asks {
                frame = frame
                    .repartition(datafusion::logical_expr::Partitioning::RoundRobinBatch(4))
                    .expect("repartition");
            }
            let plan = frame.logical_plan().clone();
            store
                .write(asset, plan, &ctx.state(), &CommitMeta::default())
                .await
                .expect("write");
            assert_eq!(files(&store, asset).await, want, "{asset}");
            assert_eq!(
                ids(&store, asset, AsOf::Latest).await,
                (0..40).collect::<Vec<_>>()
            );
        }
    }

    /// A stream that fails leaves the published version as it was: no commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_stream_commits_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let store = OfflineStore::new(dir.path());
        let s = schema(false);
        write(&store, "t", batches(&s, 0, 2, 10), WriteMode::Whole).await;

        let ctx = SessionContext::new();
        let table = MemTable::try_new(s.clone(), batches(&s, 0, 2, 10)).expect("table");
        ctx.register_table("src", Arc::new(table))
            .expect("register");
        // Fails on the rows of one stream only: a division by zero.
        let plan = ctx
            .sql("SELECT CAST(10 / (id - 15) AS BIGINT) AS id, name FROM src")
            .await
            .expect("plan")
            .logical_plan()
            .clone();
        let failed = store
            .write("t", plan, &ctx.state(), &CommitMeta::default())
            .await;
        assert!(failed.is_err(), "{failed:?}");
        let latest = store.latest("t").await.expect("latest").expect("a version");
        assert_eq!(latest.version, 0);
        assert_eq!(
            ids(&store, "t", AsOf::Latest).await,
            (0..20).collect::<Vec<_>>()
        );
    }
}
