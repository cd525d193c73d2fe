//! Online prediction: one entity's inputs assembled from the online store (its
//! feature views' records) and from the caller (spine columns, and any value
//! the caller overrides), scored by a loaded model in the request.

use serde::Serialize;
use serde_json::{Map, Value};
use sluice_model::{Frame, InputSource, Kind, Values};
use sluice_project::Task;
use sluice_store::OnlineSnapshot;

use crate::models::{LoadedModel, model_error};
use crate::online::online_entity;
use crate::{Result, Workspace};

/// One online prediction.
#[derive(Debug, Clone, Serialize)]
pub struct OnlinePrediction {
    /// The model.
    pub model: String,
    /// The version that scored.
    pub version: u64,
    /// The probability of the positive class (binary) or the value (regression).
    pub score: f64,
    /// `binary`: whether the score reaches the model's threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<bool>,
    /// The inputs as scored, by name (null where missing).
    pub inputs: Map<String, Value>,
    /// Feature views that hold no record for the entity (their features are missing).
    pub missing_views: Vec<String>,
    /// Inputs nobody gave: a spine column absent from `entity` and `values`, or
    /// a feature whose view holds no record for the entity. They score as
    /// missing values, which changes the score.
    pub missing_inputs: Vec<String>,
}

/// Scores one entity. `entity` holds key columns (and may hold spine columns);
/// `values` overrides inputs by name. With an empty `entity` no online record is
/// read: inputs not in `values` are missing.
pub fn predict_online(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    loaded: &LoadedModel,
    entity: &Map<String, Value>,
    values: &Map<String, Value>,
) -> Result<OnlinePrediction> {
    let name = loaded.version.model.as_str();
    let model = &loaded.model;
    if let Some(unknown) = values
        .keys()
        .find(|k| !model.inputs.iter().any(|i| &i.name == *k))
    {
        return Err(model_error(
            name,
            format!(
                "has no input `{unknown}`\n  help: its inputs are: {}",
                model.input_names().join(", ")
            ),
        ));
    }
    let mut records: Vec<(String, Option<Map<String, Value>>)> = Vec::new();
    let mut missing_views = Vec::new();
    let mut missing_inputs = Vec::new();
    let mut inputs = Map::new();
    let mut columns = Vec::with_capacity(model.inputs.len());
    for input in &model.inputs {
        let found = match values.get(&input.name) {
            Some(v) => Some(v.clone()),
            None => match &input.source {
                InputSource::Spine { column } => entity.get(column).cloned(),
                // Without an entity the caller gives raw values only.
                InputSource::View { .. } if entity.is_empty() => None,
                InputSource::View { view, feature } => {
                    if !records.iter().any(|(v, _)| v == view) {
                        let record = view_record(ws, snapshot, name, view, entity)?;
                        if record.is_none() {
                            missing_views.push(view.clone());
                        }
                        records.push((view.clone(), record));
                    }
                    records
                        .iter()
                        .find(|(v, _)| v == view)
                        .and_then(|(_, r)| r.as_ref())
                        .and_then(|r| r.get(feature).cloned())
                }
            },
        };
        let value = found.unwrap_or_else(|| {
            missing_inputs.push(input.name.clone());
            Value::Null
        });
        columns.push(as_values(name, &input.name, input.kind, &value)?);
        inputs.insert(input.name.clone(), value);
    }
    if !missing_inputs.is_empty() && crate::model_def(ws, name)?.require_inputs {
        return Err(crate::Error::MissingInputs {
            model: name.to_string(),
            inputs: missing_inputs,
        });
    }
    let frame = Frame {
        names: model.input_names(),
        columns,
        rows: 1,
    };
    let score = model
        .predict(&frame)
        .map_err(|e| model_error(name, e))?
        .first()
        .copied()
        .ok_or_else(|| model_error(name, "the model returned no score"))?;
    Ok(OnlinePrediction {
        model: name.to_string(),
        version: loaded.version.version,
        score,
        predicted: (model.task == Task::Binary).then_some(score >= model.threshold),
        inputs,
        missing_views,
        missing_inputs,
    })
}

/// The features of `view` for the entity, or `None` when the view holds no
/// record for it. Every key column of the view must be in `entity`.
fn view_record(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    model: &str,
    view: &str,
    entity: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>> {
    let keys = online_entity(ws, view)?;
    let mut key = Vec::with_capacity(keys.len());
    for k in keys {
        match entity.get(k) {
            Some(Value::String(s)) => key.push(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => key.push(v.to_string()),
            _ => {
                return Err(model_error(
                    model,
                    format!(
                        "reads feature view `{view}`, keyed by {}, and `entity` has no `{k}`\n  help: give every key column of the model's feature views in `entity`",
                        keys.join(", ")
                    ),
                ));
            }
        }
    }
    let found = crate::online::lookup(ws, snapshot, view, std::slice::from_ref(&key), None)?;
    Ok(found.into_iter().next().flatten().map(|r| r.features))
}

/// A JSON value as a one-row column of `kind`.
fn as_values(model: &str, input: &str, kind: Kind, value: &Value) -> Result<Values> {
    let bad = |what: &str| {
        model_error(
            model,
            format!(
                "input `{input}` is {kind}, and {what} was given",
                kind = kind.as_str()
            ),
        )
    };
    Ok(match (kind, value) {
        (Kind::Numeric, Value::Null) => Values::Numeric(vec![f64::NAN]),
        (Kind::Numeric, Value::Number(n)) => Values::Numeric(vec![
            n.as_f64().ok_or_else(|| bad("a number out of range"))?,
        ]),
        (Kind::Numeric, Value::Bool(b)) => Values::Numeric(vec![f64::from(u8::from(*b))]),
        (Kind::Numeric, Value::String(s)) => Values::Numeric(vec![
            s.trim()
                .parse::<f64>()
                .map_err(|_| bad("text that is not a number"))?,
        ]),
        (Kind::Categorical, Value::Null) => Values::Categorical(vec![None]),
        (Kind::Categorical, Value::String(s)) => Values::Categorical(vec![Some(s.clone())]),
        (Kind::Categorical, v @ (Value::Number(_) | Value::Bool(_))) => {
            Values::Categorical(vec![Some(v.to_string())])
        }
        (_, Value::Array(_) | Value::Object(_)) => return Err(bad("a list or an object")),
    })
}
