//! Online features: one entity by path, many entities of several views by body.
//! Keys are compared as text with the stored records, never put into a query.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use indexmap::IndexMap;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_runner::FeatureRecord;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, Json};

/// One entity's features.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureResponse {
    /// The view.
    pub view: String,
    /// The entity: key column to value.
    #[schema(value_type = Object)]
    pub entity: Map<String, Value>,
    /// The event time of the values (RFC 3339; with `Z` when the view's time column has a time zone).
    pub event_timestamp: String,
    /// The features, in the view's order.
    #[schema(value_type = Object)]
    pub features: Map<String, Value>,
    /// The offline version they were materialized from.
    pub version: u64,
    /// For a view computed at every event: the time its windows were read as of
    /// (the request's, or `as_of`), RFC 3339. Absent for a view that keeps its
    /// newest row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

impl From<FeatureRecord> for FeatureResponse {
    fn from(r: FeatureRecord) -> Self {
        Self {
            view: r.view,
            entity: r.entity,
            event_timestamp: r.event_timestamp,
            features: r.features,
            version: r.version,
            as_of: r.as_of,
        }
    }
}

/// The `as_of` of a request's query string (`?as_of=TIME`), as microseconds.
fn query_as_of(query: Option<&str>) -> Result<Option<i64>, ApiError> {
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "as_of" {
            let value = percent_decode_str(&value.replace('+', " "))
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| {
                    ApiError::bad_request("`as_of` is not UTF-8 after percent-decoding")
                })?;
            return Ok(Some(sluice_runner::parse_read_time(&value)?));
        }
    }
    Ok(None)
}

/// The name and the percent-decoded key segments after `prefix` in a raw path,
/// so that an encoded `/` inside a key stays inside it.
pub(crate) fn path_keys(path: &str, prefix: &str) -> Result<(String, Vec<String>), ApiError> {
    let rest = path
        .strip_prefix(prefix)
        .ok_or_else(|| ApiError::not_found("no such route"))?;
    let mut segments = rest.split('/').map(|s| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                ApiError::bad_request("a path segment is not UTF-8 after percent-decoding")
            })
    });
    let name = segments.next().transpose()?.unwrap_or_default();
    let key: Vec<String> = segments.collect::<Result<_, _>>()?;
    Ok((name, key))
}

/// One entity's features from the online store (reader): a view computed at
/// every event reads its windows as of now, or `as_of`; other views answer
/// their newest row.
///
/// The entity is the key value, or for a view with several keys the values in
/// the view's key order, one path segment each. Percent-encode `/` in a key as `%2F`.
#[utoipa::path(get, path = "/v1/features/{view}/{entity}", tag = "features",
    params(("view" = String, Path, description = "The feature view"),
           ("entity" = String, Path, description = "The key value(s), one percent-encoded path segment per key column"),
           ("as_of" = Option<String>, Query, description = "Read as of this time (RFC 3339, or a date: its midnight UTC) instead of now")),
    responses((status = 200, description = "The entity's features", body = FeatureResponse),
              (status = 400, description = "Wrong number of key values, an unreadable `as_of`, or one before what the online store keeps", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such view, view not materialized, or no record for the entity", body = ErrorBody)))]
pub(crate) async fn get_features(
    State(state): State<Arc<AppState>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<FeatureResponse>, ApiError> {
    let (view, key) = path_keys(uri.path(), "/v1/features/")?;
    let at = query_as_of(uri.query())?;
    let snapshot = state.online.snapshot()?;
    let record = sluice_runner::read_features(&state.ws, snapshot.as_ref(), &view, key, at)?;
    Ok(Json(record.into()))
}

/// Several views' features for many entities.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeaturesRequest {
    /// Views (`VIEW`) or single features (`VIEW:feature`).
    #[schema(min_items = 1, example = json!(["plane_delays", "carrier_delays:carrier_arr_delay_30d"]))]
    pub features: Vec<String>,
    /// The entities: objects holding every key column of every view asked for
    /// (strings; numbers and booleans are read as their text); at most 1,000.
    #[schema(value_type = Vec<Object>, max_items = 1000,
             example = json!([{"tailnum": "N14228", "carrier": "UA"}]))]
    pub entities: Vec<Map<String, Value>>,
    /// Read the windows as of this time (RFC 3339, or a date: its midnight UTC)
    /// instead of now.
    #[serde(default)]
    pub as_of: Option<String>,
}

/// One view's record of one entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewRecord {
    /// The event time of the values (RFC 3339; with `Z` when the view's time column has a time zone).
    pub event_timestamp: String,
    /// The offline version they were materialized from.
    pub version: u64,
    /// The features asked for.
    #[schema(value_type = Object)]
    pub features: Map<String, Value>,
    /// For a view computed at every event: the time its windows were read as of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

impl From<FeatureRecord> for ViewRecord {
    fn from(r: FeatureRecord) -> Self {
        Self {
            event_timestamp: r.event_timestamp,
            version: r.version,
            features: r.features,
            as_of: r.as_of,
        }
    }
}

/// One entity's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntityResult {
    /// The entity as given.
    #[schema(value_type = Object)]
    pub entity: Map<String, Value>,
    /// Per view, its record, or `null` when it holds none for the entity.
    #[schema(value_type = Object)]
    pub views: IndexMap<String, Option<ViewRecord>>,
}

/// The answer to a batch request, in the order of the entities.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeaturesResponse {
    /// One per entity.
    pub results: Vec<EntityResult>,
}

/// Many entities' features of several views, read from one snapshot (reader).
#[utoipa::path(post, path = "/v1/features", tag = "features",
    request_body = FeaturesRequest,
    responses((status = 200, description = "One result per entity, in order", body = FeaturesResponse),
              (status = 400, description = "Bad request: unknown feature, missing key column, too many entities", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such view, or not materialized", body = ErrorBody),
              (status = 413, description = "Body too large", body = ErrorBody)))]
pub(crate) async fn post_features(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<FeaturesRequest>,
) -> Result<Json<FeaturesResponse>, ApiError> {
    let at = req
        .as_of
        .as_deref()
        .map(sluice_runner::parse_read_time)
        .transpose()?;
    let snapshot = state.online.snapshot()?;
    let answers = sluice_runner::read_features_batch(
        &state.ws,
        snapshot.as_ref(),
        &req.features,
        &req.entities,
        state.limits.entities,
        at,
    )?;
    let results = req
        .entities
        .into_iter()
        .zip(answers)
        .map(|(entity, views)| EntityResult {
            entity,
            views: views
                .into_iter()
                .map(|(view, record)| (view, record.map(ViewRecord::from)))
                .collect(),
        })
        .collect();
    Ok(Json(FeaturesResponse { results }))
}
