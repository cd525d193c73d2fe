//! The OpenAPI 3.1 document, generated from the handlers' annotations and types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    assets, error, exports, features, keys, models, predictions, push, query, runs, search,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "sluice", description = "Features, predictions, assets, read-only SQL and runs of a sluice project. Send `Authorization: Bearer KEY`; roles: reader < operator < admin."),
    paths(
        crate::healthz, crate::readyz, crate::openapi_json, crate::metrics_text,
        features::get_features, features::post_features,
        predictions::get_prediction, predictions::predict,
        models::list, models::detail,
        assets::list, assets::detail, assets::rows,
        exports::entry,
        search::search,
        query::query,
        push::push,
        runs::start, runs::list, runs::detail, runs::cancel, runs::logs,
        keys::list, keys::create, keys::revoke,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "features", description = "Online features (reader)"),
        (name = "predictions", description = "Batch and online predictions of models (reader)"),
        (name = "models", description = "The model registry: versions, metrics, importance (reader)"),
        (name = "assets", description = "Assets: metadata (reader), rows (operator)"),
        (name = "exports", description = "Entries of JSON exports keyed by entity (reader)"),
        (name = "search", description = "Searches of collections (reader)"),
        (name = "query", description = "Read-only SQL (operator)"),
        (name = "push", description = "Rows pushed to push sources (writer)"),
        (name = "runs", description = "Runs (operator)"),
        (name = "keys", description = "API keys (admin)"),
        (name = "health", description = "Health, readiness, this document, metrics"),
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
