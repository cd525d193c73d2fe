//! Typed reads: one function per question a reader asks of a workspace — the
//! assets with their freshness, one asset's columns and versions, a stable page
//! of rows, bounded read-only SQL, online features of many entities, a batch
//! prediction, a run and its log lines (`runs.rs`), the newest quality reports, what `/metrics` reports
//! (`monitoring.rs`). The REST server calls these
//! and maps their results and [`ReadError`] to HTTP; it plans no query itself.
//!
//! Request values (entity keys, names) are compared as values with what the
//! stores hold, never spliced into SQL.

use std::time::Duration;

use datafusion::arrow::datatypes::Schema;
use sluice_core::AssetKind;
use sluice_store::AsOf;
use sluice_validate::ValidationReport;

mod explore;
mod exports;
mod monitoring;
mod online;
mod rows;
mod runs;
mod search;

pub use self::explore::{Series, Suggestion, explore_label, explore_series, explore_suggest};
pub use self::exports::{ExportCache, read_export_entry};
pub use self::monitoring::{Monitoring, monitoring};
pub use self::online::{
    BatchFeatures, BatchPrediction, read_features, read_features_batch, read_prediction,
};
pub use self::rows::{QueryPage, query_page, rows_head, rows_page};
pub use self::runs::{RunLogs, cancel_run, run_detail, run_logs};
pub use self::search::{SearchHit, SearchMode, SearchResult, ensure_collection, search};
use crate::{AssetState, Error, Workspace};

/// Why a read could not answer: the request names something that is not
/// there, asks too much, or the layer below failed ([`ReadError::Runner`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No asset (or quarantine table) has this name.
    #[error("no asset is called `{}`\n  help: the assets are: {}", name.chars().take(80).collect::<String>().escape_debug(), known.join(", "))]
    UnknownAsset {
        /// The name asked for.
        name: String,
        /// The tables there are.
        known: Vec<String>,
    },
    /// No explorer has this name.
    #[error("no explorer is called `{}`\n  help: {}", printable(name), if known.is_empty() { "add `[explorers.NAME]` to sluice.toml".to_string() } else { format!("the explorers are: {}", known.join(", ")) })]
    UnknownExplorer {
        /// The name asked for.
        name: String,
        /// The explorers there are.
        known: Vec<String>,
    },
    /// An explorer names a column its table does not have.
    #[error("explorer `{explorer}` reads column `{column}` of `{table}`, which has no such column\n  help: fix `[explorers.{explorer}]` in sluice.toml; the columns are: {}", columns.join(", "))]
    ExplorerColumn {
        /// The explorer.
        explorer: String,
        /// The table read.
        table: String,
        /// The column it names.
        column: String,
        /// The columns the table has.
        columns: Vec<String>,
    },
    /// A period's end that does not read as the time column's kind of time.
    #[error("`{}` is not a period's end here\n  help: {help}", printable(given))]
    BadPeriod {
        /// What was given.
        given: String,
        /// What to write instead.
        help: String,
    },
    /// The name is not a feature view.
    #[error("no feature view is called `{}`\n  help: the feature views are: {}", printable(name), views.join(", "))]
    NotAFeatureView {
        /// The name asked for.
        name: String,
        /// The feature views there are.
        views: Vec<String>,
    },
    /// The name is not a JSON export keyed by entity.
    #[error("no JSON export keyed by entity is called `{}`\n  help: {}", printable(name), if exports.is_empty() { "an export with a `.json` path and a key (the view's entity by default) is served here".to_string() } else { format!("the keyed exports are: {}", exports.join(", ")) })]
    NotAKeyedExport {
        /// The name asked for.
        name: String,
        /// The keyed JSON exports there are.
        exports: Vec<String>,
    },
    /// An export no run has written yet.
    #[error("export `{name}` has not been written yet\n  help: run `sluice run {name}`")]
    ExportNotWritten {
        /// The export.
        name: String,
    },
    /// An export's file cannot be read or is not JSON.
    #[error("export `{name}`: {} cannot be read: {reason}\n  help: run `sluice run {name}` to write it again", path.display())]
    ExportUnreadable {
        /// The export.
        name: String,
        /// Its file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A model without `[models.NAME.predictions]`.
    #[error(
        "model `{model}` has no batch predictions\n  help: add `[models.{model}.predictions]` with a spine and an entity"
    )]
    NoPredictions {
        /// The model.
        model: String,
    },
    /// A view that no run has written to the online store yet.
    #[error("feature view `{view}` has not been materialized yet\n  help: run `sluice run {view}`")]
    ViewNotMaterialized {
        /// The view.
        view: String,
    },
    /// `VIEW:feature` names a feature the view does not have.
    #[error("feature view `{view}` has no feature `{}`\n  help: its features are: {}", printable(feature), features.join(", "))]
    UnknownFeature {
        /// The view.
        view: String,
        /// The feature asked for.
        feature: String,
        /// The view's features.
        features: Vec<String>,
    },
    /// An entity of a batch lacks a key column of a view asked for.
    #[error(
        "entities[{index}] has no text or number `{key}`, a key of feature view `{view}`\n  help: every entity needs the keys of every view asked for"
    )]
    MissingKey {
        /// The entity's position in the request.
        index: usize,
        /// The key column.
        key: String,
        /// The view.
        view: String,
    },
    /// A path gives more or fewer key values than the table has key columns.
    #[error("{what} is keyed by {} ({} value{}), but the path gives {given}\n  help: give one path segment per key, percent-encoding `/` as %2F", keys.join(", "), keys.len(), if keys.len() == 1 { "" } else { "s" })]
    WrongKeyCount {
        /// The table, as named in messages.
        what: String,
        /// Its key columns.
        keys: Vec<String>,
        /// How many values were given.
        given: usize,
    },
    /// The online store holds no record for the entity.
    #[error("{what} holds no record for {}", keys.iter().zip(values).map(|(n, v)| format!("{n} = \"{}\"", printable(v))).collect::<Vec<_>>().join(", "))]
    NoRecord {
        /// The table, as named in messages.
        what: String,
        /// Its key columns.
        keys: Vec<String>,
        /// The values asked for.
        values: Vec<String>,
    },
    /// A batch request with no features.
    #[error("`features` is empty\n  help: name views (`VIEW`) or features (`VIEW:feature`)")]
    NoFeatures,
    /// More entities than one request may ask for.
    #[error(
        "{given} entities in one request; at most {max} are allowed\n  help: split the request"
    )]
    TooManyEntities {
        /// Entities asked for.
        given: usize,
        /// The bound.
        max: usize,
    },
    /// A page larger than the bound.
    #[error("limit {limit} is above the server's {max}\n  help: page with offset")]
    LimitTooHigh {
        /// Rows asked for.
        limit: usize,
        /// The bound.
        max: usize,
    },
    /// A read ran past its time bound and was stopped.
    #[error("the query ran longer than {} s and was stopped\n  help: narrow it, or run it with `sluice query`", limit.as_secs())]
    Timeout {
        /// The bound.
        limit: Duration,
    },
    /// A run id that is not a number.
    #[error("a run's id is a whole number, as listed by GET /v1/runs")]
    NotARunId {
        /// What was given.
        given: String,
    },
    /// No run has this number.
    #[error("there is no run {id}")]
    NoSuchRun {
        /// The number asked for.
        id: i64,
    },
    /// A run's logs asked for an asset the run has none of.
    #[error("run {id} has no asset `{}`\n  help: {}", printable(asset), if assets.is_empty() { "the run has no asset yet".to_string() } else { format!("its assets are: {}", assets.join(", ")) })]
    NotInRun {
        /// The run.
        id: i64,
        /// The asset asked for.
        asset: String,
        /// The assets the run has attempted or blocked.
        assets: Vec<String>,
    },
    /// A run asked to stop had already ended.
    #[error("run {id} already ended ({state}); there is nothing to cancel")]
    RunEnded {
        /// The run.
        id: i64,
        /// How it ended.
        state: &'static str,
    },
    /// Reading a table's stored rows failed (a fault of the warehouse, not of the request).
    #[error("reading the rows of `{table}`: {message}")]
    ReadRows {
        /// The table.
        table: String,
        /// What went wrong.
        message: String,
    },
    /// A search names an asset that is not a collection.
    #[error("no collection is called `{}`\n  help: {}", printable(name), if collections.is_empty() { "add `[collections.NAME]` to sluice.toml".to_string() } else { format!("the collections are: {}", collections.join(", ")) })]
    NotACollection {
        /// The name asked for.
        name: String,
        /// The collections there are.
        collections: Vec<String>,
    },
    /// A search mode the collection cannot answer yet.
    #[error(
        "collection `{collection}` cannot be searched by `{mode}`: its chunks are not embedded (`embedding = \"none\"`)\n  help: search with `--mode text` (BM25), or remove `embedding = \"none\"` from the collection and run it again"
    )]
    SearchMode {
        /// The collection.
        collection: String,
        /// The mode asked for.
        mode: &'static str,
    },
    /// A collection with no version whose indexes are whole.
    #[error(
        "collection `{collection}` has not been indexed yet\n  help: run `sluice run {collection}`"
    )]
    NotIndexed {
        /// The collection.
        collection: String,
    },
    /// The question could not be embedded (the model is missing, the service
    /// failed).
    #[error("collection `{collection}`: cannot embed the question: {message}")]
    Embedding {
        /// The collection.
        collection: String,
        /// The embedder's error, with its help.
        message: String,
    },
    /// A search's filter is not a predicate over the chunk table.
    #[error(
        "filter `{filter}` on collection `{collection}`: {reason}\n  help: write a SQL predicate over the chunk table's columns (document_id, heading_path, title, tokens, and the metadata columns), e.g. `document_id LIKE 'docs/tutorial/%'`"
    )]
    BadFilter {
        /// The collection.
        collection: String,
        /// The filter as given (shortened).
        filter: String,
        /// Why it could not be applied.
        reason: String,
    },
    /// The runner or a store below it failed.
    #[error(transparent)]
    Runner(#[from] Error),
}

impl From<sluice_store::Error> for ReadError {
    fn from(e: sluice_store::Error) -> Self {
        ReadError::Runner(e.into())
    }
}

/// A name from a request, shortened for messages.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// Bounds on one read.
#[derive(Debug, Clone, Copy)]
pub struct ReadBounds {
    /// Most rows returned.
    pub rows: usize,
    /// Longest it may run.
    pub time: Duration,
    /// Memory it may use before it spills or fails.
    pub memory: usize,
}

/// An asset, its description and how fresh it is.
#[derive(Debug, Clone)]
pub struct AssetInfo {
    /// Freshness, as `status` computes it.
    pub state: AssetState,
    /// Free text from the project.
    pub description: Option<String>,
    /// Its tags (`tags = [...]`), sorted.
    pub tags: Vec<String>,
}

/// A column of a table or a result.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// Its Arrow type, as text.
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

fn columns(schema: &Schema) -> Vec<ColumnInfo> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            name: f.name().clone(),
            data_type: sluice_core::type_name(f.data_type()),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// A version of an asset: a Delta commit, a registered model version or an
/// export's write.
#[derive(Debug, Clone)]
pub struct AssetVersion {
    /// The version number.
    pub version: u64,
    /// When it was made (RFC 3339).
    pub committed_at: Option<String>,
    /// What made it (`WRITE`, `TRAIN gbdt (promoted)`, `EXPORT path`, `RUN`).
    pub operation: String,
    /// Rows written.
    pub rows: Option<u64>,
    /// The run that made it.
    pub run_id: Option<i64>,
}

/// One asset in detail.
#[derive(Debug, Clone)]
pub struct AssetDetail {
    /// Freshness and description.
    pub info: AssetInfo,
    /// The assets it reads.
    pub inputs: Vec<String>,
    /// The latest version's columns (empty when never built, and for models and exports).
    pub columns: Vec<ColumnInfo>,
    /// Every version, newest first (an export: its newest write).
    pub versions: Vec<AssetVersion>,
}

/// Every asset with its freshness, in dependency order.
pub async fn asset_list(ws: &Workspace) -> Result<Vec<AssetInfo>, ReadError> {
    let states = crate::status(ws).await?;
    Ok(states.into_iter().map(|s| info(ws, s)).collect())
}

fn info(ws: &Workspace, state: AssetState) -> AssetInfo {
    let asset = ws.project.asset(&state.name);
    AssetInfo {
        description: asset.and_then(|a| a.description.clone()),
        tags: asset.map(|a| a.tags.clone()).unwrap_or_default(),
        state,
    }
}

fn unknown_asset(ws: &Workspace, name: &str) -> ReadError {
    ReadError::UnknownAsset {
        name: name.to_string(),
        known: ws.tables(),
    }
}

/// One asset: freshness, inputs, columns and versions.
pub async fn asset_detail(ws: &Workspace, name: &str) -> Result<AssetDetail, ReadError> {
    let asset = ws
        .project
        .asset(name)
        .ok_or_else(|| unknown_asset(ws, name))?;
    let state = crate::status(ws)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown_asset(ws, name))?;
    let mut columns_ = Vec::new();
    let versions = match asset.kind() {
        // A file, not a table: its newest write is its only version on record here.
        AssetKind::Export => ws
            .metadata
            .latest_export(name)?
            .into_iter()
            .map(|w| AssetVersion {
                version: w.version,
                committed_at: Some(sluice_core::render::instant(w.written_at)),
                operation: format!("EXPORT {}", w.path),
                rows: Some(w.rows),
                run_id: Some(w.run_id),
            })
            .collect(),
        // A model's versions are in the registry.
        AssetKind::Model => ws
            .metadata
            .model_versions(name)?
            .into_iter()
            .rev()
            .map(|v| AssetVersion {
                version: v.version,
                committed_at: Some(sluice_core::render::instant(v.created_at)),
                operation: format!(
                    "TRAIN {}{}",
                    v.learner,
                    if v.promoted {
                        " (promoted)"
                    } else {
                        " (not promoted)"
                    }
                ),
                rows: Some(v.train_rows + v.valid_rows),
                run_id: Some(v.run_id),
            })
            .collect(),
        // A step without output: its runs are its versions, with no rows.
        AssetKind::Step if !asset.is_table() => ws
            .metadata
            .steps(name)?
            .into_iter()
            .map(|s| AssetVersion {
                version: s.version,
                committed_at: Some(sluice_core::render::instant(s.ran_at)),
                operation: "RUN".to_string(),
                rows: None,
                run_id: Some(s.run_id),
            })
            .collect(),
        _ if state.version.is_none() => Vec::new(),
        _ => {
            let ctx = sluice_transform::session();
            let provider = ws.table_provider(name, AsOf::Latest, &ctx.state()).await?;
            columns_ = columns(&provider.schema());
            ws.table_history(name)
                .await?
                .into_iter()
                .map(|v| AssetVersion {
                    version: v.version,
                    committed_at: v.committed_at.map(sluice_core::render::instant),
                    operation: v.operation,
                    rows: v.rows,
                    run_id: v.meta.map(|m| m.run_id),
                })
                .collect()
        }
    };
    Ok(AssetDetail {
        info: info(ws, state),
        inputs: asset.inputs.iter().map(|i| i.to_string()).collect(),
        columns: columns_,
        versions,
    })
}

/// The newest validation report of every asset that has one, in dependency
/// order. A report that does not read as a [`ValidationReport`] is logged and
/// left out, so one bad row never hides the others.
pub fn latest_reports(ws: &Workspace) -> Result<Vec<(String, ValidationReport)>, ReadError> {
    let mut out = Vec::new();
    for name in &ws.project.order {
        let Some((run_id, json)) = ws.metadata.report(name.as_str(), None)? else {
            continue;
        };
        match serde_json::from_str::<ValidationReport>(&json) {
            Ok(report) => out.push((name.to_string(), report)),
            Err(e) => tracing::warn!(
                asset = name.as_str(),
                run = run_id,
                "the stored quality report does not read as a report: {e}"
            ),
        }
    }
    Ok(out)
}
