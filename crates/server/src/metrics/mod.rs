//! `/metrics` in the Prometheus text format. Request latency is measured in the
//! process; the pipeline, quality and drift series are read from the metadata
//! database at each scrape, so they count the runs of every process (a `sluice
//! run` from cron as well as `POST /v1/runs`) and survive restarts. Labels are
//! route templates, asset, check and column names: never an entity or a key.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use sluice_runner::Workspace;
use sluice_validate::Verdict;
use std::sync::Arc;

use crate::AppState;

/// The metrics the process measures itself.
pub(crate) struct Metrics {
    registry: Registry,
    http: HistogramVec,
}

impl Metrics {
    pub(crate) fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let http = HistogramVec::new(
            HistogramOpts::new(
                "sluice_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template and status.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route", "status"],
        )?;
        registry.register(Box::new(http.clone()))?;
        Ok(Self { registry, http })
    }

    /// The whole exposition: the process's metrics and the warehouse's.
    pub(crate) fn render(&self, ws: &Workspace) -> Result<String, MetricsError> {
        let mut families = self.registry.gather();
        families.extend(warehouse_families(ws)?);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out)
            .map_err(|e| MetricsError::Registry(prometheus::Error::Msg(e.to_string())))
    }
}

/// Times every request under its route template (`/v1/features/{view}/{*entity}`).
pub(crate) async fn track(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state
        .metrics
        .http
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Why `/metrics` could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricsError {
    /// The registry refused a metric or its text (a bug).
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
    /// The run log could not be read.
    #[error(transparent)]
    Store(#[from] Box<sluice_store::Error>),
    /// The quality history could not be read.
    #[error(transparent)]
    Read(#[from] Box<sluice_runner::ReadError>),
}

fn warehouse_families(
    ws: &Workspace,
) -> Result<Vec<prometheus::proto::MetricFamily>, MetricsError> {
    let err = MetricsError::Registry;
    let registry = Registry::new();
    let runs = IntCounterVec::new(
        Opts::new(
            "sluice_pipeline_runs_total",
            "Attempts at refreshing an asset, by asset and outcome (built, up_to_date, failed, blocked).",
        ),
        &["pipeline", "status"],
    )
    .map_err(err)?;
    let duration = GaugeVec::new(
        Opts::new(
            "sluice_pipeline_duration_seconds",
            "Duration of the newest attempt at refreshing an asset.",
        ),
        &["pipeline"],
    )
    .map_err(err)?;
    let records = IntCounterVec::new(
        Opts::new(
            "sluice_records_processed_total",
            "Rows of built versions, by asset and stage (read, published, quarantined).",
        ),
        &["pipeline", "stage"],
    )
    .map_err(err)?;
    let quality = GaugeVec::new(
        Opts::new(
            "sluice_data_quality_score",
            "Score in [0, 1] of each check in the newest validation of an asset (1 is perfect).",
        ),
        &["pipeline", "check"],
    )
    .map_err(err)?;
    let drift = GaugeVec::new(
        Opts::new(
            "sluice_feature_drift_score",
            "Drift statistic of a column against its reference version in the newest validation (PSI or KS).",
        ),
        &["pipeline", "feature", "statistic"],
    )
    .map_err(err)?;
    for c in [&runs, &records] {
        registry.register(Box::new(c.clone())).map_err(err)?;
    }
    for g in [&duration, &quality, &drift] {
        registry.register(Box::new(g.clone())).map_err(err)?;
    }

    let totals = ws.metadata.asset_totals().map_err(Box::new)?;
    for t in &totals {
        for (status, n) in &t.by_status {
            runs.with_label_values(&[t.asset.as_str(), status.as_str()])
                .inc_by(*n);
        }
        duration
            .with_label_values(&[t.asset.as_str()])
            .set(t.last_duration_ms as f64 / 1000.0);
        for (stage, n) in [
            ("read", t.rows_in),
            ("published", t.rows_out),
            ("quarantined", t.rows_quarantined),
        ] {
            records
                .with_label_values(&[t.asset.as_str(), stage])
                .inc_by(n);
        }
    }
    let reports = sluice_runner::latest_reports(ws).map_err(Box::new)?;
    for (name, report) in &reports {
        for check in &report.checks {
            if check.verdict == Verdict::Skipped {
                continue;
            }
            if check.score.is_finite() {
                quality
                    .with_label_values(&[name.as_str(), check.name.as_str()])
                    .set(check.score);
            }
            if matches!(check.rule.as_str(), "psi" | "ks")
                && let Some(observed) = check.observed
            {
                let column = check.column.as_deref().unwrap_or_default();
                drift
                    .with_label_values(&[name.as_str(), column, check.rule.as_str()])
                    .set(observed);
            }
        }
    }
    Ok(registry.gather())
}
