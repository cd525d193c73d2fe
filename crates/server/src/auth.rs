//! Roles at the door: every route but health, readiness and the OpenAPI document
//! is behind a role, checked before its handler runs.
//!
//! A request shows its key as `Authorization: Bearer KEY`. A server started with
//! no key in force listens on loopback only and lets requests without a key act
//! as `operator`, until the first key is created; from then on every request
//! needs a key. Key management always needs an `admin` key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_store::{KeyInfo, Role};

use crate::AppState;
use crate::error::ApiError;

/// The role a group of routes needs.
#[derive(Clone)]
pub(crate) struct Gate {
    pub(crate) state: Arc<AppState>,
    pub(crate) role: Role,
}

/// Who is asking, as the handlers see it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The key's id, or `None` for a keyless local request.
    pub(crate) key_id: Option<String>,
    /// What it may do.
    pub(crate) role: Role,
}

/// Valid keys already checked, and whether any key is in force, trusted while
/// the metadata database's generation is unchanged: a key created or revoked by
/// any process changes it, so a revocation still holds at the next request.
/// Only valid keys are kept (at most [`KeyCache::MAX`]), so random tokens cannot
/// grow it.
#[derive(Default)]
pub(crate) struct KeyCache(Mutex<Cached>);

#[derive(Default)]
struct Cached {
    generation: Option<(i64, u64)>,
    active: Option<bool>,
    valid: HashMap<blake3::Hash, KeyInfo>,
}

impl KeyCache {
    const MAX: usize = 10_000;

    /// The cache, emptied if the database changed since it was filled.
    fn current(&self, state: &AppState) -> Result<std::sync::MutexGuard<'_, Cached>, ApiError> {
        let generation = state
            .ws
            .metadata
            .generation()
            .map_err(|e| ApiError::internal("reading the API keys", e))?;
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cached.generation != Some(generation) {
            *cached = Cached {
                generation: Some(generation),
                ..Cached::default()
            };
        }
        Ok(cached)
    }

    pub(crate) fn has_active_keys(&self, state: &AppState) -> Result<bool, ApiError> {
        let mut cached = self.current(state)?;
        if let Some(active) = cached.active {
            return Ok(active);
        }
        let active = state
            .ws
            .metadata
            .has_active_keys()
            .map_err(|e| ApiError::internal("reading the API keys", e))?;
        cached.active = Some(active);
        Ok(active)
    }

    pub(crate) fn verify(
        &self,
        state: &AppState,
        token: &str,
    ) -> Result<Option<KeyInfo>, ApiError> {
        let presented = blake3::hash(token.as_bytes());
        let mut cached = self.current(state)?;
        if let Some(info) = cached.valid.get(&presented) {
            return Ok(Some(info.clone()));
        }
        let found = state
            .ws
            .metadata
            .verify_key(token)
            .map_err(|e| ApiError::internal("reading the API keys", e))?;
        if let Some(info) = &found {
            if cached.valid.len() >= Self::MAX {
                cached.valid.clear();
            }
            cached.valid.insert(presented, info.clone());
        }
        Ok(found)
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The middleware of one [`Gate`].
pub(crate) async fn authorize(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let caller = match caller(&gate.state, &req) {
        Ok(c) => c,
        Err(e) => {
            let challenge = e.status == StatusCode::UNAUTHORIZED;
            let mut response = e.into_response();
            if challenge {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            return response;
        }
    };
    if caller.role < gate.role {
        let message = match caller.key_id {
            Some(_) => format!(
                "this route needs the `{}` role and the key has `{}`\n  help: use a key made with `sluice keys create --role {}`",
                gate.role, caller.role, gate.role
            ),
            None => format!(
                "this route needs a key with the `{}` role\n  help: create one with `sluice keys create --role {}` and send it as `Authorization: Bearer KEY`",
                gate.role, gate.role
            ),
        };
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

fn caller(state: &AppState, req: &Request) -> Result<Caller, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        if state.open && !state.keys.has_active_keys(state)? {
            return Ok(Caller {
                key_id: None,
                role: Role::Operator,
            });
        }
        return Err(unauthorized(
            "this server needs an API key\n  help: send `Authorization: Bearer KEY`; an admin makes keys with `sluice keys create --role reader`",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    match state.keys.verify(state, token)? {
        Some(info) => Ok(Caller {
            key_id: Some(info.id),
            role: info.role,
        }),
        None => Err(unauthorized(
            "the API key is not valid (unknown, mistyped or revoked)\n  help: send `Authorization: Bearer KEY` with a key from `sluice keys create`",
        )),
    }
}
