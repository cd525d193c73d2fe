//! One entry of a JSON export keyed by entity (reader), as an app reads its
//! per-user report.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, Json};
use crate::features::path_keys;

/// The entry of a JSON export keyed by entity (reader): the object the export's
/// file holds at the key, as the last run wrote it.
///
/// The key is one percent-encoded path segment per key column, outermost first.
#[utoipa::path(get, path = "/v1/exports/{name}/{key}", tag = "exports",
    params(("name" = String, Path, description = "The export (a `.json` path, keyed)"),
           ("key" = String, Path, description = "The key value(s), one percent-encoded path segment per key column")),
    responses((status = 200, description = "The entry", body = Object),
              (status = 400, description = "Wrong number of key values", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such keyed export, not written yet, or no entry at the key", body = ErrorBody)))]
pub(crate) async fn entry(
    State(state): State<Arc<AppState>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let (name, key) = path_keys(uri.path(), "/v1/exports/")?;
    let state = state.clone();
    let entry = tokio::task::spawn_blocking(move || {
        sluice_runner::read_export_entry(&state.ws, &state.exports, &name, key)
    })
    .await
    .map_err(|e| ApiError::internal("reading an export", e))??;
    Ok(Json(entry))
}
