//! One seam per asset kind. Everything that differs between a source, a table, a
//! feature view, a model, its predictions, an export and a step — where its published
//! state lives, what its fingerprint hashes, how it is built, what an up-to-date
//! asset still has to do, how `check` plans it — is one [`Kind`] implementation
//! in this folder. `run`, `status` and `check` dispatch through [`of`]; staleness
//! is decided in one place, [`stale_reason`].
//!
//! Adding a kind: a `Definition` variant (crates/project), a module here with its
//! `Kind`, and one arm in [`of`].

mod collection;
pub(crate) use collection::utf8;
mod db_source;
pub(crate) mod delta;
mod export;
mod features;
mod incremental;
mod model;
mod network;
mod predictions;
mod push;
mod raw_sink;
mod source;
mod step;
mod table;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;
use sluice_core::{AssetName, AssetStatus};
use sluice_project::{Asset, Definition, Diagnostic, Project, SourceDef};
use sluice_store::VersionInfo;

use crate::Observer;
use crate::Workspace;
use crate::outcome::{AssetOutcome, Failure, failed};
use crate::partitions::PartitionScope;
use crate::pins::{Pins, pinned_fingerprint};

/// What an asset has published, as far as staleness and its downstream care.
#[derive(Debug, Clone, Default)]
pub(crate) struct Published {
    /// The version its downstream reads (a model's serving version).
    pub version: Option<u64>,
    /// Rows of the newest version (a model's training and validation rows).
    pub rows: Option<u64>,
    /// When the newest version was committed.
    pub committed_at: Option<DateTime<Utc>>,
    /// The fingerprint the newest version was built from (`None`: unknown, so
    /// the asset is rebuilt).
    pub fingerprint: Option<String>,
    /// For assets stored as Delta tables: the newest version's commit.
    pub delta: Option<VersionInfo>,
}

/// One build (or check that no build is needed) of one asset in a run.
pub(crate) struct Job<'a> {
    /// The warehouse and project.
    pub ws: &'a Workspace,
    /// The asset.
    pub asset: &'a Asset,
    /// The run.
    pub run_id: i64,
    /// The input versions the run pinned.
    pub pins: &'a Pins,
    /// The fingerprint the asset has now.
    pub fingerprint: String,
    /// What it has published.
    pub published: Option<Published>,
    /// When the job started.
    pub started: Instant,
    /// The partition it builds, for a partitioned asset.
    pub partition: Option<sluice_core::partition::Partition>,
    /// Who hears how far a long build is (a collection's embedding).
    pub progress: Option<&'a dyn Observer>,
}

impl Job<'_> {
    /// The version that stays published if the build fails.
    pub fn previous(&self) -> Option<u64> {
        self.published.as_ref().and_then(|p| p.version)
    }

    /// The newest Delta commit of the asset, if it is a table and was built.
    pub fn latest(&self) -> Option<&VersionInfo> {
        self.published.as_ref().and_then(|p| p.delta.as_ref())
    }

    /// The asset failed with `error`; its previous version stays published.
    pub(crate) fn failed(&self, error: impl Into<Failure>) -> AssetOutcome {
        failed(self.asset, self.started, error, self.previous())
    }

    /// The asset is up to date at its published version.
    pub fn up_to_date(&self) -> AssetOutcome {
        let p = self.published.clone().unwrap_or_default();
        AssetOutcome::new(
            self.asset,
            AssetStatus::UpToDate,
            p.version,
            p.rows.unwrap_or(0),
            self.started,
        )
    }
}

/// What one kind of asset does. Implemented once per kind, in this folder.
#[async_trait]
pub(crate) trait Kind: Send + Sync {
    /// What the asset has published (`None`: never built).
    async fn published(&self, ws: &Workspace) -> crate::Result<Option<Published>>;

    /// The fingerprint the asset has now, given its inputs' versions. An error
    /// means its input cannot be read.
    async fn fingerprint(
        &self,
        ws: &Workspace,
        asset: &Asset,
        pins: &Pins,
    ) -> Result<String, Failure> {
        Ok(pinned_fingerprint(ws, asset, pins))
    }

    /// Why a published version whose fingerprint still matches is out of date
    /// all the same (an export's file is gone).
    fn outdated(&self, _published: &Published) -> Option<String> {
        None
    }

    /// Why the asset is stale when its fingerprint changed, in words.
    fn changed(&self) -> &'static str {
        "its query or an input's version changed"
    }

    /// Why the fingerprint moved from `published` to `now`, when the kind can
    /// say it more precisely than [`Kind::changed`] (an export read as of the
    /// run: the clock crossed into a new tile).
    fn moved(&self, _published: &str, _now: &str) -> Option<String> {
        None
    }

    /// Whether its rows live outside sluice (a database, an API) and may
    /// change with no sign sluice can see: a partition of it that had not
    /// ended when it was built is built again at the next run.
    fn reads_elsewhere(&self) -> bool {
        false
    }

    /// Builds and publishes a new version.
    async fn build(&self, job: &Job<'_>) -> AssetOutcome;

    /// The asset is up to date: finishes what a crash may have left undone (the
    /// online store) and accounts for what its version's build did.
    async fn keep(&self, job: &Job<'_>) -> AssetOutcome {
        job.up_to_date()
    }

    /// Whether a `check` that gives no schema means the schema is not known
    /// before the asset is built (a step's output), rather than that the
    /// asset is not a table: its downstream is then not planned.
    fn schema_unknown_until_built(&self) -> bool {
        false
    }

    /// A source's rows as the connector reads them, for an incremental load
    /// to read past its watermark; `None` for kinds that are not sources.
    async fn rows(&self, _job: &Job<'_>) -> Result<Option<Arc<dyn TableProvider>>, Failure> {
        Ok(None)
    }

    /// Plans the asset against its inputs' schemas, registered in `ctx`; the
    /// schema it would publish, or `None` when it is not a table.
    async fn check(
        &self,
        ctx: &SessionContext,
        project: &Project,
    ) -> Result<Option<SchemaRef>, Diagnostic>;
}

/// The kind of `asset`: the one place that matches on a definition to dispatch.
pub(crate) fn of(asset: &Asset) -> Box<dyn Kind + '_> {
    let kind = connector(asset);
    match &asset.incremental {
        Some(inc) => Box::new(incremental::Incremental {
            inner: kind,
            asset,
            inc,
        }),
        None => kind,
    }
}

/// The kind of `asset` as its definition says, before `incremental`.
fn connector(asset: &Asset) -> Box<dyn Kind + '_> {
    match &asset.definition {
        Definition::Source(def) => match def.as_ref() {
            SourceDef::Files(def) => Box::new(source::Source { asset, def }),
            SourceDef::Push(def) => Box::new(push::Push { asset, def }),
            SourceDef::Postgres(def) | SourceDef::Mysql(def) | SourceDef::Sqlite(def) => {
                Box::new(db_source::DbSourceKind { asset, def })
            }
            SourceDef::Http(def) => Box::new(network::Network {
                asset,
                def: network::NetDef::Http(def),
            }),
            SourceDef::Crawl(def) => Box::new(network::Network {
                asset,
                def: network::NetDef::Crawl(def),
            }),
        },
        Definition::Table(def) => Box::new(table::Table { asset, def }),
        Definition::Features(def) => Box::new(features::Features { asset, def }),
        Definition::Predictions(def) => Box::new(predictions::Predictions { asset, def }),
        Definition::Export(def) => Box::new(export::Export {
            asset,
            def,
            gone: Default::default(),
        }),
        Definition::Model(def) => Box::new(model::Model { asset, def }),
        Definition::Step(def) => Box::new(step::Step { asset, def }),
        Definition::Collection(def) => Box::new(collection::Collection { asset, def }),
    }
}

/// Why an asset is stale, or `None` when it is up to date: never built; out of
/// date by its kind's own rule; an input that is itself stale (`status` only:
/// a run rebuilds that input first); a fingerprint that moved.
pub(crate) fn stale_reason(
    kind: &dyn Kind,
    published: Option<&Published>,
    stale_input: Option<&AssetName>,
    fingerprint: &Result<String, Failure>,
) -> Option<String> {
    let Some(published) = published else {
        return Some("never built".to_string());
    };
    if let Some(why) = kind.outdated(published) {
        return Some(why);
    }
    if let Some(input) = stale_input {
        return Some(format!("upstream `{input}` is stale"));
    }
    match fingerprint {
        Ok(fp) if published.fingerprint.as_ref() == Some(fp) => None,
        Ok(fp) => Some(
            published
                .fingerprint
                .as_deref()
                .and_then(|old| kind.moved(old, fp))
                .unwrap_or_else(|| kind.changed().to_string()),
        ),
        Err(e) => Some(format!("cannot read its files: {e}")),
    }
}

/// Brings one asset up to date in a run: builds it when it is stale, else
/// keeps it; a partitioned asset, partition by partition, those of `scope`.
pub(crate) async fn materialize(
    ws: &Workspace,
    asset: &Asset,
    run_id: i64,
    pins: &Pins,
    scope: PartitionScope,
    progress: Option<&dyn Observer>,
) -> AssetOutcome {
    let kind = of(asset);
    let started = Instant::now();
    let published = match kind.published(ws).await {
        Ok(p) => p,
        Err(e) => return failed(asset, started, e.to_string(), None),
    };
    if let Some(partitioning) = &asset.partitioned {
        let job = crate::partitions::PartitionJob {
            ws,
            kind: kind.as_ref(),
            asset,
            partitioning,
            run_id,
            pins,
        };
        return crate::partitions::materialize(&job, scope, progress, published, started).await;
    }
    let previous = published.as_ref().and_then(|p| p.version);
    let fingerprint = match kind.fingerprint(ws, asset, pins).await {
        Ok(fp) => fp,
        Err(e) => return failed(asset, started, e, previous),
    };
    let stale = stale_reason(
        kind.as_ref(),
        published.as_ref(),
        None,
        &Ok(fingerprint.clone()),
    );
    let job = Job {
        ws,
        asset,
        run_id,
        pins,
        fingerprint,
        published,
        started,
        partition: None,
        progress,
    };
    match stale {
        None => crate::recheck::recheck(ws, asset, run_id, kind.keep(&job).await).await,
        Some(why) => {
            tracing::debug!("building `{}`: {why}", asset.name);
            kind.build(&job).await
        }
    }
}

/// The columns of a schema checked plan, as an Arrow schema.
pub(crate) fn arrow_schema(plan: &datafusion::logical_expr::LogicalPlan) -> SchemaRef {
    Arc::new(plan.schema().as_arrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind whose own rule says it is out of date when `outdated` is set.
    struct Fake {
        outdated: bool,
    }

    #[async_trait]
    impl Kind for Fake {
        async fn published(&self, _ws: &Workspace) -> crate::Result<Option<Published>> {
            Ok(None)
        }
        fn outdated(&self, _published: &Published) -> Option<String> {
            self.outdated.then(|| "its file is missing".to_string())
        }
        async fn build(&self, _job: &Job<'_>) -> AssetOutcome {
            unreachable!("not built in these tests")
        }
        async fn check(
            &self,
            _ctx: &SessionContext,
            _project: &Project,
        ) -> Result<Option<SchemaRef>, Diagnostic> {
            Ok(None)
        }
    }

    fn published(fp: &str) -> Published {
        Published {
            version: Some(3),
            fingerprint: Some(fp.to_string()),
            ..Published::default()
        }
    }

    #[test]
    fn staleness_reasons_come_in_one_order() {
        let fresh = Fake { outdated: false };
        let gone = Fake { outdated: true };
        let input = AssetName::new("raw").expect("name");
        let same = Ok("a".to_string());
        let moved = Ok("b".to_string());
        let unreadable = Err(Failure::from("gone".to_string()));
        let reason = |k: &Fake, p: Option<&Published>, up: Option<&AssetName>, fp| {
            stale_reason(k, p, up, fp)
        };
        assert_eq!(reason(&fresh, Some(&published("a")), None, &same), None);
        assert_eq!(
            reason(&fresh, None, Some(&input), &same).as_deref(),
            Some("never built")
        );
        assert_eq!(
            reason(&gone, Some(&published("a")), Some(&input), &same).as_deref(),
            Some("its file is missing")
        );
        assert_eq!(
            reason(&fresh, Some(&published("a")), Some(&input), &moved).as_deref(),
            Some("upstream `raw` is stale")
        );
        assert_eq!(
            reason(&fresh, Some(&published("a")), None, &moved).as_deref(),
            Some("its query or an input's version changed")
        );
        assert_eq!(
            reason(&fresh, Some(&published("a")), None, &unreadable).as_deref(),
            Some("cannot read its files: gone")
        );
        let unknown = Published {
            fingerprint: None,
            ..published("a")
        };
        assert!(
            reason(&fresh, Some(&unknown), None, &same).is_some(),
            "a version without a recorded fingerprint is rebuilt"
        );
    }

    /// `as_of = "now"` views were fingerprinted without a time, so their windows
    /// never moved while the inputs stood still.
    #[test]
    fn now_views_go_stale_when_their_refresh_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = |refresh: &str| {
            format!(
                "[project]\nname = \"p\"\n\n[sources.events]\npath = \"events.csv\"\n\n\
                 [features.recent]\nsource = \"events\"\nentity = \"user\"\ntimestamp = \"ts\"\n\
                 as_of = \"now\"\n{refresh}\n\
                 [features.recent.aggregates]\nn = {{ agg = \"count\", window = \"7d\" }}\n\n\
                 [features.rolling]\nsource = \"events\"\nentity = \"user\"\ntimestamp = \"ts\"\n\n\
                 [features.rolling.aggregates]\nn = {{ agg = \"count\", window = \"7d\" }}\n"
            )
        };
        std::fs::write(
            dir.path().join("events.csv"),
            "user,ts\na,2024-01-01T00:00:00Z\n",
        )
        .expect("write");
        let kind_of = |project: &Project, name: &str| {
            project
                .assets
                .values()
                .find(|a| a.name.as_str() == name)
                .cloned()
                .expect("asset")
        };
        let built = |ago: chrono::Duration| Published {
            committed_at: Some(Utc::now() - ago),
            ..published("a")
        };

        std::fs::write(dir.path().join("sluice.toml"), toml("")).expect("write");
        let project = sluice_project::load(dir.path(), None).expect("loads");
        let now_view = kind_of(&project, "recent");
        let every_run = of(&now_view);
        assert!(
            every_run
                .outdated(&built(chrono::Duration::zero()))
                .is_some(),
            "without `refresh` every run moves the view's `now`"
        );
        let rolling = kind_of(&project, "rolling");
        assert_eq!(
            of(&rolling).outdated(&built(chrono::Duration::days(400))),
            None
        );

        std::fs::write(dir.path().join("sluice.toml"), toml("refresh = \"1h\"")).expect("write");
        let project = sluice_project::load(dir.path(), None).expect("loads");
        let hourly = kind_of(&project, "recent");
        let kind = of(&hourly);
        assert_eq!(kind.outdated(&built(chrono::Duration::minutes(10))), None);
        let why = kind
            .outdated(&built(chrono::Duration::minutes(61)))
            .expect("stale after its refresh");
        assert!(why.contains("`refresh` (1h)"), "{why}");
    }
}
