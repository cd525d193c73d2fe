//! Pushed rows: `POST /v1/push/{source}` on a source with `push = { ... }`.
//!
//! A request's rows are decoded against the source's declared columns (a row
//! that does not fit is refused with its position, and nothing of the
//! request is kept), then queued on the source's lane. One push at a time per
//! source writes: it takes every request queued by then (after waiting the
//! source's `window`) and writes them as one version — appended, or merged by
//! the key with the newest push of a key winning — through the contract's
//! gate. Each request is answered with its own rows' fate: the version, how
//! many were accepted, and the rows the contract rejected (also in the
//! source's quarantine), each with its position in the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, SortExpr, col, ident, lit,
};
use datafusion::prelude::Expr;
use futures::TryStreamExt;
use serde_json::{Map, Value};
use sluice_core::{AssetStatus, ErrorClass};
use sluice_project::{Definition, PushDef, SourceDef};
use sluice_store::{AsOf, WriteMode};
use tokio::sync::oneshot;

use crate::Workspace;
use crate::kinds::{self, Job, delta};
use crate::pins::Pins;

/// Columns the gate judges and quarantines with a pushed row but never
/// publishes: which request of a batch it came in, and its place there.
pub(crate) const HIDDEN: &str = "__sluice_";
const REQUEST: &str = "__sluice_request";
const ROW: &str = "__sluice_row";
const RANK: &str = "__sluice_rank";

/// What became of one request's rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushOutcome {
    /// The version that holds them (the one already published when nothing changed).
    pub version: Option<u64>,
    /// Rows published (merged rows that changed nothing included).
    pub accepted: u64,
    /// The rows the contract rejected, each with `row` (its position in the
    /// request), `rule`, `column` and `reason`.
    pub rejected: Vec<Map<String, Value>>,
}

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No source of that name.
    #[error("no source `{name}`\n  help: {help}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The push sources there are.
        help: String,
    },
    /// The asset is not a push source.
    #[error(
        "`{0}` is not a push source\n  help: declare it with `push = {{ ... }}` and its `columns` to push rows to it"
    )]
    NotPush(String),
    /// A row does not fit the source's columns; nothing was kept.
    #[error("{0}")]
    BadRows(String),
    /// Writing failed; nothing of the request was kept.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// Whether trying again may work.
        class: ErrorClass,
    },
}

/// One source's queue of pushes waiting to be written.
#[derive(Default)]
struct Lane {
    queue: Mutex<Vec<Pending>>,
    writing: tokio::sync::Mutex<()>,
}

struct Pending {
    rows: RecordBatch,
    answer: oneshot::Sender<Result<PushOutcome, PushError>>,
}

/// The lanes of this process's push sources.
#[derive(Default)]
pub struct PushLanes(Mutex<HashMap<String, Arc<Lane>>>);

impl std::fmt::Debug for PushLanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushLanes")
    }
}

impl PushLanes {
    fn lane(&self, source: &str) -> Arc<Lane> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(source.to_string())
            .or_default()
            .clone()
    }
}

/// Pushes `rows` (JSON objects) to the push source `source`.
pub async fn push(ws: &Workspace, source: &str, rows: &[Value]) -> Result<PushOutcome, PushError> {
    let def = push_def(ws, source)?;
    let batch = decode(&def.schema, &def.key, rows)?;
    let lane = ws.pushes.lane(source);
    let (answer, mut answered) = oneshot::channel();
    lane.queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Pending {
            rows: batch,
            answer,
        });
    let writing = lane.writing.lock().await;
    if let Ok(done) = answered.try_recv() {
        // Written by the push that held the lane before.
        return done;
    }
    if !def.window.is_zero() {
        tokio::time::sleep(def.window).await;
    }
    let pending = std::mem::take(
        &mut *lane
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    write_batch(ws, source, def, pending).await;
    drop(writing);
    answered.await.unwrap_or_else(|_| {
        Err(PushError::Failed {
            message: "the push was dropped before it was written".into(),
            class: ErrorClass::Transient,
        })
    })
}

fn push_def<'a>(ws: &'a Workspace, source: &str) -> Result<&'a PushDef, PushError> {
    let push_sources = || {
        let names: Vec<&str> = ws
            .project
            .assets
            .values()
            .filter(|a| matches!(&a.definition, Definition::Source(d) if matches!(d.as_ref(), SourceDef::Push(_))))
            .map(|a| a.name.as_str())
            .collect();
        if names.is_empty() {
            "this project has no push source (`push = { ... }` on a source)".to_string()
        } else {
            format!("the push sources are: {}", names.join(", "))
        }
    };
    let Some(asset) = ws.project.asset(source) else {
        return Err(PushError::Unknown {
            name: source.to_string(),
            help: push_sources(),
        });
    };
    match &asset.definition {
        Definition::Source(d) => match d.as_ref() {
            SourceDef::Push(def) => Ok(def),
            _ => Err(PushError::NotPush(source.to_string())),
        },
        _ => Err(PushError::NotPush(source.to_string())),
    }
}

/// The rows as a batch of the declared columns; a row that does not fit is
/// named by its position and column.
fn decode(schema: &SchemaRef, key: &[String], rows: &[Value]) -> Result<RecordBatch, PushError> {
    for (i, row) in rows.iter().enumerate() {
        let Some(object) = row.as_object() else {
            return Err(PushError::BadRows(format!(
                "rows[{i}] is not a JSON object\n  help: send an array of objects, one per row"
            )));
        };
        if let Some(unknown) = object.keys().find(|k| schema.field_with_name(k).is_err()) {
            return Err(PushError::BadRows(format!(
                "rows[{i}] has a column `{unknown}` the source does not declare\n  help: its columns are {}",
                columns(schema)
            )));
        }
        if let Some(k) = key
            .iter()
            .find(|k| object.get(k.as_str()).is_none_or(Value::is_null))
        {
            return Err(PushError::BadRows(format!(
                "rows[{i}] has no `{k}`, and rows are kept by their key\n  help: give every row its `{k}`"
            )));
        }
    }
    let decode_rows = |rows: &[Value]| -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.len().max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        decoder.serialize(rows).map_err(|e| e.to_string())?;
        Ok(decoder
            .flush()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
    };
    decode_rows(rows).map_err(|e| {
        // Which row: the first that does not decode alone.
        let at = rows
            .iter()
            .position(|r| decode_rows(std::slice::from_ref(r)).is_err())
            .map_or(String::new(), |i| format!("rows[{i}]: "));
        PushError::BadRows(format!(
            "{at}{e}\n  help: the source's columns are {}",
            columns(schema)
        ))
    })
}

fn columns(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}` {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the queued requests as one version and answers each.
async fn write_batch(ws: &Workspace, source: &str, def: &PushDef, pending: Vec<Pending>) {
    if pending.is_empty() {
        return;
    }
    let result = write_rows(ws, source, def, &pending).await;
    for (i, p) in pending.into_iter().enumerate() {
        let answer = match &result {
            Ok((version, rejected)) => {
                let mine: Vec<Map<String, Value>> = rejected
                    .iter()
                    .filter(|(request, _)| *request == i)
                    .map(|(_, row)| row.clone())
                    .collect();
                Ok(PushOutcome {
                    version: *version,
                    accepted: (p.rows.num_rows() - mine.len()) as u64,
                    rejected: mine,
                })
            }
            Err(e) => Err(PushError::Failed {
                message: e.message.clone(),
                class: e.class,
            }),
        };
        // A request whose client went away is not answered.
        let _ = p.answer.send(answer);
    }
}

/// The rejected rows of a write, with the request each came in.
type Rejected = Vec<(usize, Map<String, Value>)>;

async fn write_rows(
    ws: &Workspace,
    source: &str,
    def: &PushDef,
    pending: &[Pending],
) -> Result<(Option<u64>, Rejected), crate::outcome::Failure> {
    let Some(asset) = ws.project.asset(source) else {
        return Err(format!("no source `{source}`").into());
    };
    let batch = numbered(def, pending).map_err(|e| crate::outcome::Failure::of(&e))?;
    let plan = plan(def, batch, !asset.contract.is_empty())
        .map_err(|e| crate::outcome::Failure::of(&e))?;
    let kind = kinds::of(asset);
    let published = kind.published(ws).await.map_err(|e| e.to_string())?;
    let quarantine = asset.name.quarantine();
    let before = ws
        .store
        .latest(&quarantine)
        .await
        .ok()
        .flatten()
        .map(|v| v.version);
    let mode = match (published.is_some(), def.key.is_empty()) {
        (false, _) => WriteMode::Whole,
        (true, true) => WriteMode::Append,
        (true, false) => WriteMode::Merge {
            keys: def.key.clone(),
            insert_only: false,
        },
    };
    let pins = Pins::new();
    let job = Job {
        ws,
        asset,
        run_id: 0,
        pins: &pins,
        fingerprint: asset.fingerprint.clone(),
        published,
        started: Instant::now(),
        partition: None,
        progress: None,
    };
    let ctx = sluice_transform::session();
    let outcome = delta::write_with(&job, &ctx, plan, mode, None).await;
    if outcome.status == AssetStatus::Failed {
        return Err(crate::outcome::Failure {
            message: outcome.error.unwrap_or_default(),
            class: outcome.class.unwrap_or(ErrorClass::Permanent),
        });
    }
    let mut rejected = Vec::new();
    if outcome.rows_quarantined > 0
        && let Some(q) = ws.store.latest(&quarantine).await.ok().flatten()
        && Some(q.version) != before
    {
        rejected = read_rejected(ws, &quarantine, q.version).await?;
    }
    Ok((outcome.version, rejected))
}

/// The requests' rows in one batch, each with its request and position.
fn numbered(def: &PushDef, pending: &[Pending]) -> datafusion::error::Result<RecordBatch> {
    let mut fields: Vec<Field> = def
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(REQUEST, DataType::UInt32, false));
    fields.push(Field::new(ROW, DataType::UInt32, false));
    let schema = Arc::new(Schema::new(fields));
    let batches = pending
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let n = p.rows.num_rows();
            let mut columns: Vec<ArrayRef> = p.rows.columns().to_vec();
            columns.push(Arc::new(UInt32Array::from(vec![i as u32; n])));
            columns.push(Arc::new(UInt32Array::from_iter_values(0..n as u32)));
            RecordBatch::try_new(schema.clone(), columns)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(concat_batches(&schema, &batches)?)
}

/// The rows to write: with a key, the newest push of each key; the hidden
/// columns kept only for the gate (which drops them before publishing).
fn plan(def: &PushDef, batch: RecordBatch, gated: bool) -> datafusion::error::Result<LogicalPlan> {
    let schema = batch.schema();
    let table = MemTable::try_new(schema.clone(), vec![vec![batch]])?;
    let mut plan = LogicalPlanBuilder::scan("pushed", provider_as_source(Arc::new(table)), None)?;
    if !def.key.is_empty() {
        let rank = row_number()
            .partition_by(def.key.iter().map(ident).collect())
            .order_by(vec![
                SortExpr::new(col(REQUEST), false, false),
                SortExpr::new(col(ROW), false, false),
            ])
            .build()?
            .alias(RANK);
        plan = plan.window(vec![rank])?.filter(col(RANK).eq(lit(1u64)))?;
    }
    let keep: Vec<Expr> = schema
        .fields()
        .iter()
        .filter(|f| gated || !f.name().starts_with(HIDDEN))
        .map(|f| ident(f.name()))
        .collect();
    plan.project(keep)?.build()
}

/// The rows of quarantine version `version`, by request, as JSON objects
/// with `row` for their position in the request.
async fn read_rejected(
    ws: &Workspace,
    quarantine: &str,
    version: u64,
) -> Result<Rejected, crate::outcome::Failure> {
    let ctx = sluice_transform::session();
    let provider = ws
        .store
        .provider(quarantine, AsOf::Version(version), &ctx.state())
        .await
        .map_err(|e| e.to_string())?;
    let batches: Vec<RecordBatch> = ctx
        .read_table(provider)
        .map_err(|e| crate::outcome::Failure::of(&e))?
        .execute_stream()
        .await
        .map_err(|e| crate::outcome::Failure::of(&e))?
        .try_collect()
        .await
        .map_err(|e| crate::outcome::Failure::of(&e))?;
    let rows = crate::export::json_rows(&batches).map_err(|e| crate::outcome::Failure::of(&e))?;
    let mut out = Vec::new();
    for mut row in rows {
        let request = row
            .remove(REQUEST)
            .and_then(|v| v.as_u64())
            .unwrap_or_default() as usize;
        let position = row.remove(ROW).unwrap_or(Value::Null);
        row.remove("run_id");
        let mut answer = Map::new();
        answer.insert("row".into(), position);
        answer.append(&mut row);
        out.push((request, answer));
    }
    out.sort_by_key(|(request, row)| (*request, row.get("row").and_then(Value::as_u64)));
    Ok(out)
}
