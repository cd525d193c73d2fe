//! Key management over HTTP (admin): the same as `sluice keys`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_store::{KeyInfo, Role};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, Json};

/// A key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyBody {
    /// The public id (`sk_<id>_...`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// `reader`, `operator` or `admin`.
    pub role: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

impl From<KeyInfo> for KeyBody {
    fn from(k: KeyInfo) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role.to_string(),
            created_at: sluice_core::render::instant(k.created_at),
            revoked_at: k.revoked_at.map(sluice_core::render::instant),
        }
    }
}

/// Every key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// The keys, revoked ones included.
    pub keys: Vec<KeyBody>,
}

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// `reader`, `operator` or `admin`.
    #[schema(pattern = "^(reader|operator|admin)$", example = "reader")]
    pub role: String,
    /// A name for people.
    #[serde(default)]
    pub name: String,
}

/// A key just made: its secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKeyBody {
    /// The key to send as `Authorization: Bearer KEY`.
    pub key: String,
    /// What is stored about it.
    #[serde(flatten)]
    pub info: KeyBody,
}

/// Keys revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// The keys revoked now.
    pub revoked: Vec<KeyBody>,
}

/// Every API key, without secrets (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, description = "The keys", body = KeyList),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "Not an admin key", body = ErrorBody)))]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList {
        keys: state
            .ws
            .metadata
            .keys()?
            .into_iter()
            .map(KeyBody::from)
            .collect(),
    }))
}

/// Makes a key and shows it once (admin).
#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body = NewKeyRequest,
    responses((status = 201, description = "The key", body = NewKeyBody),
              (status = 400, description = "Unknown role", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "Not an admin key", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<NewKeyRequest>,
) -> Result<(StatusCode, Json<NewKeyBody>), ApiError> {
    let role: Role = req.role.parse().map_err(ApiError::bad_request)?;
    if req.name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "a key's name is at most 200 characters",
        ));
    }
    let key = state.ws.metadata.create_key(role, &req.name)?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyBody {
            key: key.secret,
            info: key.info.into(),
        }),
    ))
}

/// Revokes the keys with this id or name (admin).
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id or name")),
    responses((status = 200, description = "Keys revoked", body = Revoked),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 403, description = "Not an admin key", body = ErrorBody),
              (status = 404, description = "No key in force has this id or name", body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = state.ws.metadata.revoke_key(&id)?;
    if revoked.is_empty() {
        return Err(ApiError::not_found(
            "no key in force has this id or name\n  help: GET /v1/keys lists them",
        ));
    }
    Ok(Json(Revoked {
        revoked: revoked.into_iter().map(KeyBody::from).collect(),
    }))
}
