//! Online reads: features of one entity or of many, and batch predictions,
//! each from one snapshot of the online store.

use serde_json::{Map, Value};
use sluice_project::Definition;
use sluice_store::OnlineSnapshot;

use super::ReadError;
use crate::{FeatureRecord, Workspace};

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
    at: Option<i64>,
) -> Result<FeatureRecord, ReadError> {
    if values.len() != keys.len() {
        return Err(ReadError::WrongKeyCount {
            what,
            keys: keys.to_vec(),
            given: values.len(),
        });
    }
    let found = crate::lookup(ws, snapshot, table, std::slice::from_ref(&values), at)?;
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

/// One entity's features as of `at` (microseconds since the epoch; `None`:
/// now): `key` holds the key values in the view's key order.
pub fn read_features(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    view: &str,
    key: Vec<String>,
    at: Option<i64>,
) -> Result<FeatureRecord, ReadError> {
    let keys = view_keys(ws, view)?;
    one_record(
        ws,
        snapshot,
        view,
        format!("feature view `{view}`"),
        keys,
        key,
        at,
    )
}

/// Per entity of a batch, per view asked for (in the order first named), the
/// view's record with only the features asked for, or `None`.
pub type BatchFeatures = Vec<Vec<(String, Option<FeatureRecord>)>>;

/// Several views' features of many entities, from one snapshot, as of `at`
/// (microseconds since the epoch; `None`: now). `features` names views
/// (`VIEW`) or single features (`VIEW:feature`); an entity maps every key column
/// of every view to text (numbers and booleans are read as their text). At most
/// `max_entities`.
pub fn read_features_batch(
    ws: &Workspace,
    snapshot: &dyn OnlineSnapshot,
    features: &[String],
    entities: &[Map<String, Value>],
    max_entities: usize,
    at: Option<i64>,
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
        let records = crate::lookup(ws, snapshot, &view, &keys, at)?;
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
    let record = one_record(ws, snapshot, &table, what, &p.entity, key, None)?;
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
