//! Models (readers, as `GET /v1/models`): each model's versions with their
//! validation metrics, which one serves and why the others do not, the
//! serving version's feature importance, and (operators) a backtest over
//! periods, computed when asked as `sluice backtest` does.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use sluice_runner::{BacktestRequest, BacktestSummary, Period};
use sluice_store::Role;

use super::{CsrfForm, Viewer, badge, error_page, layout, refuse, refused, respond, span};
use crate::AppState;
use crate::error::ApiError;

/// Inputs drawn in the importance chart at most.
const IMPORTANCE: usize = 20;

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    if !viewer.may(Role::Reader) {
        return refuse(&state, &viewer, Role::Reader, "/models");
    }
    let models = match sluice_runner::model_list(&state.ws) {
        Ok(m) => m,
        Err(e) => return error_page(&state, &viewer, e.into()),
    };
    let body = html! {
        h1 { "Models" }
        @if models.is_empty() {
            p.help { "The project has no model: add " code { "[models.NAME]" } " to sluice.toml." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Model" } th { "Task" } th { "Learner" } th { "Serving" } th { "Versions" } th { "Serving metrics" } } }
                tbody { @for m in &models {
                    tr {
                        td { a href=(format!("/models/{}", super::encode(&m.name))) { (m.name) } }
                        td { (m.task) }
                        td { (m.learner) }
                        td { @match m.serving { Some(v) => { "v" (v) }, None => { (badge("none")) } } }
                        td { (m.versions.len()) }
                        td.wrap { @if let Some(v) = m.serving_version() {
                            @for (k, x) in &v.metrics { code { (k) } " " (format!("{x:.4}")) "  " }
                        } }
                    }
                } }
            } }
        }
    };
    respond(StatusCode::OK, layout(&viewer, &state, "Models", body))
}

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    if !viewer.may(Role::Reader) {
        let here = format!("/models/{}", super::encode(&name));
        return refuse(&state, &viewer, Role::Reader, &here);
    }
    match body(&state, &viewer, &name, None) {
        Ok(b) => respond(StatusCode::OK, layout(&viewer, &state, &name, b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct BacktestForm {
    csrf: Option<String>,
    from: Option<String>,
    to: Option<String>,
    period: Option<String>,
    /// Retrain before each period instead of scoring with the serving version.
    retrain: Option<String>,
}

/// A date (`2013-12-01`, midnight UTC) or an RFC 3339 time.
fn instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// `POST /models/{name}/backtest` (operators): the model page with the
/// backtest's periods, as `sluice backtest` computes them.
pub(crate) async fn backtest(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Form(form): Form<BacktestForm>,
) -> Response {
    let here = format!("/models/{}", super::encode(&name));
    let token = CsrfForm {
        csrf: form.csrf.clone(),
    };
    if let Some(no) = refused(&state, &viewer, &token, &here) {
        return no;
    }
    let period = match form.period.as_deref().unwrap_or("week") {
        "day" => Period::Day,
        "month" => Period::Month,
        _ => Period::Week,
    };
    let bounds = (
        form.from.as_deref().and_then(instant),
        form.to.as_deref().and_then(instant),
    );
    let outcome = match bounds {
        (Some(from), Some(to)) => {
            let req = BacktestRequest {
                model: name.clone(),
                from,
                to,
                period,
                reuse: if form.retrain.is_some() { None } else { Some(None) },
                top_k: 10,
                payoff: None,
                stake: 0.0,
                group_by: None,
                id: None,
            };
            sluice_runner::backtest(&state.ws, &req)
                .await
                .map_err(|e| e.to_string())
        }
        _ => Err("write the first and the last day of the backtest as dates (2013-12-01) or RFC 3339 times".to_string()),
    };
    let form_values = (form.from, form.to, form.period);
    match body(&state, &viewer, &name, Some((form_values, outcome))) {
        Ok(b) => respond(StatusCode::OK, layout(&viewer, &state, &name, b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

/// What the backtest form was sent with, and what came of it.
type Backtested = (
    (Option<String>, Option<String>, Option<String>),
    Result<BacktestSummary, String>,
);

fn body(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    backtested: Option<Backtested>,
) -> Result<Markup, ApiError> {
    let m = sluice_runner::model_info(&state.ws, name)?;
    let serving = m.serving_version();
    let metric_names: Vec<String> = {
        let mut names: Vec<String> = m
            .versions
            .iter()
            .flat_map(|v| v.metrics.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let operator = viewer.may(Role::Operator);
    Ok(html! {
        h1 { (m.name) " " small { (m.task) " · " (m.learner) } }
        section.card {
            h2 { "Serving" }
            @match serving {
                Some(v) => {
                    p { "Version " strong { (v.version) } " serves: the newest version that met the promotion thresholds"
                        @if m.newest().is_some_and(|n| n.version != v.version) { " (newer versions did not; see below)" }
                        ". Trained in run "
                        @if operator { a href=(format!("/runs/{}", v.run_id)) { "#" (v.run_id) } } @else { "#" (v.run_id) }
                        " on " (v.train_rows) " rows, validated on " (v.valid_rows)
                        @if let Some(from) = &v.valid_from { " from " (from) }
                        ", in " (span(v.train_ms)) "." }
                }
                None => { p { (badge("none")) " No version met the promotion thresholds yet: predictions are not served." } }
            }
            @if let Some(pred) = &m.predictions {
                p { "Batch predictions: " a href=(format!("/assets/{}", super::encode(pred))) { (pred) } }
            }
        }
        @if let Some(v) = serving.filter(|v| !v.importance.is_empty()) {
            section.card {
                h2 { "Feature importance" " " small { "version " (v.version) } }
                (importance(&v.importance))
            }
        }
        section.card {
            h2 { "Versions" }
            div.scroll { table {
                thead { tr {
                    th { "Version" } th { "Trained" } th { "Promoted" }
                    @for k in &metric_names { th { (k) } }
                    th { "Rows" } th { "Why not promoted" }
                } }
                tbody { @for v in m.versions.iter().rev() {
                    tr {
                        td { "v" (v.version) @if Some(v.version) == m.serving { " " (badge("serving")) } }
                        td { (super::when(v.created_at)) }
                        td { (badge(if v.promoted { "pass" } else { "fail" })) }
                        @for k in &metric_names { td { (v.metrics.get(k).map(|x| format!("{x:.4}")).unwrap_or_default()) } }
                        td { (v.train_rows) " + " (v.valid_rows) }
                        td.wrap { (v.reason.clone().unwrap_or_default()) }
                    }
                } }
            } }
        }
        section.card {
            h2 { "Backtest" }
            @if operator {
                @let (values, outcome) = match &backtested {
                    Some((v, o)) => (Some(v), Some(o)),
                    None => (None, None),
                };
                @let first = values.and_then(|v| v.0.clone()).or_else(|| serving.and_then(|v| v.valid_from.clone()).map(|t| t.chars().take(10).collect()));
                form.filters method="post" action=(format!("/models/{}/backtest", super::encode(&m.name))) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label { "From " input type="text" name="from" required value=(first.unwrap_or_default()) placeholder="2013-12-01"; }
                    label { "To " input type="text" name="to" required value=(values.and_then(|v| v.1.clone()).unwrap_or_default()) placeholder="2014-01-01"; }
                    label { "Periods "
                        select name="period" {
                            @for p in ["day", "week", "month"] {
                                option value=(p) selected[values.and_then(|v| v.2.as_deref()).unwrap_or("week") == p] { (p) }
                            }
                        }
                    }
                    label { input type="checkbox" name="retrain" value="1"; " retrain before each period" }
                    button type="submit" { "Backtest" }
                }
                p.help { "Scores each period with the serving version (or a version retrained on what was known before it), as " code { "sluice backtest " (m.name) } " does; nothing is stored." }
                @match outcome {
                    Some(Ok(b)) => { (backtest_table(b)) }
                    Some(Err(e)) => { pre.error role="alert" { (e) } }
                    None => {}
                }
            } @else {
                p.help { "Backtests are computed on demand, not stored: " code { "sluice backtest " (m.name) } " prints them." }
            }
        }
    })
}

/// A backtest's periods and total.
fn backtest_table(b: &BacktestSummary) -> Markup {
    let names: Vec<&String> = b.total.metrics.keys().collect();
    let row = |label: Markup, p: &sluice_runner::PeriodResult| {
        html! {
            tr {
                td { (label) }
                td { (p.rows) }
                @for k in &names { td { (p.metrics.get(*k).map(|x| format!("{x:.4}")).unwrap_or_default()) } }
                td { (p.mean_label.map(|x| format!("{x:.4}")).unwrap_or_default()) }
                td { (p.hits) " of " (p.acted) }
            }
        }
    };
    html! {
        p { "Mode: " (b.mode) ", " (b.periods.len()) " periods, in " (span(b.duration_ms)) "." }
        @for w in &b.warnings { p.problem { (w) } }
        div.scroll { table.backtest {
            thead { tr {
                th { "Period" } th { "Rows" }
                @for k in &names { th { (k) } }
                th { "Mean label" } th { "Top 10 hits" }
            } }
            tbody {
                @for p in &b.periods { (row(html! { (p.start.chars().take(10).collect::<String>()) }, p)) }
                (row(html! { strong { "all" } }, &b.total))
            }
        } }
    }
}

/// The importance of each input, largest first, as horizontal bars.
fn importance(items: &[(String, f64)]) -> Markup {
    let shown: Vec<&(String, f64)> = items.iter().take(IMPORTANCE).collect();
    let max = shown
        .iter()
        .map(|(_, x)| x.abs())
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let row = 22.0;
    let height = row * shown.len() as f64;
    html! {
        div.scroll {
            svg.bars xmlns="http://www.w3.org/2000/svg" width="640" height=(format!("{height:.0}"))
                viewBox=(format!("0 0 640 {height:.0}")) role="img" aria-label="Feature importance" {
                @for (i, (name, x)) in shown.iter().enumerate() {
                    @let y = i as f64 * row;
                    text x="0" y=(format!("{:.0}", y + 15.0)) { (name) }
                    rect x="300" y=(format!("{:.0}", y + 4.0)) height="14"
                        width=(format!("{:.1}", 260.0 * x.abs() / max)) {}
                    text.value x=(format!("{:.0}", 306.0 + 260.0 * x.abs() / max)) y=(format!("{:.0}", y + 15.0)) { (format!("{x:.4}")) }
                }
            }
        }
    }
}
