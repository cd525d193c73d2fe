//! `POST /v1/push/{source}`: rows an application sends to a push source
//! (writer role). The rows are checked against the source's columns (a row
//! that does not fit refuses the whole request, naming it) and its contract
//! (rejected rows come back in the answer and go to its quarantine), then
//! appended or merged by the source's key as one new version, shared with the
//! pushes that arrived while the previous one was written.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_runner::push::PushError;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, Json};

/// Rows to push: `{"rows": [...]}`, or the array alone.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushRequest {
    /// The rows, as objects of column to value.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

/// What became of the rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushResponse {
    /// The source.
    pub source: String,
    /// The version that holds the accepted rows.
    pub version: Option<u64>,
    /// Rows accepted.
    pub accepted: u64,
    /// Rows the contract rejected, each with `row` (its position in the
    /// request), `rule`, `column`, `reason` and its values.
    #[schema(value_type = Vec<Object>)]
    pub rejected: Vec<Map<String, Value>>,
}

/// Pushes rows to a push source (writer).
#[utoipa::path(post, path = "/v1/push/{source}", tag = "push",
    params(("source" = String, Path, description = "A source declared with `push = { ... }`")),
    request_body = PushRequest,
    responses((status = 200, description = "The rows were written; rejected rows are listed", body = PushResponse),
              (status = 400, description = "A row does not fit the source's columns, or it is not a push source; nothing was written", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "No such source", body = ErrorBody),
              (status = 422, description = "The contract's error checks failed; nothing was written", body = ErrorBody),
              (status = 503, description = "Writing failed for a reason that may pass; try again", body = ErrorBody)))]
pub(crate) async fn push(
    State(state): State<Arc<AppState>>,
    Path(source): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<PushResponse>, ApiError> {
    let rows = match body {
        Value::Array(rows) => rows,
        Value::Object(o) if o.len() == 1 && o.get("rows").is_some_and(Value::is_array) => {
            serde_json::from_value::<PushRequest>(Value::Object(o))
                .map(|r| r.rows)
                .unwrap_or_default()
        }
        _ => {
            return Err(ApiError::bad_request(
                "the body is not rows\n  help: send `{\"rows\": [{...}, ...]}` or the array of row objects alone",
            ));
        }
    };
    let outcome = sluice_runner::push::push(&state.ws, &source, &rows)
        .await
        .map_err(|e| match e {
            PushError::Unknown { .. } => ApiError::not_found(e.to_string()),
            PushError::NotPush(_) | PushError::BadRows(_) => ApiError::bad_request(e.to_string()),
            PushError::Failed { class, .. } if class.is_transient() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            PushError::Failed { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", e.to_string())
            }
        })?;
    Ok(Json(PushResponse {
        source,
        version: outcome.version,
        accepted: outcome.accepted,
        rejected: outcome.rejected,
    }))
}
