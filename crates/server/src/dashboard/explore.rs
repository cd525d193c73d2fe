//! Explorers (`[explorers.NAME]`, readers): find an entity by typing its id
//! or its name (suggestions as one types, through htmx), pick a period, and
//! see its columns over time as charts, beside its current online record.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use sluice_project::ExplorerDef;
use sluice_runner::Suggestion;
use sluice_store::Role;

use super::{Chart, Viewer, draw_charts, error_page, layout, refuse, respond};
use crate::AppState;
use crate::error::ApiError;

/// Suggestions shown at most.
const SUGGESTIONS: usize = 12;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Ask {
    /// What was typed: an id or part of a name.
    q: Option<String>,
    /// The entity chosen.
    entity: Option<String>,
    /// The period's first time.
    from: Option<String>,
    /// Its last.
    to: Option<String>,
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    if !viewer.may(Role::Reader) {
        return refuse(&state, &viewer, Role::Reader, "/explore");
    }
    let body = html! {
        h1 { "Explore" }
        @if state.ws.project.explorers.is_empty() {
            p.help { "The project has no explorer: add " code { "[explorers.NAME]" } " to sluice.toml." }
        }
        @for e in state.ws.project.explorers.values() {
            section.card {
                h2 { a href=(format!("/explore/{}", super::encode(&e.name))) { (e.title) } }
                @if let Some(d) = &e.description { p.help { (d) } }
            }
        }
    };
    respond(StatusCode::OK, layout(&viewer, &state, "Explore", body))
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Query(ask): Query<Ask>,
) -> Response {
    if !viewer.may(Role::Reader) {
        let here = format!("/explore/{}", super::encode(&name));
        return refuse(&state, &viewer, Role::Reader, &here);
    }
    match body(&state, &name, &ask).await {
        Ok((title, b)) => respond(StatusCode::OK, layout(&viewer, &state, &title, b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

/// The suggestions for what was typed, as the list under the search box.
pub(crate) async fn suggest(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Query(ask): Query<Ask>,
) -> Response {
    if !viewer.may(Role::Reader) {
        return refuse(&state, &viewer, Role::Reader, "/explore");
    }
    let typed = ask.q.clone().unwrap_or_default();
    let bounds = state.limits.bounds();
    match sluice_runner::explore_suggest(&state.ws, &name, &typed, SUGGESTIONS, bounds).await {
        Ok(found) => respond(StatusCode::OK, suggestions(&name, &found, &ask)),
        Err(e) => error_page(&state, &viewer, e.into()),
    }
}

fn entity_link(name: &str, id: &str, ask: &Ask) -> String {
    let mut url = format!(
        "/explore/{}?entity={}",
        super::encode(name),
        super::encode(id)
    );
    for (k, v) in [("from", &ask.from), ("to", &ask.to)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            url.push_str(&format!("&{k}={}", super::encode(v)));
        }
    }
    url
}

fn suggestions(name: &str, found: &[Suggestion], ask: &Ask) -> Markup {
    html! {
        ul.suggestions id="suggestions" {
            @for s in found {
                li { a href=(entity_link(name, &s.id, ask)) data-entity=(s.id) {
                    @match &s.label { Some(l) => { (l) " " span.help { (s.id) } } None => { (s.id) } }
                } }
            }
        }
    }
}

async fn body(state: &AppState, name: &str, ask: &Ask) -> Result<(String, Markup), ApiError> {
    let ws = &state.ws;
    let bounds = state.limits.bounds();
    let def: &ExplorerDef = ws.project.explorers.get(name).ok_or_else(|| {
        ApiError::from(sluice_runner::ReadError::UnknownExplorer {
            name: name.to_string(),
            known: ws.project.explorers.keys().cloned().collect(),
        })
    })?;
    let typed = ask.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut found: Vec<Suggestion> = Vec::new();
    let mut entity = ask.entity.clone().filter(|e| !e.is_empty());
    if entity.is_none()
        && let Some(q) = typed
    {
        found = sluice_runner::explore_suggest(ws, name, q, SUGGESTIONS, bounds).await?;
        // What was typed names one entity: its id, or the only match.
        let exact = found.iter().find(|s| {
            s.id == q
                || s.label
                    .as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case(q))
        });
        entity = match (exact, found.len()) {
            (Some(s), _) => Some(s.id.clone()),
            (None, 1) => Some(found[0].id.clone()),
            _ => None,
        };
    }
    let mut shown = None;
    if let Some(id) = &entity {
        let series = sluice_runner::explore_series(
            ws,
            name,
            id,
            ask.from.as_deref(),
            ask.to.as_deref(),
            bounds,
        )
        .await?;
        let label = sluice_runner::explore_label(ws, name, id, bounds).await?;
        let record = match &def.online {
            Some(view) => {
                match sluice_runner::get_features(ws, view, std::slice::from_ref(id), None) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!("no online record of `{id}` in `{view}`: {e}");
                        None
                    }
                }
            }
            None => None,
        };
        shown = Some((id.clone(), label, series, record));
    }
    let search = format!("/explore/{}/suggest", super::encode(name));
    let markup = html! {
        h1 { (def.title) }
        @if let Some(d) = &def.description { p.lead { (d) } }
        section.card {
            // Any change of the form asks for suggestions again, so that their
            // links carry the period as it is written.
            form.explore method="get" action=(format!("/explore/{}", super::encode(name)))
                hx-get=(search) hx-trigger="input delay:250ms, search"
                hx-target="#suggestions" hx-swap="outerHTML" {
                label { "Find"
                    input id="q" type="search" name="q" autocomplete="off" value=(typed.unwrap_or_default())
                        placeholder=(if def.label.is_some() { "a name or an id" } else { "an id" });
                }
                label { "From" input.period id="from" type="text" name="from" value=(ask.from.clone().unwrap_or_default()) placeholder="first"; }
                label { "To" input.period id="to" type="text" name="to" value=(ask.to.clone().unwrap_or_default()) placeholder="last"; }
                button type="submit" { "Show" }
            }
            (suggestions(name, &found, ask))
            @if typed.is_some() && entity.is_none() && found.is_empty() {
                p.help { "Nothing matches “" (typed.unwrap_or_default()) "”." }
            }
        }
        @if let Some((id, label, series, record)) = &shown {
            section.card id="entity" data-entity=(id) {
                h2 { (label.clone().unwrap_or_else(|| id.clone())) " " small { (id) } }
                @if series.x.is_empty() {
                    p.help { "No row of " code { (def.from) } " for it in this period." }
                } @else {
                    p.help { (series.x.len()) " rows of " code { (def.from) } }
                    div.charts { (draw_charts(&charts(def, series))) }
                }
            }
            @if let Some(view) = &def.online {
                section.card {
                    h2 { "Now" " " small { "the online record of " code { (view) } } }
                    @match record {
                        Some(r) => {
                            p.help { "As of " (super::when_text(&r.event_timestamp)) }
                            div.scroll { table { tbody {
                                @for (k, v) in &r.features { tr { th { (k) } td { (super::show(v)) } } }
                            } } }
                        }
                        None => { p.help { "No online record for it." } }
                    }
                }
            }
        }
    };
    Ok((def.title.clone(), markup))
}

/// The explorer's charts over `series`.
fn charts(def: &ExplorerDef, series: &sluice_runner::Series) -> Vec<Chart> {
    def.charts
        .iter()
        .map(|(title, columns)| Chart {
            title: title.clone(),
            time: series.x_is_time,
            x_label: def.time.clone(),
            x: series.x.clone(),
            series: columns
                .iter()
                .filter_map(|c| series.columns.iter().find(|(n, _)| n == c).cloned())
                .collect(),
        })
        .collect()
}
