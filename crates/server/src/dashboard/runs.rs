//! Runs (operators): the list with filters; a run's page with each attempt
//! and its log lines, refreshed every second while the run goes on; cancel
//! and re-run; and the project's action buttons, which start runs.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use sluice_store::{Role, RunRecord, RunState};

use super::{CsrfForm, Viewer, badge, error_page, layout, refuse, refused, respond, span};
use crate::AppState;
use crate::error::ApiError;

/// Runs listed at most.
const LIST: usize = 200;
/// Log lines shown on a run's page (the newest).
const LOG_LINES: usize = 500;

#[derive(Debug, Deserialize)]
pub(crate) struct Filters {
    /// Only runs in this state.
    state: Option<String>,
    /// Only runs with an attempt at this asset.
    asset: Option<String>,
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<Filters>,
) -> Response {
    if !viewer.may(Role::Operator) {
        return refuse(&state, &viewer, Role::Operator, "/runs");
    }
    match list_body(&state, &f) {
        Ok(b) => respond(StatusCode::OK, layout(&viewer, &state, "Runs", b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

const STATES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "abandoned",
];

fn list_body(state: &AppState, f: &Filters) -> Result<Markup, ApiError> {
    let ws = &state.ws;
    let wanted_state = f.state.as_deref().filter(|s| !s.is_empty());
    let wanted_asset = f.asset.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let mut runs: Vec<RunRecord> = Vec::new();
    for r in ws.metadata.runs(LIST)? {
        if wanted_state.is_some_and(|s| s != r.state.as_str()) {
            continue;
        }
        if let Some(a) = wanted_asset
            && !ws.metadata.attempts(r.id)?.iter().any(|t| t.asset == a)
        {
            continue;
        }
        runs.push(r);
    }
    Ok(html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in STATES { option value=(s) selected[wanted_state == Some(s)] { (s) } }
                }
            }
            label { "Asset "
                input type="text" name="asset" value=(wanted_asset.unwrap_or_default()) list="asset-names" placeholder="any";
            }
            datalist id="asset-names" { @for n in &ws.project.order { option value=(n.as_str()) {} } }
            button type="submit" { "Filter" }
        }
        @if runs.is_empty() {
            p.help { "No run matches." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Run" } th { "State" } th { "Started" } th { "Took" } th { "Asked for" } th { "Assets" } } }
                tbody { @for r in &runs {
                    tr {
                        td { a href=(format!("/runs/{}", r.id)) { "#" (r.id) } }
                        td { (badge(r.state.as_str())) }
                        td { (super::when(r.started_at)) }
                        td { (r.finished_at.map(|e| span((e - r.started_at).num_milliseconds().max(0) as u64)).unwrap_or_default()) }
                        td.wrap { (if r.targets.is_empty() { "everything".to_string() } else { r.targets.join(", ") }) }
                        td.wrap { (r.counts) }
                    }
                } }
            } }
        }
    })
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    if !viewer.may(Role::Operator) {
        return refuse(
            &state,
            &viewer,
            Role::Operator,
            &format!("/runs/{}", super::encode(&id)),
        );
    }
    match live_body(&state, &viewer, &id) {
        Ok((run, live)) => {
            let body = html! {
                h1 { "Run #" (run.id) }
                (live)
            };
            respond(
                StatusCode::OK,
                layout(&viewer, &state, &format!("Run {}", run.id), body),
            )
        }
        Err(e) => error_page(&state, &viewer, e),
    }
}

/// The part of a run's page that changes while it runs; it asks for itself
/// again every second until the run ends.
pub(crate) async fn live(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    if !viewer.may(Role::Operator) {
        return refuse(&state, &viewer, Role::Operator, "/runs");
    }
    match live_body(&state, &viewer, &id) {
        Ok((_, live)) => respond(StatusCode::OK, live),
        Err(e) => error_page(&state, &viewer, e),
    }
}

fn ongoing(r: &RunRecord) -> bool {
    matches!(r.state, RunState::Running | RunState::Queued)
}

fn live_body(state: &AppState, viewer: &Viewer, id: &str) -> Result<(RunRecord, Markup), ApiError> {
    let (run, attempts) = sluice_runner::run_detail(&state.ws, id)?;
    let logs = sluice_runner::run_logs(&state.ws, id, None, None, None)?;
    let skip = logs.lines.len().saturating_sub(LOG_LINES);
    let going = ongoing(&run);
    let took = run
        .finished_at
        .unwrap_or_else(chrono::Utc::now)
        .signed_duration_since(run.started_at)
        .num_milliseconds()
        .max(0) as u64;
    let markup = html! {
        div id="live" data-run=(run.id) data-state=(run.state.as_str())
            hx-get=[going.then(|| format!("/runs/{}/live", run.id))]
            hx-trigger=[going.then_some("every 1s")]
            hx-swap=[going.then_some("outerHTML")] {
            section.card {
                dl.facts {
                    dt { "State" } dd.state { (badge(run.state.as_str())) }
                    dt { "Started" } dd { (super::when(run.started_at)) }
                    dt { (if going { "Running for" } else { "Took" }) } dd { (span(took)) }
                    dt { "Asked for" } dd { (if run.targets.is_empty() { "everything".to_string() } else { run.targets.join(", ") }) }
                    dt { "Assets" } dd { (run.counts) }
                }
                div.actions {
                    @if going {
                        form method="post" action=(format!("/runs/{}/cancel", run.id)) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.danger type="submit" { "Cancel" }
                        }
                    } @else {
                        form method="post" action=(format!("/runs/{}/rerun", run.id)) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Run again" }
                        }
                    }
                }
            }
            section.card {
                h2 { "Assets" }
                @if attempts.is_empty() {
                    p.help { (if going { "Nothing has finished yet." } else { "No asset was attempted." }) }
                } @else {
                    div.scroll { table {
                        thead { tr { th { "Asset" } th { "Try" } th { "Status" } th { "Took" } th { "In" } th { "Out" } th { "Quarantined" } th { "Error" } } }
                        tbody { @for a in &attempts {
                            tr {
                                td { a href=(format!("/assets/{}", super::encode(&a.asset))) { (a.asset) } }
                                td { (a.attempt) }
                                td { (badge(&a.status)) }
                                td { (span(a.duration_ms)) }
                                td { (a.rows_in) }
                                td { (a.rows_out) }
                                td { (a.rows_quarantined) }
                                td.wrap { pre.error { (a.error.clone().unwrap_or_default()) }
                                    @if let Some(ms) = a.retry_in_ms { span.help { "retried after " (span(ms)) } } }
                            }
                        } }
                    } }
                }
            }
            section.card {
                h2 { "Log" @if skip > 0 { " " small { "the newest " (LOG_LINES) " lines" } } }
                @if logs.lines.is_empty() {
                    p.help { "No line yet." }
                } @else {
                    div.scroll { pre.log { @for l in logs.lines.iter().skip(skip) {
                        span class={ "lvl " (l.line.level.to_ascii_lowercase()) } {
                            (l.line.at.format("%H:%M:%S%.3f")) " " (l.line.level) " "
                            @if let Some(a) = &l.asset { "[" (a) "] " }
                            (l.line.message) "\n"
                        }
                    } } }
                }
            }
        }
    };
    Ok((run, markup))
}

/// Starts a run of `assets` and shows its page.
async fn start(state: &Arc<AppState>, viewer: &Viewer, assets: Vec<String>) -> Response {
    match crate::runs::spawn_run(state, assets).await {
        Ok(started) => Redirect::to(&format!("/runs/{}", started.run_id)).into_response(),
        Err(e) => error_page(state, viewer, e),
    }
}

pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(no) = refused(&state, &viewer, &form, "/runs") {
        return no;
    }
    match sluice_runner::cancel_run(&state.ws, &id) {
        Ok(r) => Redirect::to(&format!("/runs/{}", r.id)).into_response(),
        Err(e) => error_page(&state, &viewer, e.into()),
    }
}

pub(crate) async fn rerun(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(no) = refused(&state, &viewer, &form, "/runs") {
        return no;
    }
    match sluice_runner::run_detail(&state.ws, &id) {
        Ok((run, _)) => start(&state, &viewer, run.targets).await,
        Err(e) => error_page(&state, &viewer, e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct BackfillForm {
    csrf: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `POST /assets/{name}/backfill`: builds a range of a partitioned asset's
/// partitions, as `sluice backfill NAME --from --to` does.
pub(crate) async fn backfill(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Form(form): Form<BackfillForm>,
) -> Response {
    let here = format!("/assets/{}", super::encode(&name));
    let token = CsrfForm { csrf: form.csrf };
    if let Some(no) = refused(&state, &viewer, &token, &here) {
        return no;
    }
    let (Some(from), Some(to)) = (
        form.from.filter(|f| !f.trim().is_empty()),
        form.to.filter(|t| !t.trim().is_empty()),
    ) else {
        return error_page(
            &state,
            &viewer,
            ApiError::bad_request(
                "a backfill needs its first and last partition\n  help: write both, as labels (2013-01-05) or dates inside them",
            ),
        );
    };
    tracing::info!(asset = name, from, to, "backfill asked on the dashboard");
    match crate::runs::spawn_backfill(&state, name, (from, to)).await {
        Ok(started) => Redirect::to(&format!("/runs/{}", started.run_id)).into_response(),
        Err(e) => error_page(&state, &viewer, e),
    }
}

/// `POST /actions/{name}`: the button of `[actions.NAME]`.
pub(crate) async fn action(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(no) = refused(&state, &viewer, &form, "/") {
        return no;
    }
    let Some(def) = state.ws.project.actions.get(&name) else {
        let known: Vec<&str> = state
            .ws
            .project
            .actions
            .keys()
            .map(String::as_str)
            .collect();
        return error_page(
            &state,
            &viewer,
            ApiError::not_found(format!(
                "no action `{name}`; the actions are: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )),
        );
    };
    let assets = sluice_runner::schedule::selected(&state.ws.project, &def.assets);
    tracing::info!(action = name, "action pressed on the dashboard");
    start(&state, &viewer, assets).await
}
