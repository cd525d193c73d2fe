//! Models (readers, as `GET /v1/models`): each model's versions with their
//! validation metrics, which one serves and why the others do not, and the
//! serving version's feature importance.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use sluice_store::Role;

use super::{Viewer, badge, error_page, layout, refuse, respond, span};
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
    match body(&state, &viewer, &name) {
        Ok(b) => respond(StatusCode::OK, layout(&viewer, &state, &name, b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

fn body(state: &AppState, viewer: &Viewer, name: &str) -> Result<Markup, ApiError> {
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
            p.help { "Backtests are computed on demand, not stored: " code { "sluice backtest " (m.name) } " prints them." }
        }
    })
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
