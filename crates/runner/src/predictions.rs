//! A model's batch predictions: the rows of a spine joined point-in-time with
//! the model's features, scored by the version that serves, written as a table
//! (entity, time, score, predicted class, model version) and kept online per entity.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use sluice_model::frame::column;
use sluice_project::{PredictionsDef, Task};
use sluice_store::AsOf;

use crate::models::{examples, load_model, model_def, model_error};
use crate::online::OnlineKey;
use crate::{Result, Workspace};

/// The score column.
pub const SCORE: &str = "score";
/// The predicted class column (binary models).
pub const PREDICTED: &str = "predicted";
/// The model version column.
pub const MODEL_VERSION: &str = "model_version";

/// Scores the spine's rows and returns the plan of the predictions table, with
/// how its rows are keyed online.
pub(crate) async fn plan(
    ws: &Workspace,
    ctx: &SessionContext,
    def: &PredictionsDef,
    inputs: &BTreeMap<String, u64>,
) -> Result<(LogicalPlan, OnlineKey)> {
    let name = def.model.as_str();
    let mdef = model_def(ws, name)?;
    let version = inputs.get(name).copied();
    let loaded = load_model(ws, name, version)?;
    let spine_as_of = inputs
        .get(&def.spine)
        .map_or(AsOf::Latest, |v| AsOf::Version(*v));
    let mut spine_def = mdef.clone();
    // The prediction spine has no label.
    spine_def.label = None;
    let ex = examples(
        ws,
        name,
        &spine_def,
        &def.spine,
        def.timestamp.as_deref(),
        spine_as_of,
        Some(inputs),
    )
    .await?;
    let names = loaded.model.input_names();
    let frame = sluice_model::Frame::from_batches(&ex.batches, &names, "the prediction spine")
        .map_err(|e| model_error(name, e))?;
    let model = loaded.model.clone();
    let scores = tokio::task::spawn_blocking(move || model.predict(&frame))
        .await
        .map_err(|e| model_error(name, e))?
        .map_err(|e| model_error(name, e))?;

    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for key in def.entity.iter().chain(std::iter::once(&ex.time)) {
        let array = column(&ex.batches, key, &format!("the spine `{}`", def.spine))
            .map_err(|e| model_error(name, e))?;
        fields.push(Field::new(key, array.data_type().clone(), true));
        columns.push(array);
    }
    fields.push(Field::new(SCORE, DataType::Float64, false));
    columns.push(Arc::new(Float64Array::from(scores.clone())));
    if loaded.model.task == Task::Binary {
        let threshold = loaded.model.threshold;
        fields.push(Field::new(PREDICTED, DataType::Boolean, false));
        columns.push(Arc::new(BooleanArray::from(
            scores.iter().map(|s| *s >= threshold).collect::<Vec<_>>(),
        )));
    }
    fields.push(Field::new(MODEL_VERSION, DataType::Int64, false));
    columns.push(Arc::new(Int64Array::from(vec![
        loaded.version.version
            as i64;
        scores.len()
    ])));
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| model_error(name, e))?;
    let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| model_error(name, e))?;
    let plan = ctx
        .read_table(Arc::new(table))
        .map_err(|e| model_error(name, e))?
        .into_unoptimized_plan();
    Ok((
        plan,
        OnlineKey {
            entity: def.entity.clone(),
            timestamp: ex.time,
            created: None,
        },
    ))
}

/// How a stored predictions table is keyed online: its entity and its one time
/// column (for republishing a version the online store lags).
pub(crate) fn stored_key(def: &PredictionsDef, schema: &Schema) -> Option<OnlineKey> {
    let time = schema
        .fields()
        .iter()
        .find(|f| {
            matches!(
                f.data_type(),
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            ) && !def.entity.contains(f.name())
        })?
        .name()
        .clone();
    Some(OnlineKey {
        entity: def.entity.clone(),
        timestamp: time,
        created: None,
    })
}
