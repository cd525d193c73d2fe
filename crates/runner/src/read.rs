//! Typed reads: one function per question a reader asks of a workspace — the
//! assets with their freshness, one asset's columns and versions, a stable page
//! of rows, bounded read-only SQL, online features of many entities, a batch
//! prediction, a run, the newest quality reports. The REST server calls these
//! and maps their results and [`ReadError`] to HTTP; it plans no query itself.
//!
//! Request values (entity keys, names) are compared as values with what the
//! stores hold, never spliced into SQL.

use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{SessionContext, col};
use futures::StreamExt;
use serde_json::{Map, Value};
use sluice_core::AssetKind;
use sluice_project::Definition;
use sluice_store::{AsOf, AttemptRecord, OnlineSnapshot, RunRecord};
use sluice_validate::ValidationReport;

use crate::{AssetState, Error, FeatureRecord, Workspace};

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
    /// The name is not a feature view.
    #[error("no feature view is called `{}`\n  help: the feature views are: {}", printable(name), views.join(", "))]
    NotAFeatureView {
        /// The name asked for.
        name: String,
        /// The feature views there are.
        views: Vec<String>,
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
    /// Reading a table's stored rows failed (a fault of the warehouse, not of the request).
    #[error("reading the rows of `{table}`: {message}")]
    ReadRows {
        /// The table.
        table: String,
        /// What went wrong.
        message: String,
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
            data_type: f.data_type().to_string(),
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
    /// What made it (`WRITE`, `TRAIN gbdt (promoted)`, `EXPORT path`).
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
    let description = ws
        .project
        .asset(&state.name)
        .and_then(|a| a.description.clone());
    AssetInfo { state, description }
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
                committed_at: Some(w.written_at.to_rfc3339()),
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
                committed_at: Some(v.created_at.to_rfc3339()),
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
        _ if state.version.is_none() => Vec::new(),
        _ => {
            let ctx = sluice_transform::session();
            let provider = ws.store.provider(name, AsOf::Latest, &ctx.state()).await?;
            columns_ = columns(&provider.schema());
            ws.store
                .history(name)
                .await?
                .into_iter()
                .map(|v| AssetVersion {
                    version: v.version,
                    committed_at: v.committed_at.map(|t| t.to_rfc3339()),
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

/// Whether rows can be ordered by a column of this type: nested types are
/// left out of a page's order (they cannot be compared).
fn orderable(t: &DataType) -> bool {
    !t.is_nested()
}

/// Rows `offset..offset + limit` of a table (an asset or `ASSET__quarantine`),
/// latest or as of a version or time (`as_of`, as `--as-of` reads it).
///
/// Pages are stable: the rows are ordered by every (comparable) column, so the
/// same request gives the same rows, and consecutive pages hold every row once.
pub async fn rows_page(
    ws: &Workspace,
    name: &str,
    as_of: Option<&str>,
    offset: usize,
    limit: usize,
    bounds: ReadBounds,
) -> Result<Vec<RecordBatch>, ReadError> {
    if !ws.tables().iter().any(|t| t == name) {
        return Err(unknown_asset(ws, name));
    }
    if limit > bounds.rows {
        return Err(ReadError::LimitTooHigh {
            limit,
            max: bounds.rows,
        });
    }
    let as_of = as_of.map_or(Ok(AsOf::Latest), crate::parse_as_of)?;
    let ctx = sluice_transform::session_with_memory_limit(bounds.memory);
    let provider = ws.store.provider(name, as_of, &ctx.state()).await?;
    let order: Vec<_> = provider
        .schema()
        .fields()
        .iter()
        .filter(|f| orderable(f.data_type()))
        .map(|f| col(datafusion::common::Column::from_name(f.name())).sort(true, true))
        .collect();
    let work = async {
        let df = ctx.read_table(provider)?;
        let df = if order.is_empty() {
            df
        } else {
            df.sort(order)?
        };
        df.limit(offset, Some(limit))?.collect().await
    };
    tokio::time::timeout(bounds.time, work)
        .await
        .map_err(|_| ReadError::Timeout { limit: bounds.time })?
        .map_err(|e| ReadError::ReadRows {
            table: name.to_string(),
            message: e.strip_backtrace(),
        })
}

/// The result of a bounded query.
#[derive(Debug, Clone)]
pub struct QueryPage {
    /// The result's columns.
    pub columns: Vec<ColumnInfo>,
    /// At most the limit's rows.
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub rows: usize,
    /// Whether the result had more rows than returned.
    pub truncated: bool,
}

/// Runs one read-only query (see [`crate::query_frame`]) and returns at most
/// `limit` rows (at most `bounds.rows`); the rest is never computed.
pub async fn query_page(
    ws: &Workspace,
    sql: &str,
    as_of: Option<&str>,
    limit: Option<usize>,
    bounds: ReadBounds,
) -> Result<QueryPage, ReadError> {
    let limit = limit.unwrap_or(bounds.rows).min(bounds.rows);
    let as_of = as_of.map_or(Ok(AsOf::Latest), crate::parse_as_of)?;
    let work = async {
        let ctx: SessionContext = sluice_transform::session_with_memory_limit(bounds.memory);
        let df = crate::query_frame(ws, sql, as_of, ctx).await?;
        let columns = columns(df.schema().as_arrow());
        let query = |e: datafusion::error::DataFusionError| Error::engine("query", e);
        let mut stream = df.execute_stream().await.map_err(query)?;
        let mut page = QueryPage {
            columns,
            batches: Vec::new(),
            rows: 0,
            truncated: false,
        };
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(query)?;
            let take = batch.num_rows().min(limit - page.rows);
            page.truncated = take < batch.num_rows();
            if take > 0 {
                page.batches.push(batch.slice(0, take));
                page.rows += take;
            }
            if page.truncated {
                break;
            }
        }
        Ok::<_, Error>(page)
    };
    Ok(tokio::time::timeout(bounds.time, work)
        .await
        .map_err(|_| ReadError::Timeout { limit: bounds.time })??)
}

/// The entity keys of a feature view.
fn view_keys<'a>(ws: &'a Workspace, view: &str) -> Result<&'a [String], ReadError> {
    match ws.project.asset(view).map(|a| &a.definition) {
        Some(Definition::Features(def)) => Ok(def.entity.as_slice()),
        _ => Err(ReadError::NotAFeatureView {
            name: view.to_string(),
            views: ws
                .project
                .assets
                .values()
                .filter(|a| matches!(a.definition, Definition::Features(_)))
                .map(|a| a.name.to_string())
                .collect(),
        }),
    }
}

/// The record of one entity of an online table keyed by `keys` (`what` names
/// the table in messages).
fn one_record(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    table: &str,
    what: String,
    keys: &[String],
    values: Vec<String>,
) -> Result<FeatureRecord, ReadError> {
    if values.len() != keys.len() {
        return Err(ReadError::WrongKeyCount {
            what,
            keys: keys.to_vec(),
            given: values.len(),
        });
    }
    let found = crate::lookup(ws, snapshot, table, std::slice::from_ref(&values))?;
    found
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| ReadError::NoRecord {
            what,
            keys: keys.to_vec(),
            values,
        })
}

/// One entity's latest features: `key` holds the key values in the view's key order.
pub fn read_features(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    view: &str,
    key: Vec<String>,
) -> Result<FeatureRecord, ReadError> {
    let keys = view_keys(ws, view)?;
    one_record(
        ws,
        snapshot,
        view,
        format!("feature view `{view}`"),
        keys,
        key,
    )
}

/// Per entity of a batch, per view asked for (in the order first named), the
/// view's record with only the features asked for, or `None`.
pub type BatchFeatures = Vec<Vec<(String, Option<FeatureRecord>)>>;

/// Several views' features of many entities, from one snapshot. `features`
/// names views (`VIEW`) or single features (`VIEW:feature`); an entity maps
/// every key column of every view to text (numbers and booleans are read as
/// their text). At most `max_entities`.
pub fn read_features_batch(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    features: &[String],
    entities: &[Map<String, Value>],
    max_entities: usize,
) -> Result<BatchFeatures, ReadError> {
    if entities.len() > max_entities {
        return Err(ReadError::TooManyEntities {
            given: entities.len(),
            max: max_entities,
        });
    }
    if features.is_empty() {
        return Err(ReadError::NoFeatures);
    }
    // View -> the features asked for (None: all), in the order first named.
    let mut wanted: Vec<(String, Option<Vec<String>>)> = Vec::new();
    for spec in features {
        let (view, feature) = match spec.split_once(':') {
            Some((v, f)) => (v, Some(f.to_string())),
            None => (spec.as_str(), None),
        };
        view_keys(ws, view)?;
        let at = match wanted.iter().position(|(v, _)| v == view) {
            Some(at) => at,
            None => {
                wanted.push((view.to_string(), Some(Vec::new())));
                wanted.len() - 1
            }
        };
        match (feature, &mut wanted[at].1) {
            (None, slot) => *slot = None,
            (Some(f), Some(list)) => list.push(f),
            (Some(_), None) => {}
        }
    }
    let mut out: BatchFeatures = vec![Vec::with_capacity(wanted.len()); entities.len()];
    for (view, only) in wanted {
        let meta = snapshot
            .meta(&view)?
            .ok_or_else(|| ReadError::ViewNotMaterialized { view: view.clone() })?;
        if let Some(f) = only.iter().flatten().find(|f| !meta.features.contains(f)) {
            return Err(ReadError::UnknownFeature {
                view,
                feature: f.clone(),
                features: meta.features,
            });
        }
        let names = view_keys(ws, &view)?;
        let keys = entities
            .iter()
            .enumerate()
            .map(|(index, entity)| {
                names
                    .iter()
                    .map(|name| match entity.get(name) {
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
                        _ => Err(ReadError::MissingKey {
                            index,
                            key: name.clone(),
                            view: view.clone(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let records = crate::lookup(ws, snapshot, &view, &keys)?;
        for (answer, record) in out.iter_mut().zip(records) {
            let record = record.map(|mut r| {
                if let Some(only) = &only {
                    r.features.retain(|k, _| only.contains(k));
                }
                r
            });
            answer.push((view.clone(), record));
        }
    }
    Ok(out)
}

/// One entity's batch prediction, as the online store holds it.
#[derive(Debug, Clone)]
pub struct BatchPrediction {
    /// The model.
    pub model: String,
    /// The entity: key column to value.
    pub entity: Map<String, Value>,
    /// The time the prediction is for (the spine row's time, RFC 3339).
    pub event_timestamp: String,
    /// The probability of the positive class (binary) or the value (regression).
    pub score: Option<f64>,
    /// `binary`: whether the score reaches the model's threshold.
    pub predicted: Option<bool>,
    /// The model version that scored.
    pub model_version: Option<u64>,
    /// The version of the predictions table it comes from.
    pub version: u64,
}

/// A model's batch prediction for one entity: `key` holds the key values in
/// the order of the predictions' entity columns.
pub fn read_prediction(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    model: &str,
    key: Vec<String>,
) -> Result<BatchPrediction, ReadError> {
    crate::model_def(ws, model)?;
    let table = sluice_project::models::predictions_name(model);
    let Some(Definition::Predictions(p)) = ws.project.asset(&table).map(|a| &a.definition) else {
        return Err(ReadError::NoPredictions {
            model: model.to_string(),
        });
    };
    let what = format!("`{table}` (the batch predictions of model `{model}`)");
    let record = one_record(ws, snapshot, &table, what, &p.entity, key)?;
    let f = &record.features;
    Ok(BatchPrediction {
        model: model.to_string(),
        score: f.get(crate::SCORE).and_then(Value::as_f64),
        predicted: f.get(crate::PREDICTED).and_then(Value::as_bool),
        model_version: f.get(crate::MODEL_VERSION).and_then(Value::as_u64),
        entity: record.entity,
        event_timestamp: record.event_timestamp,
        version: record.version,
    })
}

/// A run and its attempts, by the id as given (text, so that a bad one is a
/// [`ReadError::NotARunId`]).
pub fn run_detail(ws: &Workspace, id: &str) -> Result<(RunRecord, Vec<AttemptRecord>), ReadError> {
    let id: i64 = id.parse().map_err(|_| ReadError::NotARunId {
        given: id.to_string(),
    })?;
    let run = ws.metadata.run(id)?.ok_or(ReadError::NoSuchRun { id })?;
    Ok((run, ws.metadata.attempts(id)?))
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
