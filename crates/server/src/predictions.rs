//! Predictions: a model's batch predictions by entity (from the online store),
//! and online predictions computed in the request from the entity's online
//! features by the version that serves.
//!
//! Loaded models are cached per model; each request asks the registry which
//! version serves, so a promotion by a run (in this process or another) is
//! picked up by the next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_runner::LoadedModel;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, Json};
use crate::features::path_keys;

/// Loaded model versions, by model.
#[derive(Default)]
pub(crate) struct ModelCache(Mutex<HashMap<String, LoadedModel>>);

impl ModelCache {
    /// The serving version of `model`, loaded once per version.
    fn serving(&self, state: &AppState, model: &str) -> Result<LoadedModel, ApiError> {
        sluice_runner::model_def(&state.ws, model)?;
        let current = state.ws.metadata.serving_model_version(model)?;
        {
            let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = cache.get(model)
                && Some(hit.version.version) == current
            {
                return Ok(hit.clone());
            }
        }
        let loaded = sluice_runner::load_model(&state.ws, model, current)?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(model.to_string(), loaded.clone());
        Ok(loaded)
    }
}

/// One entity's batch prediction.
#[derive(Debug, Serialize, ToSchema)]
pub struct PredictionResponse {
    /// The model.
    pub model: String,
    /// The entity: key column to value.
    #[schema(value_type = Object)]
    pub entity: Map<String, Value>,
    /// The time the prediction is for (the spine row's time, RFC 3339).
    pub event_timestamp: String,
    /// The probability of the positive class (binary) or the value (regression).
    pub score: Option<f64>,
    /// `binary`: whether the score reaches the model's threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<bool>,
    /// The model version that scored.
    pub model_version: Option<u64>,
    /// The version of the predictions table it comes from.
    pub version: u64,
}

/// A model's batch prediction for one entity (reader).
///
/// The entity is the key value, or for several key columns the values in
/// their order, one path segment each. Percent-encode `/` in a key as `%2F`.
#[utoipa::path(get, path = "/v1/predictions/{model}/{entity}", tag = "predictions",
    params(("model" = String, Path, description = "The model"),
           ("entity" = String, Path, description = "The key value(s), one percent-encoded path segment per key column")),
    responses((status = 200, description = "The entity's prediction", body = PredictionResponse),
              (status = 400, description = "Wrong number of key values", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such model, no batch predictions, or none for the entity", body = ErrorBody)))]
pub(crate) async fn get_prediction(
    State(state): State<Arc<AppState>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<PredictionResponse>, ApiError> {
    let (model, key) = path_keys(uri.path(), "/v1/predictions/")?;
    let snapshot = state.online.snapshot()?;
    let p = sluice_runner::read_prediction(&state.ws, snapshot.as_ref(), &model, key)?;
    Ok(Json(PredictionResponse {
        model: p.model,
        entity: p.entity,
        event_timestamp: p.event_timestamp,
        score: p.score,
        predicted: p.predicted,
        model_version: p.model_version,
        version: p.version,
    }))
}

/// What to score online: one entity (`entity`, `values`), or many (`rows`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// The entity: every key column of the model's feature views (their online
    /// records are read), and any spine column the model reads.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"tailnum": "N14228", "carrier": "UA", "origin": "EWR", "dest": "IAH", "dep_hour": 5, "distance": 1400}))]
    pub entity: Map<String, Value>,
    /// Input values by name; they override what the entity and the online
    /// store give (a model can be scored from raw values alone).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
    /// Many rows scored in one request (at most the server's entity limit,
    /// 1,000 by default), each with its own `entity` and `values`; all read one
    /// snapshot of the online store. Not together with `entity` or `values`.
    #[serde(default)]
    pub rows: Option<Vec<PredictRow>>,
}

/// One row of a batch request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRow {
    /// As [`PredictRequest::entity`].
    #[serde(default)]
    #[schema(value_type = Object)]
    pub entity: Map<String, Value>,
    /// As [`PredictRequest::values`].
    #[serde(default)]
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
}

/// The answer of an online prediction.
#[derive(Debug, Serialize, ToSchema)]
pub struct PredictResponse {
    /// The model.
    pub model: String,
    /// The version that scored (the one that serves).
    pub version: u64,
    /// The probability of the positive class (binary) or the value (regression).
    pub score: f64,
    /// `binary`: whether the score reaches the model's threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<bool>,
    /// The inputs as scored, by name (null where missing).
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Feature views holding no record for the entity.
    pub missing_views: Vec<String>,
    /// Inputs nobody gave (scored as missing values; a model with
    /// `require_inputs = true` refuses them with 422 instead).
    pub missing_inputs: Vec<String>,
}

/// The answer of a batch request: one prediction per row, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PredictBatchResponse {
    /// The model.
    pub model: String,
    /// The version that scored every row.
    pub version: u64,
    /// The predictions, in the order of `rows`.
    pub predictions: Vec<PredictResponse>,
}

/// One prediction, or one per row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PredictAnswer {
    /// For `entity` and `values`.
    One(PredictResponse),
    /// For `rows`.
    Many(PredictBatchResponse),
}

impl From<sluice_runner::OnlinePrediction> for PredictResponse {
    fn from(p: sluice_runner::OnlinePrediction) -> Self {
        Self {
            model: p.model,
            version: p.version,
            score: p.score,
            predicted: p.predicted,
            inputs: p.inputs,
            missing_views: p.missing_views,
            missing_inputs: p.missing_inputs,
        }
    }
}

/// Scores one entity, or many rows, with the serving version, in the request (reader).
#[utoipa::path(post, path = "/v1/predict/{model}", tag = "predictions",
    params(("model" = String, Path, description = "The model")),
    request_body = PredictRequest,
    responses((status = 200, description = "The score, or one per row", body = PredictAnswer),
              (status = 400, description = "A key column or an input is of the wrong type, or too many rows", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such model, or no version promoted yet", body = ErrorBody),
              (status = 422, description = "The model requires inputs the request leaves missing", body = ErrorBody)))]
pub(crate) async fn predict(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    ApiJson(req): ApiJson<PredictRequest>,
) -> Result<Json<PredictAnswer>, ApiError> {
    let loaded = state.models.serving(&state, &model)?;
    let snapshot = state.online.snapshot()?;
    let Some(rows) = req.rows else {
        let p = sluice_runner::predict_online(
            &state.ws,
            snapshot.as_ref(),
            &loaded,
            &req.entity,
            &req.values,
        )?;
        return Ok(Json(PredictAnswer::One(p.into())));
    };
    if !req.entity.is_empty() || !req.values.is_empty() {
        return Err(ApiError::bad_request(
            "give either `rows` or `entity` and `values`, not both",
        ));
    }
    let limit = state.limits.entities;
    if rows.len() > limit {
        return Err(ApiError::bad_request(format!(
            "{} rows in one request; the limit is {limit}\n  help: split the rows over several requests",
            rows.len()
        )));
    }
    let mut predictions = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let p = sluice_runner::predict_online(
            &state.ws,
            snapshot.as_ref(),
            &loaded,
            &row.entity,
            &row.values,
        )
        .map_err(|e| ApiError::from(e).at(&format!("rows[{i}]")))?;
        predictions.push(PredictResponse::from(p));
    }
    Ok(Json(PredictAnswer::Many(PredictBatchResponse {
        model: loaded.version.model.clone(),
        version: loaded.version.version,
        predictions,
    })))
}
