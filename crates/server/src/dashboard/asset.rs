//! An asset's page: what it is and how fresh, its columns, its versions and
//! the runs that wrote them, its partitions, a page of its rows (operators),
//! its newest quality report, and charts of its checks over its last runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use datafusion::arrow::util::display::array_value_to_string;
use maud::{Markup, html};
use sluice_store::Role;
use sluice_validate::ValidationReport;

use super::{Viewer, badge, error_page, layout, refuse, respond, span};
use crate::AppState;
use crate::error::ApiError;

/// Rows shown on the page.
const ROWS: usize = 20;
/// Runs charted.
const CHART_RUNS: usize = 60;

pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    if !viewer.may(Role::Reader) {
        let here = format!("/assets/{}", super::encode(&name));
        return refuse(&state, &viewer, Role::Reader, &here);
    }
    match body(&state, &viewer, &name).await {
        Ok(b) => respond(StatusCode::OK, layout(&viewer, &state, &name, b)),
        Err(e) => error_page(&state, &viewer, e),
    }
}

/// The quality of the last runs as charts (see `super::charts`): the share
/// of checks passed per run, and each drift check's score.
fn quality_charts(
    state: &AppState,
    name: &str,
    report: Option<&ValidationReport>,
) -> Result<Vec<super::Chart>, ApiError> {
    let points = state.ws.metadata.check_points(name, CHART_RUNS)?;
    let drift: Vec<&str> = report
        .map(|r| {
            r.checks
                .iter()
                .filter(|c| matches!(c.rule.as_str(), "psi" | "ks"))
                .map(|c| c.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut runs: BTreeMap<i64, (i64, u64, u64)> = BTreeMap::new();
    let mut series: BTreeMap<&str, BTreeMap<i64, Option<f64>>> = BTreeMap::new();
    for p in &points {
        let run = runs.entry(p.run_id).or_insert((p.at.timestamp(), 0, 0));
        if p.verdict != "skipped" {
            run.1 += 1;
            if p.verdict == "pass" {
                run.2 += 1;
            }
        }
        if let Some(d) = drift.iter().find(|d| **d == p.name) {
            series.entry(d).or_default().insert(p.run_id, p.observed);
        }
    }
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let x: Vec<f64> = runs.values().map(|(t, _, _)| *t as f64).collect();
    let pass: Vec<Option<f64>> = runs
        .values()
        .map(|(_, judged, passed)| (*judged > 0).then(|| *passed as f64 / *judged as f64 * 100.0))
        .collect();
    let mut charts = vec![super::Chart {
        title: "Checks passed (%)".into(),
        time: true,
        x_label: "run".into(),
        x: x.clone(),
        series: vec![("passed".into(), pass)],
    }];
    // Drift is charted once some run measured it (the first has nothing to
    // compare with).
    let measured = series
        .values()
        .any(|by_run| by_run.values().any(Option::is_some));
    if measured {
        charts.push(super::Chart {
            title: "Drift scores".into(),
            time: true,
            x_label: "run".into(),
            x,
            series: series
                .into_iter()
                .map(|(name, by_run)| {
                    let ys = runs
                        .keys()
                        .map(|r| by_run.get(r).copied().flatten())
                        .collect();
                    (name.to_string(), ys)
                })
                .collect(),
        });
    }
    Ok(charts)
}

async fn body(state: &AppState, viewer: &Viewer, name: &str) -> Result<Markup, ApiError> {
    let ws = &state.ws;
    let detail = sluice_runner::asset_detail(ws, name).await?;
    let s = &detail.info.state;
    let partitioned = ws
        .project
        .asset(name)
        .is_some_and(|a| a.partitioned.is_some());
    let partitions = if partitioned {
        sluice_runner::partition_status(ws, name).await?
    } else {
        Vec::new()
    };
    let report: Option<ValidationReport> = ws
        .metadata
        .report(name, None)?
        .and_then(|(_, json)| serde_json::from_str(&json).ok());
    let charts = quality_charts(state, name, report.as_ref())?;
    let is_table = ws.tables().iter().any(|t| t == name);
    let rows = if viewer.may(Role::Operator) && is_table && s.version.is_some() {
        let bounds = state.limits.bounds();
        Some(sluice_runner::rows_head(ws, name, ROWS, bounds).await?)
    } else {
        None
    };
    let freshness = match (s.version, s.stale) {
        (None, _) if s.committed_at.is_none() => "never",
        (_, true) => "stale",
        _ => "fresh",
    };
    Ok(html! {
        h1 { (name) " " small { (s.kind.to_string()) } }
        @if let Some(d) = &detail.info.description { p.lead { (d) } }
        @if s.kind == sluice_core::AssetKind::Collection {
            p { a.button href=(format!("/search/{}", super::encode(name))) { "Search this collection" } }
        }
        section.card {
            h2 { "State" }
            dl.facts {
                dt { "Freshness" } dd { (badge(freshness)) @if let Some(r) = &s.reason { " " span.help { (r) } } }
                dt { "Version" } dd { (s.version.map_or("—".to_string(), |v| v.to_string())) }
                dt { "Rows" } dd { (s.rows.map_or("—".to_string(), |r| r.to_string())) }
                dt { "Committed" } dd {
                    (s.committed_at.as_deref().map_or_else(|| "—".into(), super::when_text))
                    @if let Some(age) = s.age_seconds { " (" (span(age.max(0) as u64 * 1000)) " ago)" }
                }
                @if !detail.inputs.is_empty() {
                    dt { "Reads" } dd {
                        @for (i, input) in detail.inputs.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(format!("/assets/{}", super::encode(input))) { (input) }
                        }
                    }
                }
                @if !detail.info.tags.is_empty() {
                    dt { "Tags" } dd { (detail.info.tags.join(", ")) }
                }
            }
        }
        @if !detail.columns.is_empty() {
            section.card {
                h2 { "Columns" }
                div.scroll { table {
                    thead { tr { th { "Column" } th { "Type" } th { "Nulls" } } }
                    tbody { @for c in &detail.columns {
                        tr { td { code { (c.name) } } td { (c.data_type) } td { (if c.nullable { "yes" } else { "no" }) } }
                    } }
                } }
            }
        }
        section.card {
            h2 { "Quality over the last runs" }
            @if !charts.is_empty() {
                (super::draw_charts(&charts))
            } @else {
                p.help { "No check has been judged yet: give the asset a contract and run it." }
            }
        }
        @if let Some(r) = &report {
            section.card {
                h2 { "Newest quality report" " " small { "run " (r.run_id) } }
                p { (r.rows_in) " rows in, " (r.rows_out) " passed, " (r.rows_quarantined) " quarantined" }
                div.scroll { table {
                    thead { tr { th { "Check" } th { "Verdict" } th { "Severity" } th { "Observed" } th { "Threshold" } } }
                    tbody { @for c in &r.checks {
                        tr {
                            td { code { (c.name) } }
                            td { (badge(c.verdict.as_str())) }
                            td { (c.severity.as_str()) }
                            td.wrap { (c.detail) }
                            td.wrap { (c.threshold) }
                        }
                    } }
                } }
            }
        }
        @if partitioned {
            section.card {
                h2 { "Partitions" }
                @if viewer.may(Role::Operator) {
                    form.filters method="post" action=(format!("/assets/{}/backfill", super::encode(name))) {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        label { "From " input type="text" name="from" required placeholder=(partitions.first().map_or("", |p| p.partition.as_str())); }
                        label { "To " input type="text" name="to" required placeholder=(partitions.last().map_or("", |p| p.partition.as_str())); }
                        button type="submit" { "Backfill" }
                    }
                    p.help { "Builds the partitions of the range that are missing, failed or stale, as " code { "sluice backfill" } " does." }
                }
                div.scroll { table {
                    thead { tr { th { "Partition" } th { "State" } th { "Version" } th { "Rows" } th { "Run" } th { "Error" } } }
                    tbody { @for part in partitions.iter().rev().take(200) {
                        tr {
                            td { (part.partition) }
                            td { (badge(part.state)) }
                            td { (part.version.map_or(String::new(), |v| v.to_string())) }
                            td { (part.rows.map_or(String::new(), |v| v.to_string())) }
                            td { @if let Some(id) = part.run_id { (run_link(viewer, id)) } }
                            td.wrap { (part.error.clone().unwrap_or_default()) }
                        }
                    } }
                } }
            }
        }
        @if !detail.versions.is_empty() {
            section.card {
                h2 { "Versions" }
                div.scroll { table {
                    thead { tr { th { "Version" } th { "Committed" } th { "Operation" } th { "Rows" } th { "Run" } } }
                    tbody { @for v in detail.versions.iter().take(50) {
                        tr {
                            td { (v.version) }
                            td { (v.committed_at.as_deref().map(super::when_text).unwrap_or_default()) }
                            td.wrap { (v.operation) }
                            td { (v.rows.map_or(String::new(), |r| r.to_string())) }
                            td { @if let Some(id) = v.run_id { (run_link(viewer, id)) } }
                        }
                    } }
                } }
            }
        }
        @if let Some(batches) = &rows {
            section.card {
                h2 { "Rows" " " small { "the first " (ROWS) } }
                (rows_table(batches))
            }
        }
    })
}

/// A run's number, a link for those who may open runs.
fn run_link(viewer: &Viewer, id: i64) -> Markup {
    html! {
        @if viewer.may(Role::Operator) { a href=(format!("/runs/{id}")) { "#" (id) } } @else { "#" (id) }
    }
}

/// Record batches as one table.
fn rows_table(batches: &[datafusion::arrow::array::RecordBatch]) -> Markup {
    let Some(first) = batches.first() else {
        return html! { p.help { "No rows." } };
    };
    let schema = first.schema();
    html! {
        div.scroll { table.rows {
            thead { tr { @for f in schema.fields() { th { (f.name()) } } } }
            tbody {
                @for b in batches {
                    @for row in 0..b.num_rows() {
                        tr { @for col in b.columns() {
                            td { (array_value_to_string(col, row).unwrap_or_default()) }
                        } }
                    }
                }
            }
        } }
    }
}
