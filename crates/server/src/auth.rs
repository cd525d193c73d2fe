//! Roles at the door: every route but health, readiness and the OpenAPI document
//! is behind a role, checked before its handler runs.
//!
//! A request shows its key as `Authorization: Bearer KEY`. A server started with
//! no key in force listens on loopback only and lets requests without a key act
//! as `operator`, until the first key is created; from then on every request
//! needs a key. Key management always needs an `admin` key.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_store::Role;

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
        if state.open {
            match state.ws.metadata.has_active_keys() {
                Ok(false) => {
                    return Ok(Caller {
                        key_id: None,
                        role: Role::Operator,
                    });
                }
                Ok(true) => {}
                Err(e) => return Err(ApiError::internal("reading the API keys", e)),
            }
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
    match state.ws.metadata.verify_key(token) {
        Ok(Some(info)) => Ok(Caller {
            key_id: Some(info.id),
            role: info.role,
        }),
        Ok(None) => Err(unauthorized(
            "the API key is not valid (unknown, mistyped or revoked)\n  help: send `Authorization: Bearer KEY` with a key from `sluice keys create`",
        )),
        Err(e) => Err(ApiError::internal("reading the API keys", e)),
    }
}
