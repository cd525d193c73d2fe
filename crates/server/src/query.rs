//! `POST /v1/query`: read-only SQL over the assets, bounded in rows, time and
//! memory. DDL, DML (`COPY` included) and other statements are refused by the
//! planner; only the project's assets are tables, so no file or URL can be read.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::assets::{ColumnInfo, json_rows};
use crate::error::{ApiError, ApiJson, ErrorBody, Json};

/// A query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One SQL `SELECT` (or `WITH ... SELECT`) over the assets.
    #[schema(example = "SELECT carrier, late_share FROM carrier_summary ORDER BY late_share DESC")]
    pub sql: String,
    /// Read every asset as of a version number or a time; default the latest.
    pub as_of: Option<String>,
    /// Most rows to return (default and maximum: the server's row limit, 10,000 unless configured).
    #[schema(minimum = 0, maximum = 10000, example = 10)]
    pub limit: Option<usize>,
}

/// A query's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// The result's columns.
    pub columns: Vec<ColumnInfo>,
    /// The rows, as objects of column to value.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    /// Rows returned.
    pub row_count: usize,
    /// Whether the result had more rows than returned.
    pub truncated: bool,
}

/// Runs read-only SQL over the assets (operator).
#[utoipa::path(post, path = "/v1/query", tag = "query",
    request_body = QueryRequest,
    responses((status = 200, description = "The result", body = QueryResponse),
              (status = 400, description = "Not valid, or not read-only SQL", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "The query names an unknown asset", body = ErrorBody),
              (status = 504, description = "It ran too long", body = ErrorBody)))]
pub(crate) async fn query(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Json<QueryResponse>, ApiError> {
    let page = sluice_runner::query_page(
        &state.ws,
        &req.sql,
        req.as_of.as_deref(),
        req.limit,
        state.limits.bounds(),
    )
    .await?;
    Ok(Json(QueryResponse {
        columns: page.columns.into_iter().map(ColumnInfo::from).collect(),
        rows: json_rows(&page.batches)?,
        row_count: page.rows,
        truncated: page.truncated,
    }))
}
