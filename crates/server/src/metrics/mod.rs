//! `/metrics` in the Prometheus text format. Request latency is measured in the
//! process; the pipeline, quality, drift, age and schedule series are read from
//! the metadata database at each scrape (`warehouse.rs`), so they count the
//! runs of every process (a `sluice run` from cron as well as `POST /v1/runs`)
//! and survive restarts. Labels are route templates, asset, check, column,
//! schedule and alert names and channel kinds: never an entity, a key, a
//! webhook URL or another secret.
//!
//! The names are constants here: the alert rules and the Grafana dashboard
//! (`crate::monitoring`) query these and no others.

mod warehouse;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{Encoder, HistogramOpts, HistogramVec, Registry};
use sluice_runner::Workspace;
use std::sync::Arc;

use crate::AppState;

/// Time to answer an HTTP request (histogram; `route`, `status`).
pub(crate) const HTTP_DURATION: &str = "sluice_http_request_duration_seconds";
/// Runs by the status an asset ended them with (counter; `pipeline`, `status`).
pub(crate) const RUNS: &str = "sluice_pipeline_runs_total";
/// 1 while an asset's newest run ended failed (gauge; `pipeline`).
pub(crate) const FAILING: &str = "sluice_pipeline_failing";
/// Attempt durations (histogram; `pipeline`).
pub(crate) const DURATION: &str = "sluice_pipeline_duration_seconds";
/// Retries (counter; `pipeline`).
pub(crate) const RETRIES: &str = "sluice_attempt_retries_total";
/// Rows by stage (counter; `pipeline`, `stage`).
pub(crate) const RECORDS: &str = "sluice_records_processed_total";
/// Each check's score in the newest report (gauge; `pipeline`, `check`).
pub(crate) const QUALITY: &str = "sluice_data_quality_score";
/// Each drift statistic in the newest report (gauge; `pipeline`, `feature`, `statistic`).
pub(crate) const DRIFT: &str = "sluice_feature_drift_score";
/// Time since an asset was last fresh (gauge; `asset`).
pub(crate) const AGE: &str = "sluice_asset_age_seconds";
/// A schedule's newest recorded tick (gauge; `schedule`).
pub(crate) const LAST_TICK: &str = "sluice_schedule_last_tick_timestamp_seconds";
/// A schedule's next tick (gauge; `schedule`).
pub(crate) const NEXT_TICK: &str = "sluice_schedule_next_tick_timestamp_seconds";
/// How late a schedule's oldest due, unrecorded tick is (gauge; `schedule`).
pub(crate) const LAG: &str = "sluice_schedule_lag_seconds";
/// Finished alert deliveries (counter; `alert`, `channel`, `outcome`:
/// `delivered` or `failed`, given up).
pub(crate) const DELIVERIES: &str = "sluice_alert_deliveries_total";
/// Alert deliveries being tried or waiting to retry (gauge; `alert`, `channel`).
pub(crate) const DELIVERIES_PENDING: &str = "sluice_alert_deliveries_pending";
/// Delivery attempts after the first (counter; `alert`, `channel`).
pub(crate) const DELIVERY_RETRIES: &str = "sluice_alert_delivery_retries_total";

/// Time to answer a collection search, every mode (histogram; `collection`).
/// Not in `EXPOSED`: a process shows it once it has answered a search.
pub(crate) const SEARCH_LATENCY: &str = "sluice_vector_search_latency_seconds";

/// Every metric family `/metrics` can expose.
#[cfg(test)]
pub(crate) const EXPOSED: [&str; 15] = [
    HTTP_DURATION,
    RUNS,
    FAILING,
    DURATION,
    RETRIES,
    RECORDS,
    QUALITY,
    DRIFT,
    AGE,
    LAST_TICK,
    NEXT_TICK,
    LAG,
    DELIVERIES,
    DELIVERIES_PENDING,
    DELIVERY_RETRIES,
];

/// The metrics the process measures itself.
pub(crate) struct Metrics {
    registry: Registry,
    http: HistogramVec,
    search: HistogramVec,
}

impl Metrics {
    pub(crate) fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let http = HistogramVec::new(
            HistogramOpts::new(
                HTTP_DURATION,
                "Time to answer an HTTP request, by route template and status.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route", "status"],
        )?;
        registry.register(Box::new(http.clone()))?;
        let search = HistogramVec::new(
            HistogramOpts::new(
                SEARCH_LATENCY,
                "Time to answer a search of a collection (every mode), by collection.",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5,
            ]),
            &["collection"],
        )?;
        registry.register(Box::new(search.clone()))?;
        Ok(Self {
            registry,
            http,
            search,
        })
    }

    /// Records one search of `collection` that took `seconds`.
    pub(crate) fn observe_search(&self, collection: &str, seconds: f64) {
        self.search
            .with_label_values(&[collection])
            .observe(seconds);
    }

    /// The whole exposition: the process's metrics and the warehouse's.
    pub(crate) fn render(&self, ws: &Workspace) -> Result<String, MetricsError> {
        let mut families = self.registry.gather();
        let state = sluice_runner::monitoring(ws).map_err(Box::new)?;
        families.extend(warehouse::families(&state));
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
    /// The run log, the quality history or the schedules could not be read.
    #[error(transparent)]
    Read(#[from] Box<sluice_runner::ReadError>),
}
