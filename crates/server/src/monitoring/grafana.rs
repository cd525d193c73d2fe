//! `sluice monitoring grafana`: a Grafana dashboard for a project — runs and
//! failures, attempt durations, rows by stage, quality scores, drift, asset
//! ages, schedules, alert deliveries and HTTP latency by route. Its panels query only the
//! metrics `/metrics` exposes (the names in `crate::metrics`; a test holds
//! every expression to what a real scrape shows).

use serde_json::{Value, json};
use sluice_project::Project;

use crate::metrics::{
    AGE, DELIVERIES, DELIVERIES_PENDING, DELIVERY_RETRIES, DRIFT, DURATION, FAILING, HTTP_DURATION,
    LAG, LAST_TICK, NEXT_TICK, QUALITY, RECORDS, RETRIES, RUNS,
};

/// Grid width of a dashboard row.
const WIDTH: u64 = 24;

/// One panel before it is placed.
struct Panel {
    title: &'static str,
    kind: &'static str,
    unit: &'static str,
    width: u64,
    targets: Vec<(String, &'static str)>,
    description: &'static str,
}

fn panel(
    title: &'static str,
    kind: &'static str,
    unit: &'static str,
    width: u64,
    description: &'static str,
    targets: Vec<(String, &'static str)>,
) -> Panel {
    Panel {
        title,
        kind,
        unit,
        width,
        targets,
        description,
    }
}

/// The dashboard of `project`, as Grafana imports it.
pub fn grafana_dashboard(project: &Project) -> Value {
    let p = "pipeline=~\"$pipeline\"";
    let panels = vec![
        panel(
            "Runs by status",
            "timeseries",
            "short",
            12,
            "Runs of each asset by the status it ended them with.",
            vec![(
                format!("sum by (pipeline, status) (increase({RUNS}{{{p}}}[$__rate_interval]))"),
                "{{pipeline}} {{status}}",
            )],
        ),
        panel(
            "Failing assets",
            "stat",
            "short",
            6,
            "Assets whose newest run failed.",
            vec![(format!("sum({FAILING}{{{p}}})"), "failing")],
        ),
        panel(
            "Retries",
            "timeseries",
            "short",
            6,
            "Attempts that retried a failure.",
            vec![(
                format!("sum by (pipeline) (increase({RETRIES}{{{p}}}[$__rate_interval]))"),
                "{{pipeline}}",
            )],
        ),
        panel(
            "Attempt duration (p50, p95)",
            "timeseries",
            "s",
            12,
            "Quantiles of attempt durations, from the histogram.",
            vec![
                (
                    format!(
                        "histogram_quantile(0.5, sum by (pipeline, le) (rate({DURATION}_bucket{{{p}}}[$__rate_interval])))"
                    ),
                    "{{pipeline}} p50",
                ),
                (
                    format!(
                        "histogram_quantile(0.95, sum by (pipeline, le) (rate({DURATION}_bucket{{{p}}}[$__rate_interval])))"
                    ),
                    "{{pipeline}} p95",
                ),
            ],
        ),
        panel(
            "Mean attempt duration",
            "timeseries",
            "s",
            12,
            "Total attempt time over attempts.",
            vec![(
                format!(
                    "sum by (pipeline) (rate({DURATION}_sum{{{p}}}[$__rate_interval])) / sum by (pipeline) (rate({DURATION}_count{{{p}}}[$__rate_interval]))"
                ),
                "{{pipeline}}",
            )],
        ),
        panel(
            "Rows by stage",
            "timeseries",
            "short",
            WIDTH,
            "Rows of built versions: extract, transform, validate, quarantine, publish, online.",
            vec![(
                format!("sum by (pipeline, stage) (increase({RECORDS}{{{p}}}[$__rate_interval]))"),
                "{{pipeline}} {{stage}}",
            )],
        ),
        panel(
            "Data quality scores",
            "timeseries",
            "percentunit",
            12,
            "Each check's score in the newest validation (1 is perfect).",
            vec![(format!("{QUALITY}{{{p}}}"), "{{pipeline}} {{check}}")],
        ),
        panel(
            "Feature drift",
            "timeseries",
            "short",
            12,
            "PSI and KS of each column against its reference version.",
            vec![(
                format!("{DRIFT}{{{p}}}"),
                "{{pipeline}} {{feature}} {{statistic}}",
            )],
        ),
        panel(
            "Asset age",
            "bargauge",
            "s",
            12,
            "Time since each asset was last built or found up to date.",
            vec![(format!("{AGE}{{asset=~\"$pipeline\"}}"), "{{asset}}")],
        ),
        panel(
            "Schedules",
            "timeseries",
            "s",
            12,
            "How late each schedule's oldest due tick is; time since its last tick and until its next.",
            vec![
                (LAG.to_string(), "{{schedule}} lag"),
                (
                    format!("time() - {LAST_TICK}"),
                    "{{schedule}} since last tick",
                ),
                (
                    format!("{NEXT_TICK} - time()"),
                    "{{schedule}} until next tick",
                ),
            ],
        ),
        panel(
            "Alert deliveries",
            "timeseries",
            "short",
            WIDTH,
            "Alert messages by alert and channel: delivered, failed (given up after its attempts), pending (being tried), and retries.",
            vec![
                (
                    format!(
                        "sum by (alert, channel, outcome) (increase({DELIVERIES}[$__rate_interval]))"
                    ),
                    "{{alert}} {{channel}} {{outcome}}",
                ),
                (
                    format!("sum by (alert, channel) ({DELIVERIES_PENDING})"),
                    "{{alert}} {{channel}} pending",
                ),
                (
                    format!(
                        "sum by (alert, channel) (increase({DELIVERY_RETRIES}[$__rate_interval]))"
                    ),
                    "{{alert}} {{channel}} retries",
                ),
            ],
        ),
        panel(
            "HTTP latency by route (p99)",
            "timeseries",
            "s",
            12,
            "99th percentile of request time per route template.",
            vec![(
                format!(
                    "histogram_quantile(0.99, sum by (route, le) (rate({HTTP_DURATION}_bucket[$__rate_interval])))"
                ),
                "{{route}}",
            )],
        ),
        panel(
            "HTTP requests by route and status",
            "timeseries",
            "reqps",
            12,
            "Requests per second per route template and status.",
            vec![(
                format!("sum by (route, status) (rate({HTTP_DURATION}_count[$__rate_interval]))"),
                "{{route}} {{status}}",
            )],
        ),
    ];

    let (mut x, mut y, mut row_height) = (0, 0, 0);
    let mut placed = Vec::new();
    for (id, panel) in panels.into_iter().enumerate() {
        let height = 8;
        if x + panel.width > WIDTH {
            x = 0;
            y += row_height;
            row_height = 0;
        }
        let targets: Vec<Value> = panel
            .targets
            .iter()
            .zip(["A", "B", "C", "D"])
            .map(|((expr, legend), ref_id)| {
                json!({
                    "datasource": { "type": "prometheus", "uid": "${datasource}" },
                    "expr": expr,
                    "legendFormat": legend,
                    "refId": ref_id,
                })
            })
            .collect();
        placed.push(json!({
            "id": id + 1,
            "type": panel.kind,
            "title": panel.title,
            "description": panel.description,
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "gridPos": { "h": height, "w": panel.width, "x": x, "y": y },
            "fieldConfig": { "defaults": { "unit": panel.unit }, "overrides": [] },
            "options": {},
            "targets": targets,
        }));
        x += panel.width;
        row_height = row_height.max(height);
    }

    let uid: String = format!("sluice-{}", project.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    json!({
        "title": format!("sluice: {}", project.name),
        "uid": uid,
        "description": "Written by `sluice monitoring grafana`: runs, durations, rows by stage, quality, drift, asset ages, schedules, alert deliveries and HTTP latency of a sluice project.",
        "tags": ["sluice"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "refresh": "30s",
        "time": { "from": "now-24h", "to": "now" },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                },
                {
                    "name": "pipeline",
                    "label": "Asset",
                    "type": "query",
                    "datasource": { "type": "prometheus", "uid": "${datasource}" },
                    "definition": format!("label_values({RUNS}, pipeline)"),
                    "query": { "query": format!("label_values({RUNS}, pipeline)"), "refId": "assets" },
                    "includeAll": true,
                    "multi": true,
                    "allValue": ".*",
                    "current": { "text": "All", "value": "$__all" },
                    "refresh": 2,
                },
            ]
        },
        "panels": placed,
    })
}
