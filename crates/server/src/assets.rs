//! Assets: the list with freshness, one asset's schema and versions, and paged
//! rows of a version.

// utoipa's expansion of `params(SomeIntoParams)` names types by full path.
#![allow(unused_qualifications)]

use std::sync::Arc;

use axum::extract::{Path, State};
use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_runner::AssetInfo;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody, Json};

/// An asset and how fresh it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetSummary {
    /// The asset.
    pub name: String,
    /// `source`, `table` or `features`.
    pub kind: String,
    /// Free text from the project.
    pub description: Option<String>,
    /// Its tags (`tags = [...]` in the project), sorted.
    pub tags: Vec<String>,
    /// Latest version, if built.
    pub version: Option<u64>,
    /// Rows in the latest version.
    pub rows: Option<u64>,
    /// When the latest version was committed (RFC 3339).
    pub committed_at: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<i64>,
    /// Whether the next run would rebuild it.
    pub stale: bool,
    /// Why it is stale.
    pub reason: Option<String>,
}

/// Every asset, in dependency order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetList {
    /// The assets.
    pub assets: Vec<AssetSummary>,
}

/// A column of an asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// Its Arrow type.
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

/// A version of an asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionBody {
    /// The version number.
    pub version: u64,
    /// When it was committed (RFC 3339).
    pub committed_at: Option<String>,
    /// The Delta operation.
    pub operation: String,
    /// Rows written by the commit.
    pub rows: Option<u64>,
    /// The run that wrote it.
    pub run_id: Option<i64>,
}

/// One asset in detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetDetail {
    /// Freshness.
    #[serde(flatten)]
    pub summary: AssetSummary,
    /// The assets it reads.
    pub inputs: Vec<String>,
    /// The latest version's columns (empty when never built).
    pub columns: Vec<ColumnInfo>,
    /// Every version, newest first.
    pub versions: Vec<VersionBody>,
}

impl From<AssetInfo> for AssetSummary {
    fn from(
        AssetInfo {
            state: s,
            description,
            tags,
        }: AssetInfo,
    ) -> Self {
        Self {
            kind: serde_json::to_value(s.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            name: s.name,
            description,
            tags,
            version: s.version,
            rows: s.rows,
            committed_at: s.committed_at,
            age_seconds: s.age_seconds,
            stale: s.stale,
            reason: s.reason,
        }
    }
}

impl From<sluice_runner::ColumnInfo> for ColumnInfo {
    fn from(c: sluice_runner::ColumnInfo) -> Self {
        Self {
            name: c.name,
            data_type: c.data_type,
            nullable: c.nullable,
        }
    }
}

impl From<sluice_runner::AssetVersion> for VersionBody {
    fn from(v: sluice_runner::AssetVersion) -> Self {
        Self {
            version: v.version,
            committed_at: v.committed_at,
            operation: v.operation,
            rows: v.rows,
            run_id: v.run_id,
        }
    }
}

/// Every asset with its latest version, rows and freshness (reader).
#[utoipa::path(get, path = "/v1/assets", tag = "assets",
    responses((status = 200, description = "The assets", body = AssetList),
              (status = 401, description = "No valid key", body = ErrorBody)))]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<AssetList>, ApiError> {
    let assets = sluice_runner::asset_list(&state.ws).await?;
    Ok(Json(AssetList {
        assets: assets.into_iter().map(AssetSummary::from).collect(),
    }))
}

/// One asset: freshness, inputs, columns and versions (reader).
#[utoipa::path(get, path = "/v1/assets/{name}", tag = "assets",
    params(("name" = String, Path, description = "The asset")),
    responses((status = 200, description = "The asset", body = AssetDetail),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such asset", body = ErrorBody)))]
pub(crate) async fn detail(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<AssetDetail>, ApiError> {
    let d = sluice_runner::asset_detail(&state.ws, &name).await?;
    Ok(Json(AssetDetail {
        summary: d.info.into(),
        inputs: d.inputs,
        columns: d.columns.into_iter().map(ColumnInfo::from).collect(),
        versions: d.versions.into_iter().map(VersionBody::from).collect(),
    }))
}

/// Which rows to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsParams {
    /// Rows to return (default 100, at most the server's row limit).
    pub limit: Option<usize>,
    /// Rows to skip (default 0).
    pub offset: Option<usize>,
    /// A version number or a time (RFC 3339 or `YYYY-MM-DD`); default the latest.
    pub as_of: Option<String>,
}

/// A page of rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowsPage {
    /// The asset (or its quarantine table).
    pub asset: String,
    /// Rows skipped.
    pub offset: usize,
    /// The rows, as objects of column to value.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

/// A page of an asset's rows, of the latest version or as of a version or time (operator).
///
/// Rows are ordered by all their columns, so pages are stable: the same request
/// answers the same rows, and consecutive pages hold each row once.
#[utoipa::path(get, path = "/v1/assets/{name}/rows", tag = "assets",
    params(("name" = String, Path, description = "The asset, or `ASSET__quarantine`"), RowsParams),
    responses((status = 200, description = "The rows", body = RowsPage),
              (status = 400, description = "Bad parameters", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "The key's role is too low", body = ErrorBody),
              (status = 404, description = "No such asset or version", body = ErrorBody)))]
pub(crate) async fn rows(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<RowsParams>,
) -> Result<Json<RowsPage>, ApiError> {
    let offset = params.offset.unwrap_or(0);
    let limit = params.limit.unwrap_or(100);
    let batches = sluice_runner::rows_page(
        &state.ws,
        &name,
        params.as_of.as_deref(),
        offset,
        limit,
        state.limits.bounds(),
    )
    .await?;
    Ok(Json(RowsPage {
        asset: name,
        offset,
        rows: json_rows(&batches)?,
    }))
}

/// Arrow batches as JSON rows.
pub(crate) fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Value>, ApiError> {
    sluice_runner::json_rows(batches)
        .map(|rows| rows.into_iter().map(Value::Object).collect())
        .map_err(|e| ApiError::internal("writing rows as JSON", e))
}
