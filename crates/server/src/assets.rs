//! Assets: the list with freshness, one asset's schema and versions, and paged
//! rows of a version.

// utoipa's expansion of `params(SomeIntoParams)` names types by full path.
#![allow(unused_qualifications)]

use std::sync::Arc;

use axum::extract::{Path, State};
use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_runner::AssetState;
use sluice_store::AsOf;
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

fn summary(ws: &sluice_runner::Workspace, s: AssetState) -> AssetSummary {
    let description = ws
        .project
        .assets
        .iter()
        .find(|(n, _)| n.as_str() == s.name)
        .and_then(|(_, a)| a.description.clone());
    AssetSummary {
        kind: serde_json::to_value(s.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        name: s.name,
        description,
        version: s.version,
        rows: s.rows,
        committed_at: s.committed_at,
        age_seconds: s.age_seconds,
        stale: s.stale,
        reason: s.reason,
    }
}

/// Every asset with its latest version, rows and freshness (reader).
#[utoipa::path(get, path = "/v1/assets", tag = "assets",
    responses((status = 200, description = "The assets", body = AssetList),
              (status = 401, description = "No valid key", body = ErrorBody)))]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<AssetList>, ApiError> {
    let states = sluice_runner::status(&state.ws).await?;
    Ok(Json(AssetList {
        assets: states.into_iter().map(|s| summary(&state.ws, s)).collect(),
    }))
}

fn unknown_asset(state: &AppState, name: &str) -> ApiError {
    let shown: String = name.chars().take(80).collect();
    ApiError::not_found(format!(
        "no asset is called `{}`\n  help: the assets are: {}",
        shown.escape_debug(),
        state.ws.tables().join(", ")
    ))
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
    let Some(asset) = state
        .ws
        .project
        .assets
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, a)| a)
    else {
        return Err(unknown_asset(&state, &name));
    };
    let states = sluice_runner::status(&state.ws).await?;
    let Some(s) = states.into_iter().find(|s| s.name == name) else {
        return Err(unknown_asset(&state, &name));
    };
    let built = s.version.is_some();
    let mut columns = Vec::new();
    let mut versions = Vec::new();
    if asset.kind() == sluice_core::AssetKind::Export {
        // A file, not a table: its newest write is its only version on record here.
        if let Some(w) = state.ws.metadata.latest_export(&name)? {
            versions.push(VersionBody {
                version: w.version,
                committed_at: Some(w.written_at.to_rfc3339()),
                operation: format!("EXPORT {}", w.path),
                rows: Some(w.rows),
                run_id: Some(w.run_id),
            });
        }
    } else if asset.kind() == sluice_core::AssetKind::Model {
        // A model's versions are in the registry.
        versions = state
            .ws
            .metadata
            .model_versions(&name)?
            .into_iter()
            .rev()
            .map(|v| VersionBody {
                version: v.version,
                committed_at: Some(v.created_at.to_rfc3339()),
                operation: format!(
                    "TRAIN {}{}",
                    v.learner,
                    if v.promoted {
                        " (promoted)"
                    } else {
                        " (not promoted)"
                    }
                ),
                rows: Some(v.train_rows + v.valid_rows),
                run_id: Some(v.run_id),
            })
            .collect();
    } else if built {
        let ctx = sluice_transform::session();
        let provider = state
            .ws
            .store
            .provider(&name, AsOf::Latest, &ctx.state())
            .await?;
        columns = provider
            .schema()
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect();
        versions = state
            .ws
            .store
            .history(&name)
            .await?
            .into_iter()
            .map(|v| VersionBody {
                version: v.version,
                committed_at: v.committed_at.map(|t| t.to_rfc3339()),
                operation: v.operation,
                rows: v.rows,
                run_id: v.meta.map(|m| m.run_id),
            })
            .collect();
    }
    Ok(Json(AssetDetail {
        summary: summary(&state.ws, s),
        inputs: asset.inputs.iter().map(|i| i.to_string()).collect(),
        columns,
        versions,
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
    if !state.ws.tables().contains(&name) {
        return Err(unknown_asset(&state, &name));
    }
    let limit = params.limit.unwrap_or(100);
    if limit > state.limits.rows {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is above the server's {}\n  help: page with offset",
            state.limits.rows
        )));
    }
    let offset = params.offset.unwrap_or(0);
    let as_of = match params.as_of.as_deref() {
        Some(s) => sluice_runner::parse_as_of(s)?,
        None => AsOf::Latest,
    };
    let ctx = sluice_transform::session_with_memory_limit(state.limits.query_memory);
    let provider = state.ws.store.provider(&name, as_of, &ctx.state()).await?;
    let batches = tokio::time::timeout(state.limits.query_time, async {
        ctx.read_table(provider)?
            .limit(offset, Some(limit))?
            .collect()
            .await
    })
    .await
    .map_err(|_| timeout(&state))?
    .map_err(|e| ApiError::internal("reading rows", e))?;
    Ok(Json(RowsPage {
        asset: name,
        offset,
        rows: json_rows(&batches)?,
    }))
}

pub(crate) fn timeout(state: &AppState) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!(
            "the query ran longer than {} s and was stopped\n  help: narrow it, or run it with `sluice query`",
            state.limits.query_time.as_secs()
        ),
    )
}

/// Arrow batches as JSON rows.
pub(crate) fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Value>, ApiError> {
    sluice_runner::json_rows(batches)
        .map(|rows| rows.into_iter().map(Value::Object).collect())
        .map_err(|e| ApiError::internal("writing rows as JSON", e))
}
