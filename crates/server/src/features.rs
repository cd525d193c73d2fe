//! Online features: one entity by path, many entities of several views by body.
//! Keys are compared as text with the stored records, never put into a query.

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use indexmap::IndexMap;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_project::Definition;
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
    /// The event time of the values (RFC 3339, UTC).
    pub event_timestamp: String,
    /// The features, in the view's order.
    #[schema(value_type = Object)]
    pub features: Map<String, Value>,
    /// The offline version they were materialized from.
    pub version: u64,
}

impl From<FeatureRecord> for FeatureResponse {
    fn from(r: FeatureRecord) -> Self {
        Self {
            view: r.view,
            entity: r.entity,
            event_timestamp: r.event_timestamp,
            features: r.features,
            version: r.version,
        }
    }
}

/// The entity keys of a view, or 404 when it is not a feature view.
fn view_keys<'a>(state: &'a AppState, view: &str) -> Result<&'a [String], ApiError> {
    let asset = state
        .ws
        .project
        .assets
        .iter()
        .find(|(n, _)| n.as_str() == view)
        .map(|(_, a)| a);
    match asset.map(|a| &a.definition) {
        Some(Definition::Features(def)) => Ok(def.entity.as_slice()),
        _ => {
            let views: Vec<&str> = state
                .ws
                .project
                .assets
                .values()
                .filter(|a| matches!(a.definition, Definition::Features(_)))
                .map(|a| a.name.as_str())
                .collect();
            Err(ApiError::not_found(format!(
                "no feature view is called `{}`\n  help: the feature views are: {}",
                printable(view),
                views.join(", ")
            )))
        }
    }
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

/// A name from the request, shortened for messages.
pub(crate) fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// One entity's latest features from the online store (reader).
///
/// The entity is the key value, or for a view with several keys the values in
/// the view's key order, one path segment each. Percent-encode `/` in a key as `%2F`.
#[utoipa::path(get, path = "/v1/features/{view}/{entity}", tag = "features",
    params(("view" = String, Path, description = "The feature view"),
           ("entity" = String, Path, description = "The key value(s), one percent-encoded path segment per key column")),
    responses((status = 200, description = "The entity's features", body = FeatureResponse),
              (status = 400, description = "Wrong number of key values", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such view, view not materialized, or no record for the entity", body = ErrorBody)))]
pub(crate) async fn get_features(
    State(state): State<Arc<AppState>>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<FeatureResponse>, ApiError> {
    let (view, key) = path_keys(uri.path(), "/v1/features/")?;
    let names = view_keys(&state, &view)?;
    let record = lookup_one(&state, &view, &format!("feature view `{view}`"), names, key)?;
    Ok(Json(record.into()))
}

/// The online record of one entity of `table`, keyed by the key columns
/// `names` (`what` names the table in messages): 400 for a wrong number of
/// key values, 404 when the table holds no record for the entity.
pub(crate) fn lookup_one(
    state: &AppState,
    table: &str,
    what: &str,
    names: &[String],
    key: Vec<String>,
) -> Result<FeatureRecord, ApiError> {
    if key.len() != names.len() {
        return Err(ApiError::bad_request(format!(
            "{what} is keyed by {} ({} value{}), but the path gives {}\n  help: give one path segment per key, percent-encoding `/` as %2F",
            names.join(", "),
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            key.len()
        )));
    }
    let snapshot = state.online.snapshot()?;
    let found = sluice_runner::lookup(&state.ws, &snapshot, table, std::slice::from_ref(&key))?;
    found.into_iter().next().flatten().ok_or_else(|| {
        ApiError::not_found(format!(
            "{what} holds no record for {}",
            names
                .iter()
                .zip(&key)
                .map(|(n, v)| format!("{n} = \"{}\"", printable(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
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
}

/// One view's record of one entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewRecord {
    /// The event time of the values (RFC 3339, UTC).
    pub event_timestamp: String,
    /// The offline version they were materialized from.
    pub version: u64,
    /// The features asked for.
    #[schema(value_type = Object)]
    pub features: Map<String, Value>,
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

/// One view's records for the entities of a batch.
struct ViewAnswer {
    view: String,
    /// The features asked for (`None`: all).
    features: Option<Vec<String>>,
    /// One per entity.
    records: Vec<Option<FeatureRecord>>,
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
    if req.entities.len() > state.limits.entities {
        return Err(ApiError::bad_request(format!(
            "{} entities in one request; at most {} are allowed\n  help: split the request",
            req.entities.len(),
            state.limits.entities
        )));
    }
    if req.features.is_empty() {
        return Err(ApiError::bad_request(
            "`features` is empty\n  help: name views (`VIEW`) or features (`VIEW:feature`)",
        ));
    }
    // View -> the features asked for (None: all), in the order first named.
    let mut wanted: IndexMap<String, Option<Vec<String>>> = IndexMap::new();
    for spec in &req.features {
        let (view, feature) = match spec.split_once(':') {
            Some((v, f)) => (v, Some(f.to_string())),
            None => (spec.as_str(), None),
        };
        view_keys(&state, view)?;
        let slot = wanted
            .entry(view.to_string())
            .or_insert_with(|| Some(Vec::new()));
        match feature {
            None => *slot = None,
            Some(f) => {
                if let Some(list) = slot.as_mut() {
                    list.push(f);
                }
            }
        }
    }
    let snapshot = state.online.snapshot()?;
    let mut per_view: Vec<ViewAnswer> = Vec::new();
    for (view, features) in wanted {
        let meta = snapshot.meta(&view)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "feature view `{view}` has not been materialized yet\n  help: run `sluice run {view}`"
            ))
        })?;
        if let Some(f) = features
            .iter()
            .flatten()
            .find(|f| !meta.features.contains(f))
        {
            return Err(ApiError::bad_request(format!(
                "feature view `{view}` has no feature `{}`\n  help: its features are: {}",
                printable(f),
                meta.features.join(", ")
            )));
        }
        let names = view_keys(&state, &view)?;
        let mut keys = Vec::with_capacity(req.entities.len());
        for (i, entity) in req.entities.iter().enumerate() {
            let mut key = Vec::with_capacity(names.len());
            for name in names {
                let value = match entity.get(name) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "entities[{i}] has no text or number `{name}`, a key of feature view `{view}`\n  help: every entity needs the keys of every view asked for"
                        )));
                    }
                };
                key.push(value);
            }
            keys.push(key);
        }
        let records = sluice_runner::lookup(&state.ws, &snapshot, &view, &keys)?;
        per_view.push(ViewAnswer {
            view,
            features,
            records,
        });
    }
    let mut results: Vec<EntityResult> = req
        .entities
        .into_iter()
        .map(|entity| EntityResult {
            entity,
            views: IndexMap::new(),
        })
        .collect();
    for ViewAnswer {
        view,
        features,
        records,
    } in per_view
    {
        for (result, record) in results.iter_mut().zip(records) {
            let record = record.map(|mut r| {
                if let Some(only) = &features {
                    r.features.retain(|k, _| only.contains(k));
                }
                ViewRecord {
                    event_timestamp: r.event_timestamp,
                    version: r.version,
                    features: r.features,
                }
            });
            result.views.insert(view.clone(), record);
        }
    }
    Ok(Json(FeaturesResponse { results }))
}
