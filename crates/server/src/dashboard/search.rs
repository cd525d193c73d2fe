//! A collection's search page (readers): a question, the ranking mode and a
//! filter, and the chunks that answer it — the same search as
//! `POST /v1/search/{collection}` and `sluice search`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use sluice_runner::SearchMode;
use sluice_store::Role;

use super::{Viewer, error_page, layout, refuse, respond};
use crate::AppState;
use crate::error::ApiError;

/// Hits shown.
const HITS: usize = 10;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Ask {
    /// The question.
    q: Option<String>,
    /// `text`, `vector` or `hybrid`; empty: the collection's default.
    mode: Option<String>,
    /// A SQL predicate over the chunk table.
    filter: Option<String>,
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Query(ask): Query<Ask>,
) -> Response {
    if !viewer.may(Role::Reader) {
        let here = format!("/search/{}", super::encode(&name));
        return refuse(&state, &viewer, Role::Reader, &here);
    }
    match body(&state, &name, &ask).await {
        Ok(b) => respond(
            StatusCode::OK,
            layout(&viewer, &state, &format!("Search {name}"), b),
        ),
        Err(e) => error_page(&state, &viewer, e),
    }
}

async fn body(state: &AppState, name: &str, ask: &Ask) -> Result<Markup, ApiError> {
    let question = ask.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let filter = ask
        .filter
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    let mode_word = ask.mode.as_deref().filter(|m| !m.is_empty());
    let mode = match mode_word {
        Some(word) => Some(SearchMode::from_word(word).ok_or_else(|| {
            ApiError::bad_request(format!("`mode` is {word:?}; use text, vector or hybrid"))
        })?),
        None => None,
    };
    // An unknown collection is a 404 before anything is asked.
    sluice_runner::ensure_collection(&state.ws, name)?;
    let result = match question {
        Some(q) => Some(sluice_runner::search(&state.ws, name, q, HITS, mode, filter).await?),
        None => None,
    };
    let action = format!("/search/{}", super::encode(name));
    Ok(html! {
        h1 { "Search " a href=(format!("/assets/{}", super::encode(name))) { (name) } }
        form.search method="get" action=(action) {
            input type="search" name="q" value=(question.unwrap_or_default())
                placeholder="Ask a question" autofocus aria-label="Question";
            select name="mode" aria-label="Ranking" {
                option value="" selected[mode_word.is_none()] { "default" }
                @for m in ["hybrid", "vector", "text"] {
                    option value=(m) selected[mode_word == Some(m)] { (m) }
                }
            }
            input type="text" name="filter" value=(filter.unwrap_or_default())
                placeholder="Filter: document_id LIKE 'docs/faq/%'" aria-label="Filter";
            button type="submit" { "Search" }
        }
        @if let Some(r) = &result {
            p.help { (r.hits.len()) " chunks from version " (r.version) ", ranked by " (r.mode.as_str()) }
            @if r.hits.is_empty() { p { "No chunk matches." } }
            ol.hits {
                @for h in &r.hits {
                    li.card {
                        h2 {
                            (h.document_id)
                            @if !h.heading_path.is_empty() { " · " span.help { (h.heading_path) } }
                            " " small { "score " (format!("{:.3}", h.score)) }
                        }
                        pre.chunk { (h.text) }
                        @let shown: Vec<_> = h.metadata.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))).collect();
                        @if !shown.is_empty() {
                            dl.facts { @for (k, v) in shown { dt { (k) } dd { (v) } } }
                        }
                    }
                }
            }
        }
    })
}
