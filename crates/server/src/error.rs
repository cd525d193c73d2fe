//! Every error the API returns: `{ "error": code, "message": text }` with its
//! status. Extractor rejections (bad JSON, bad query strings, bodies too large)
//! are turned into the same shape.

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::rejection::QueryRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sluice_runner::ReadError;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not_found`, `bad_request`,
    /// `conflict`, `payload_too_large`, `timeout`, `internal`...
    pub error: String,
    /// What went wrong and what to do, for people.
    pub message: String,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The code of [`ErrorBody::error`].
    pub code: &'static str,
    /// The message of [`ErrorBody::message`].
    pub message: String,
}

impl ApiError {
    /// An error of this status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The same error, about part `at` of the request (`rows[3]`).
    pub fn at(self, at: &str) -> Self {
        Self {
            message: format!("{at}: {}", self.message),
            ..self
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: our fault; the details go to the log, not to the client.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!("{what}: {e}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what} failed; the server's log has the details"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The one place errors of the layers below become HTTP statuses. Every
/// variant is named, so a new kind of failure must be given its status here.
impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        use sluice_runner::Error as E;
        use sluice_store::Error as S;
        let conflict = |m: String| ApiError::new(StatusCode::CONFLICT, "conflict", m);
        match e {
            ReadError::UnknownAsset { .. }
            | ReadError::UnknownExplorer { .. }
            | ReadError::NotAFeatureView { .. }
            | ReadError::NoPredictions { .. }
            | ReadError::ViewNotMaterialized { .. }
            | ReadError::NotAKeyedExport { .. }
            | ReadError::ExportNotWritten { .. }
            | ReadError::NoRecord { .. }
            | ReadError::NoSuchRun { .. }
            | ReadError::NotACollection { .. }
            | ReadError::NotInRun { .. } => ApiError::not_found(e.to_string()),
            // Built but not indexed yet (or never built): a run fixes it.
            ReadError::NotIndexed { .. } => conflict(e.to_string()),
            ReadError::UnknownFeature { .. }
            | ReadError::MissingKey { .. }
            | ReadError::WrongKeyCount { .. }
            | ReadError::NoFeatures
            | ReadError::TooManyEntities { .. }
            | ReadError::LimitTooHigh { .. }
            | ReadError::NotARunId { .. }
            | ReadError::SearchMode { .. }
            | ReadError::BadFilter { .. }
            | ReadError::BadPeriod { .. } => ApiError::bad_request(e.to_string()),
            // The project's mistake, which its operator fixes: said as it is.
            ReadError::ExplorerColumn { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "project", e.to_string())
            }
            ReadError::ReadRows { .. } => ApiError::internal("reading rows", e),
            // The server's setup (the model, the embedding service), not the request.
            ReadError::Embedding { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            ReadError::ExportUnreadable { .. } => ApiError::internal("reading an export", e),
            ReadError::RunEnded { .. } => conflict(e.to_string()),
            ReadError::Timeout { .. } => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string())
            }
            ReadError::Runner(e) => match e {
                E::UnknownAssets { .. } | E::UnknownAlert { .. } | E::NoModel { .. } => {
                    ApiError::not_found(e.to_string())
                }
                E::Engine { .. } if e.class().is_transient() => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                ),
                E::Engine { .. }
                | E::QuerySyntax { .. }
                | E::AsOf(_)
                | E::ReadTime(_)
                | E::OnlineAsOf { .. }
                | E::Training(_)
                | E::Partitions(_)
                | E::EntityKey { .. }
                | E::Model { .. } => ApiError::bad_request(e.to_string()),
                E::Output { .. } => ApiError::internal("writing a file", e),
                E::OnlineTiles { .. } => ApiError::internal("reading the online store", e),
                E::MissingInputs { .. } => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "missing_inputs",
                    e.to_string(),
                ),
                E::Store(s) => match *s {
                    S::NotMaterialized { .. } | S::NoSuchVersion { .. } => {
                        ApiError::not_found(s.to_string())
                    }
                    S::Busy { .. } => conflict(s.to_string()),
                    other => ApiError::internal("reading the store", other),
                },
                E::Project(d) => ApiError::internal("loading the project", d),
                E::ModelFile { .. } => ApiError::internal("loading the model", e),
                E::Joined { .. } => ApiError::internal("running", e),
            },
        }
    }
}

impl From<sluice_runner::Error> for ApiError {
    fn from(e: sluice_runner::Error) -> Self {
        ReadError::Runner(e).into()
    }
}

impl From<sluice_store::Error> for ApiError {
    fn from(e: sluice_store::Error) -> Self {
        ReadError::from(e).into()
    }
}

/// A JSON response. (axum's own `Json` would turn on serde_json's `raw_value`
/// feature, and with it a rebuild of Arrow, DataFusion and Delta Lake.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Err(e) => ApiError::internal("writing the response", e).into_response(),
        }
    }
}

/// A JSON request body, read within the body limit; every rejection is an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON\n  help: send `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| rejection(r.status(), r.body_text()))?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = T::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        value.map(Self).map_err(|e| {
            let status = if e.is_data() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            ApiError::new(
                status,
                "bad_request",
                format!("the body is not the JSON this route takes: {e}"),
            )
        })
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    axum::extract::Query<T>: axum::extract::FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(r) => Err(rejection(r.status(), r.body_text())),
        }
    }
}

fn rejection(status: StatusCode, text: String) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_request",
    };
    ApiError::new(status, code, text)
}
