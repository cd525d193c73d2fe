//! `sluice serve`: one axum process serving a project's online features and
//! predictions, assets, read-only SQL and runs as JSON, with API-key roles, an OpenAPI document and
//! Prometheus metrics, a web dashboard for people (`dashboard/`), and the Prometheus alert rules and Grafana dashboard
//! that watch them (`monitoring/`).
//!
//! Reads never wait for writes: every lookup reads one redb snapshot, and a
//! materialization (in this process or another) commits a whole view at once.
//! Every route but `/healthz`, `/readyz`, `/openapi.json` and the dashboard's static files is behind its role
//! (`auth.rs`); the matrix is in ARCHITECTURE.md and tested route by route.

mod assets;
mod auth;
mod dashboard;
mod error;
mod exports;
mod features;
mod keys;
mod metrics;
mod models;
mod monitoring;
mod openapi;
mod predictions;
mod push;
mod query;
mod runs;
mod search;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Router, middleware};
use serde::Serialize;
use sluice_runner::Workspace;
use sluice_store::{OnlineStore, Role};
use utoipa::ToSchema;

pub use error::{ApiError, ErrorBody, Json};
pub use monitoring::{alert_rules, grafana_dashboard};
pub use openapi::openapi;

/// Bounds on what one request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Most entities in one `POST /v1/features`.
    pub entities: usize,
    /// Most rows `POST /v1/query` and `/rows` return.
    pub rows: usize,
    /// Longest a query may run.
    pub query_time: Duration,
    /// Memory a query may use before it spills or fails.
    pub query_memory: usize,
}

impl Limits {
    /// The bounds of one read.
    fn bounds(&self) -> sluice_runner::ReadBounds {
        sluice_runner::ReadBounds {
            rows: self.rows,
            time: self.query_time,
            memory: self.query_memory,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 1 << 20,
            entities: 1000,
            rows: 10_000,
            query_time: Duration::from_secs(30),
            query_memory: 512 << 20,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    ws: Arc<Workspace>,
    online: Arc<dyn OnlineStore>,
    metrics: metrics::Metrics,
    /// Started with no key in force: loopback only, keyless requests allowed.
    open: bool,
    limits: Limits,
    openapi: String,
    models: predictions::ModelCache,
    keys: auth::KeyCache,
    /// Parsed JSON exports, re-read when their file changes.
    exports: sluice_runner::ExportCache,
    /// The dashboard's browser sessions.
    sessions: dashboard::Sessions,
}

impl AppState {
    /// The state of a server over `ws`. `open` says whether keyless local
    /// requests are allowed (see `auth.rs`).
    pub fn new(ws: Arc<Workspace>, open: bool, limits: Limits) -> Result<Arc<Self>, ServeError> {
        // A server also runs pipelines: open the online store for writing now.
        let online = ws.online.clone();
        online.open_for_writing().map_err(Box::new)?;
        let metrics = metrics::Metrics::new()?;
        let openapi = serde_json::to_string(&openapi()).map_err(ServeError::OpenApi)?;
        Ok(Arc::new(Self {
            ws,
            online,
            metrics,
            open,
            limits,
            openapi,
            models: predictions::ModelCache::default(),
            exports: sluice_runner::ExportCache::default(),
            keys: auth::KeyCache::default(),
            sessions: dashboard::Sessions::default(),
        }))
    }
}

/// The whole API.
pub fn router(state: Arc<AppState>) -> Router {
    let gate = |role: Role| {
        middleware::from_fn_with_state(
            auth::Gate {
                state: state.clone(),
                role,
            },
            auth::authorize,
        )
    };
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json));
    let reader = Router::new()
        .route("/v1/features", post(features::post_features))
        .route("/v1/features/{view}/{*entity}", get(features::get_features))
        .route(
            "/v1/predictions/{model}/{*entity}",
            get(predictions::get_prediction),
        )
        .route("/v1/predict/{model}", post(predictions::predict))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{name}", get(models::detail))
        .route("/v1/assets", get(assets::list))
        .route("/v1/assets/{name}", get(assets::detail))
        .route("/v1/exports/{name}/{*key}", get(exports::entry))
        .route("/v1/search/{collection}", post(search::search))
        .route("/metrics", get(metrics_text))
        .route_layer(gate(Role::Reader));
    let writer = Router::new()
        .route("/v1/push/{source}", post(push::push))
        .route_layer(gate(Role::Writer));
    let operator = Router::new()
        .route("/v1/assets/{name}/rows", get(assets::rows))
        .route("/v1/query", post(query::query))
        .route("/v1/runs", post(runs::start).get(runs::list))
        .route("/v1/runs/{id}", get(runs::detail))
        .route("/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/v1/runs/{id}/logs", get(runs::logs))
        .route_layer(gate(Role::Operator));
    let admin = Router::new()
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", delete(keys::revoke))
        .route_layer(gate(Role::Admin));
    public
        .merge(dashboard::routes(state.clone()))
        .merge(reader)
        .merge(writer)
        .merge(operator)
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// A server bound to its address, not yet answering.
pub struct Bound {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    /// The address it listens on (the port chosen, when asked for port 0).
    pub local: SocketAddr,
    /// Whether no key is in force: loopback only, keyless requests act as `operator`.
    pub open: bool,
}

/// Binds the API to `listen`. With no key in force the address must be a
/// loopback one.
pub async fn bind(ws: Arc<Workspace>, listen: SocketAddr) -> Result<Bound, ServeError> {
    let open = !ws.metadata.has_active_keys().map_err(Box::new)?;
    if open && !listen.ip().is_loopback() {
        return Err(ServeError::OpenNotLoopback { listen });
    }
    let state = AppState::new(ws, open, Limits::default())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen { listen, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { listen, source })?;
    Ok(Bound {
        listener,
        state,
        local,
        open,
    })
}

impl Bound {
    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        tracing::info!(address = %self.local, open = self.open, "serving");
        let listen = self.local;
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServeError::Listen { listen, source })
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// With no key in force, only loopback callers are allowed.
    #[error(
        "no API key exists, so sluice serve only listens on loopback, not on {listen}\n  help: create a key with `sluice keys create --role reader` (and one with --role admin to manage keys), or listen on 127.0.0.1"
    )]
    OpenNotLoopback {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The address could not be bound, or the listener failed.
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        /// The address.
        listen: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The warehouse could not be opened.
    #[error(transparent)]
    Store(#[from] Box<sluice_store::Error>),
    /// The metrics registry refused a metric (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The OpenAPI document could not be written (a bug).
    #[error("the OpenAPI document: {0}")]
    OpenApi(serde_json::Error),
}

/// A simple status answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// Why not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        reason: None,
    })
}

/// The metadata database and the online store answer.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "Ready to serve", body = Health),
              (status = 503, description = "Not ready", body = Health)))]
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let check = state
        .ws
        .metadata
        .has_active_keys()
        .map_err(|e| e.to_string())
        .and_then(|_| state.online.snapshot().map(drop).map_err(|e| e.to_string()));
    match check {
        Ok(()) => Json(Health {
            status: "ready".into(),
            reason: None,
        })
        .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "not_ready".into(),
                reason: Some(reason),
            }),
        )
            .into_response(),
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi_json(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

/// Prometheus metrics (reader).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
              (status = 401, description = "No valid key", body = ErrorBody)))]
async fn metrics_text(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = state
        .metrics
        .render(&state.ws)
        .map_err(|e| ApiError::internal("collecting metrics", e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route\n  help: GET /openapi.json lists the routes")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method\n  help: GET /openapi.json lists the routes",
    )
}
