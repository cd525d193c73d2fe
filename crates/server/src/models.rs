//! Models: the registry over HTTP — each model's versions, validation metrics,
//! feature importance and the version that serves (reader).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use serde::Serialize;
use sluice_runner::ModelInfo;
use sluice_store::ModelVersion;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Json};

/// A model and its serving version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelSummary {
    /// The model.
    pub name: String,
    /// `binary` or `regression`.
    pub task: String,
    /// `gbdt`, `logistic`, `linear` or `onnx`.
    pub learner: String,
    /// The version that serves (the newest promoted one), if any.
    pub serving_version: Option<u64>,
    /// The newest version, promoted or not.
    pub newest_version: Option<u64>,
    /// The serving version's validation metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Its batch predictions asset, if any.
    pub predictions: Option<String>,
}

/// The project's models.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// By name.
    pub models: Vec<ModelSummary>,
}

/// One input's share of a version's importance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Importance {
    /// The input (a spine column or `view:feature`).
    pub input: String,
    /// Its importance (gain for trees, |coefficient| for linear models).
    pub importance: f64,
}

/// One trained (or imported) version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelVersionBody {
    /// Its number (1, 2, ...).
    pub version: u64,
    /// The run that made it.
    pub run_id: i64,
    /// When (RFC 3339).
    pub created_at: String,
    /// The learner.
    pub learner: String,
    /// The versions of the spine and feature views it was trained on.
    pub inputs: BTreeMap<String, u64>,
    /// Training rows.
    pub train_rows: u64,
    /// Validation rows.
    pub valid_rows: u64,
    /// Validation rows start at this time, if the split is by time.
    pub valid_from: Option<String>,
    /// Validation metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Importance per input, largest first.
    pub importance: Vec<Importance>,
    /// Whether it met the promotion thresholds.
    pub promoted: bool,
    /// Why it was not promoted.
    pub reason: Option<String>,
    /// Whether it is the version that serves.
    pub serving: bool,
    /// How long training took.
    pub train_ms: u64,
}

/// A model with every version, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDetail {
    /// The model and its serving version.
    #[serde(flatten)]
    pub model: ModelSummary,
    /// Every version, newest first.
    pub versions: Vec<ModelVersionBody>,
}

impl From<&ModelInfo> for ModelSummary {
    fn from(m: &ModelInfo) -> Self {
        Self {
            name: m.name.clone(),
            task: m.task.to_string(),
            learner: m.learner.to_string(),
            serving_version: m.serving,
            newest_version: m.newest().map(|v| v.version),
            metrics: m
                .serving_version()
                .map(|v| v.metrics.clone())
                .unwrap_or_default(),
            predictions: m.predictions.clone(),
        }
    }
}

fn version_body(v: &ModelVersion, serving: Option<u64>) -> ModelVersionBody {
    ModelVersionBody {
        version: v.version,
        run_id: v.run_id,
        created_at: sluice_core::render::instant(v.created_at),
        learner: v.learner.clone(),
        inputs: v.inputs.clone(),
        train_rows: v.train_rows,
        valid_rows: v.valid_rows,
        valid_from: v.valid_from.clone(),
        metrics: v.metrics.clone(),
        importance: v
            .importance
            .iter()
            .map(|(input, importance)| Importance {
                input: input.clone(),
                importance: *importance,
            })
            .collect(),
        promoted: v.promoted,
        reason: v.reason.clone(),
        serving: Some(v.version) == serving,
        train_ms: v.train_ms,
    }
}

/// The project's models with their serving versions (reader).
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "The models", body = ModelList),
              (status = 401, description = "No valid key", body = ErrorBody)))]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<ModelList>, ApiError> {
    let models = sluice_runner::model_list(&state.ws)?;
    Ok(Json(ModelList {
        models: models.iter().map(ModelSummary::from).collect(),
    }))
}

/// One model: every version with its metrics and importance (reader).
#[utoipa::path(get, path = "/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "The model")),
    responses((status = 200, description = "The model and its versions", body = ModelDetail),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such model", body = ErrorBody)))]
pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ModelDetail>, ApiError> {
    let m = sluice_runner::model_info(&state.ws, &name)?;
    Ok(Json(ModelDetail {
        model: ModelSummary::from(&m),
        versions: m
            .versions
            .iter()
            .rev()
            .map(|v| version_body(v, m.serving))
            .collect(),
    }))
}
