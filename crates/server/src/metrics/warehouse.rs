//! The warehouse's series, from the typed records the runner reads at each
//! scrape ([`sluice_runner::Monitoring`]): pipeline runs, retries, durations (a
//! histogram of every recorded attempt) and rows by stage, quality scores and
//! drift statistics of the newest reports, asset ages, schedule ticks, alert
//! deliveries by alert, channel kind and outcome.

use std::collections::{BTreeMap, BTreeSet};

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use sluice_core::AssetStatus;
use sluice_runner::Monitoring;
use sluice_store::{DURATION_BUCKETS_MS, DeliveryState, DurationCounts, PipelineTotals};
use sluice_validate::Verdict;

use super::{
    AGE, DELIVERIES, DELIVERIES_PENDING, DELIVERY_RETRIES, DRIFT, DURATION, FAILING, LAG,
    LAST_TICK, NEXT_TICK, QUALITY, RECORDS, RETRIES, RUNS,
};

/// The statuses every asset has a runs series for, zero until they happen.
const STATUSES: [AssetStatus; 4] = [
    AssetStatus::Built,
    AssetStatus::UpToDate,
    AssetStatus::Failed,
    AssetStatus::Blocked,
];

/// One metric family being filled.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    metrics: Vec<Metric>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Family {
            name,
            help,
            kind,
            metrics: Vec::new(),
        }
    }

    fn value(&mut self, labels: &[(&str, &str)], v: f64) {
        let mut m = metric(labels);
        match self.kind {
            MetricType::COUNTER => {
                let mut c = Counter::default();
                c.set_value(v);
                m.set_counter(c);
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(v);
                m.set_gauge(g);
            }
        }
        self.metrics.push(m);
    }

    fn histogram(&mut self, labels: &[(&str, &str)], d: &DurationCounts) {
        let mut h = Histogram::default();
        h.set_sample_count(d.count);
        h.set_sample_sum(d.sum_ms as f64 / 1000.0);
        h.set_bucket(
            DURATION_BUCKETS_MS
                .iter()
                .zip(&d.cumulative)
                .map(|(bound, n)| {
                    let mut b = Bucket::default();
                    b.set_upper_bound(*bound as f64 / 1000.0);
                    b.set_cumulative_count(*n);
                    b
                })
                .collect(),
        );
        let mut m = metric(labels);
        m.set_histogram(h);
        self.metrics.push(m);
    }

    /// The family, or none when it has no series (the text format has no
    /// empty family).
    fn done(self) -> Option<MetricFamily> {
        if self.metrics.is_empty() {
            return None;
        }
        let mut f = MetricFamily::default();
        f.set_name(self.name.to_string());
        f.set_help(self.help.to_string());
        f.set_field_type(self.kind);
        f.set_metric(self.metrics);
        Some(f)
    }
}

/// A series' labels, by name as the registry writes them.
fn metric(labels: &[(&str, &str)]) -> Metric {
    let mut pairs: Vec<LabelPair> = labels
        .iter()
        .map(|(k, v)| {
            let mut p = LabelPair::default();
            p.set_name((*k).to_string());
            p.set_value((*v).to_string());
            p
        })
        .collect();
    pairs.sort_by(|a, b| a.name().cmp(b.name()));
    let mut m = Metric::default();
    m.set_label(pairs);
    m
}

/// Every warehouse family with at least one series.
pub(super) fn families(state: &Monitoring) -> Vec<MetricFamily> {
    use MetricType::{COUNTER, GAUGE, HISTOGRAM};
    let mut runs = Family::new(
        RUNS,
        "Runs by the status an asset ended them with (built, up_to_date, failed, blocked); a retried failure counts once, as its last attempt.",
        COUNTER,
    );
    let mut failing = Family::new(
        FAILING,
        "1 while the newest run of an asset ended failed, 0 otherwise.",
        GAUGE,
    );
    let mut retries = Family::new(
        RETRIES,
        "Attempts that retried a failed attempt, by asset.",
        COUNTER,
    );
    let mut duration = Family::new(
        DURATION,
        "Duration of every recorded attempt at refreshing an asset (a blocked asset was not attempted).",
        HISTOGRAM,
    );
    let mut records = Family::new(
        RECORDS,
        "Rows of built versions by asset and stage (extract, transform, validate, quarantine, publish, online).",
        COUNTER,
    );
    let mut quality = Family::new(
        QUALITY,
        "Score in [0, 1] of each check in the newest validation of an asset (1 is perfect).",
        GAUGE,
    );
    let mut drift = Family::new(
        DRIFT,
        "Drift statistic of a column against its reference version in the newest validation (PSI or KS).",
        GAUGE,
    );
    let mut age = Family::new(
        AGE,
        "Seconds since an asset was last built or found up to date.",
        GAUGE,
    );
    let mut last_tick = Family::new(
        LAST_TICK,
        "Due time (Unix seconds) of a schedule's newest recorded tick.",
        GAUGE,
    );
    let mut next_tick = Family::new(
        NEXT_TICK,
        "Time (Unix seconds) of a schedule's next tick.",
        GAUGE,
    );
    let mut lag = Family::new(
        LAG,
        "Seconds a schedule's oldest due tick has waited to be recorded (0 when none waits).",
        GAUGE,
    );

    // Every asset of the project has its series before its first run, so that
    // its first failure is an increase Prometheus can see.
    let totals: BTreeMap<&str, &PipelineTotals> = state
        .pipelines
        .iter()
        .map(|t| (t.asset.as_str(), t))
        .collect();
    let names: BTreeSet<&str> = state
        .assets
        .iter()
        .map(String::as_str)
        .chain(totals.keys().copied())
        .collect();
    for name in names {
        let t = totals.get(name);
        let mut statuses: BTreeSet<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
        statuses.extend(
            t.iter()
                .flat_map(|t| t.runs.iter().map(|(s, _)| s.as_str())),
        );
        for status in statuses {
            let n = t
                .and_then(|t| t.runs.iter().find(|(s, _)| s == status))
                .map_or(0, |(_, n)| *n);
            runs.value(&[("pipeline", name), ("status", status)], n as f64);
        }
        let is_failing = t.is_some_and(|t| t.failing);
        failing.value(&[("pipeline", name)], if is_failing { 1.0 } else { 0.0 });
        retries.value(&[("pipeline", name)], t.map_or(0, |t| t.retries) as f64);
        if let Some(t) = t {
            duration.histogram(&[("pipeline", name)], &t.durations);
            for (stage, n) in t.stages.by_stage() {
                records.value(&[("pipeline", name), ("stage", stage)], n as f64);
            }
        }
    }

    for (name, report) in &state.reports {
        for check in &report.checks {
            if check.verdict == Verdict::Skipped {
                continue;
            }
            if check.score.is_finite() {
                quality.value(
                    &[("pipeline", name.as_str()), ("check", check.name.as_str())],
                    check.score,
                );
            }
            if matches!(check.rule.as_str(), "psi" | "ks")
                && let Some(observed) = check.observed
            {
                let column = check.column.as_deref().unwrap_or_default();
                drift.value(
                    &[
                        ("pipeline", name.as_str()),
                        ("feature", column),
                        ("statistic", check.rule.as_str()),
                    ],
                    observed,
                );
            }
        }
    }

    for (name, a) in &state.ages {
        age.value(&[("asset", name.as_str())], a.as_secs_f64());
    }

    for s in &state.schedules {
        let name = s.def.name.as_str();
        if let Some(t) = &s.last_tick {
            last_tick.value(
                &[("schedule", name)],
                t.due_at.timestamp_micros() as f64 / 1e6,
            );
        }
        if let Some(t) = s.next_tick {
            next_tick.value(&[("schedule", name)], t.timestamp_micros() as f64 / 1e6);
        }
        lag.value(&[("schedule", name)], s.lag.as_secs_f64());
    }

    let [deliveries, pending, delivery_retries] = alert_families(state);
    [
        runs,
        failing,
        retries,
        duration,
        records,
        quality,
        drift,
        age,
        last_tick,
        next_tick,
        lag,
        deliveries,
        pending,
        delivery_retries,
    ]
    .into_iter()
    .filter_map(Family::done)
    .collect()
}

/// The outcomes a finished delivery is counted under.
const OUTCOMES: [DeliveryState; 2] = [DeliveryState::Delivered, DeliveryState::Failed];

/// Alert deliveries by alert and channel kind: finished ones by outcome,
/// pending ones, retries. Every channel of the project has its series at 0
/// before its first delivery; a channel no longer in the project keeps its
/// recorded counts.
fn alert_families(state: &Monitoring) -> [Family; 3] {
    use MetricType::{COUNTER, GAUGE};
    let mut deliveries = Family::new(
        DELIVERIES,
        "Finished alert deliveries by alert, channel kind and outcome (delivered; failed: given up after its attempts).",
        COUNTER,
    );
    let mut pending = Family::new(
        DELIVERIES_PENDING,
        "Alert deliveries being tried or waiting to retry, by alert and channel kind.",
        GAUGE,
    );
    let mut retries = Family::new(
        DELIVERY_RETRIES,
        "Alert delivery attempts after the first, by alert and channel kind.",
        COUNTER,
    );
    let mut channels: BTreeSet<(&str, &str)> = state
        .channels
        .iter()
        .map(|(a, c)| (a.as_str(), *c))
        .collect();
    channels.extend(
        state
            .deliveries
            .iter()
            .map(|t| (t.alert.as_str(), t.channel.as_str())),
    );
    for (alert, channel) in channels {
        let totals = state
            .deliveries
            .iter()
            .find(|t| t.alert == alert && t.channel == channel);
        let count = |s: DeliveryState| {
            totals
                .and_then(|t| t.by_state.iter().find(|(state, _)| *state == s))
                .map_or(0, |(_, n)| *n) as f64
        };
        let labels = [("alert", alert), ("channel", channel)];
        for outcome in OUTCOMES {
            deliveries.value(
                &[
                    ("alert", alert),
                    ("channel", channel),
                    ("outcome", outcome.as_str()),
                ],
                count(outcome),
            );
        }
        pending.value(&labels, count(DeliveryState::Pending));
        retries.value(&labels, totals.map_or(0, |t| t.retries) as f64);
    }
    [deliveries, pending, retries]
}
