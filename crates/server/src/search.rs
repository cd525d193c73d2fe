//! `POST /v1/search/{collection}` (reader): the chunks of a collection that
//! best answer a question, timed into `sluice_vector_search_latency_seconds`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, Json};

/// The most chunks one search returns.
const MAX_K: usize = 100;

/// A search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The question, in words.
    #[schema(example = "How do I handle an exception?")]
    pub question: String,
    /// How many chunks to return (default 10, at most 100).
    #[schema(minimum = 1, maximum = 100, example = 5)]
    pub k: Option<usize>,
    /// `text` (BM25), `vector` (nearest embeddings) or `hybrid` (both, fused by
    /// relative score). Default: hybrid, or text for a collection without
    /// embeddings.
    #[schema(example = "hybrid")]
    pub mode: Option<String>,
    /// A SQL predicate over the chunk table's columns a chunk must meet.
    #[schema(example = "document_id LIKE 'docs/tutorial/%'")]
    pub filter: Option<String>,
}

/// One chunk found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    /// `<document>#<n>`.
    pub chunk_id: String,
    /// The document it is part of.
    pub document_id: String,
    /// The sections it is in.
    pub heading_path: String,
    /// How well it ranks.
    pub score: f64,
    /// Its text.
    pub text: String,
    /// The document's title and the collection's metadata columns, as text.
    pub metadata: BTreeMap<String, Option<String>>,
}

/// A search's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The collection's version that answered.
    pub version: u64,
    /// How the chunks were ranked: `text`, `vector` or `hybrid`.
    pub mode: String,
    /// The chunks, best first.
    pub hits: Vec<SearchHit>,
}

/// Searches a collection (reader).
#[utoipa::path(post, path = "/v1/search/{collection}", tag = "search",
    params(("collection" = String, Path, description = "The collection")),
    request_body = SearchRequest,
    responses((status = 200, description = "The chunks, best first", body = SearchResponse),
              (status = 400, description = "A bad `k`, `mode` or `filter`", body = ErrorBody),
              (status = 401, description = "No valid key", body = ErrorBody),
              (status = 404, description = "No such collection", body = ErrorBody),
              (status = 409, description = "Not indexed yet: run it", body = ErrorBody)))]
pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    Path(collection): Path<String>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let k = req.k.unwrap_or(10);
    if k == 0 || k > MAX_K {
        return Err(ApiError::bad_request(format!(
            "`k` is {k}; ask for 1 to {MAX_K} chunks"
        )));
    }
    let mode = match req.mode.as_deref() {
        Some(word) => match sluice_runner::SearchMode::from_word(word) {
            Some(mode) => Some(mode),
            None => {
                return Err(ApiError::bad_request(format!(
                    "`mode` is {word:?}; use text, vector or hybrid"
                )));
            }
        },
        None => None,
    };
    let started = Instant::now();
    let result = sluice_runner::search(
        &state.ws,
        &collection,
        &req.question,
        k,
        mode,
        req.filter.as_deref(),
    )
    .await?;
    state
        .metrics
        .observe_search(&collection, started.elapsed().as_secs_f64());
    Ok(Json(SearchResponse {
        version: result.version,
        mode: result.mode.as_str().to_string(),
        hits: result
            .hits
            .into_iter()
            .map(|h| SearchHit {
                chunk_id: h.chunk_id,
                document_id: h.document_id,
                heading_path: h.heading_path,
                score: h.score,
                text: h.text,
                metadata: h.metadata,
            })
            .collect(),
    }))
}
