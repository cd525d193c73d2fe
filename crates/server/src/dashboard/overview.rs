//! The overview: the asset graph coloured by state, the project's actions,
//! the latest runs, the checks failing now and the schedules' next ticks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use sluice_runner::AssetState;
use sluice_store::{AttemptRecord, Role, RunRecord, RunState};
use sluice_validate::Verdict;

use super::graph::{self, Node};
use super::{Viewer, badge, error_page, layout, refuse, respond};
use crate::AppState;
use crate::error::ApiError;

/// What colour an asset is: its newest attempt's failure wins, then a run in
/// progress that will rebuild it, then whether it is stale.
fn state_of(
    s: &AssetState,
    last: Option<&AttemptRecord>,
    running: Option<&RunRecord>,
) -> &'static str {
    if running.is_some() && s.stale {
        return "running";
    }
    match last.map(|a| a.status.as_str()) {
        Some("failed") => "failed",
        Some("blocked") => "blocked",
        _ if s.stale && s.version.is_none() && s.committed_at.is_none() => "never",
        _ if s.stale => "stale",
        _ => "fresh",
    }
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    if !viewer.may(Role::Reader) {
        return refuse(&state, &viewer, Role::Reader, "/");
    }
    match body(&state, &viewer).await {
        Ok(b) => respond(StatusCode::OK, layout(&viewer, &state, "Overview", b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

async fn body(state: &AppState, viewer: &Viewer) -> Result<Markup, ApiError> {
    let ws = &state.ws;
    let states = sluice_runner::status(ws).await?;
    let last: HashMap<String, AttemptRecord> = ws
        .metadata
        .latest_attempts()?
        .into_iter()
        .map(|a| (a.asset.clone(), a))
        .collect();
    let runs = ws.metadata.runs(10)?;
    let running = runs
        .iter()
        .find(|r| matches!(r.state, RunState::Running | RunState::Queued));
    let nodes: Vec<Node> = states
        .iter()
        .map(|s| Node {
            name: s.name.clone(),
            kind: s.kind.to_string(),
            state: state_of(s, last.get(&s.name), running),
            inputs: ws
                .project
                .asset(&s.name)
                .map(|a| a.inputs.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        })
        .collect();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for n in &nodes {
        match counts.iter_mut().find(|(w, _)| *w == n.state) {
            Some((_, c)) => *c += 1,
            None => counts.push((n.state, 1)),
        }
    }
    let failing: Vec<(String, String, String, String)> = sluice_runner::latest_reports(ws)?
        .into_iter()
        .flat_map(|(asset, report)| {
            report
                .checks
                .into_iter()
                .filter(|c| c.verdict == Verdict::Fail)
                .map(move |c| {
                    (
                        asset.clone(),
                        c.name,
                        c.severity.as_str().to_string(),
                        c.detail,
                    )
                })
        })
        .collect();
    let schedules = sluice_runner::schedule::schedule_list(ws)?;
    let operator = viewer.may(Role::Operator);
    Ok(html! {
        h1 { "Overview" }
        section.card {
            h2 { "Assets" }
            p.legend {
                @for (word, n) in &counts { (badge(word)) " " (n) " " }
            }
            div.scroll { (graph::draw(&nodes)) }
        }
        @if operator && !ws.project.actions.is_empty() {
            section.card {
                h2 { "Actions" }
                div.actions {
                    @for a in ws.project.actions.values() {
                        form method="post" action=(format!("/actions/{}", super::encode(&a.name))) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.action type="submit" data-action=(a.name) { (a.label) }
                            @if let Some(d) = &a.description { span.help { (d) } }
                        }
                    }
                }
            }
        }
        @if operator {
            section.card {
                h2 { "Latest runs" }
                @if runs.is_empty() {
                    p.help { "No run yet." }
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Run" } th { "State" } th { "Started" } th { "Assets" } } }
                        tbody {
                            @for r in &runs {
                                tr {
                                    td { a href=(format!("/runs/{}", r.id)) { "#" (r.id) } }
                                    td { (badge(r.state.as_str())) }
                                    td { (super::when(r.started_at)) }
                                    td.wrap { (r.counts) }
                                }
                            }
                        }
                    } }
                    p { a href="/runs" { "All runs" } }
                }
            }
        }
        section.card {
            h2 { "Failing checks" }
            @if failing.is_empty() {
                p.help { "Every check of the newest reports passes." }
            } @else {
                ul.checks {
                    @for (asset, name, severity, detail) in &failing {
                        li {
                            a href=(format!("/assets/{}", super::encode(asset))) { (asset) }
                            " · " code { (name) } " " (badge(severity))
                            div.help { (detail) }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Schedules" }
            @if schedules.is_empty() {
                p.help { "No schedule: add " code { "[schedules.NAME]" } " to sluice.toml." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Schedule" } th { "Next tick" } th { "Last tick" } th { "Its run" } } }
                    tbody {
                        @for s in &schedules {
                            tr {
                                td { (s.def.name) @if !s.def.enabled { " " (badge("disabled")) } }
                                td { (s.next_tick.map(super::when).unwrap_or_else(|| "—".into())) }
                                td { (s.last_tick.as_ref().map(|t| super::when(t.due_at)).unwrap_or_else(|| "—".into())) }
                                td {
                                    @match (s.last_tick.as_ref().and_then(|t| t.run_id), s.last_run_state) {
                                        (Some(id), Some(st)) => {
                                            @if operator { a href=(format!("/runs/{id}")) { "#" (id) } } @else { "#" (id) }
                                            " " (badge(st.as_str()))
                                        }
                                        _ => { "—" }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    })
}
