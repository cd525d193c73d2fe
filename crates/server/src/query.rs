//! `POST /v1/query`: read-only SQL over the assets, bounded in rows, time and
//! memory. DDL, DML (`COPY` included) and other statements are refused by the
//! planner; only the project's assets are tables, so no file or URL can be read.

use std::sync::Arc;

use axum::extract::State;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::AsOf;
use utoipa::ToSchema;

use crate::AppState;
use crate::assets::{ColumnInfo, json_rows, timeout};
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
    let limit = req
        .limit
        .unwrap_or(state.limits.rows)
        .min(state.limits.rows);
    let as_of = match req.as_of.as_deref() {
        Some(s) => sluice_runner::parse_as_of(s)?,
        None => AsOf::Latest,
    };
    let work = async {
        let ctx = sluice_transform::session_with_memory_limit(state.limits.query_memory);
        let df = sluice_runner::query_frame(&state.ws, &req.sql, as_of, ctx).await?;
        let columns: Vec<ColumnInfo> = df
            .schema()
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect();
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.strip_backtrace())))?;
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let mut truncated = false;
        // Stop reading as soon as the limit is passed: the rest is never computed.
        while let Some(batch) = stream.next().await {
            let batch = batch
                .map_err(|e| ApiError::bad_request(format!("query: {}", e.strip_backtrace())))?;
            let take = batch.num_rows().min(limit - rows);
            if take < batch.num_rows() {
                truncated = true;
            }
            if take > 0 {
                batches.push(batch.slice(0, take));
                rows += take;
            }
            if truncated {
                break;
            }
        }
        Ok::<_, ApiError>((columns, batches, rows, truncated))
    };
    let (columns, batches, row_count, truncated) =
        tokio::time::timeout(state.limits.query_time, work)
            .await
            .map_err(|_| timeout(&state))??;
    Ok(Json(QueryResponse {
        columns,
        rows: json_rows(&batches)?,
        row_count,
        truncated,
    }))
}
