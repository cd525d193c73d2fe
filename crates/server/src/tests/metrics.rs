//! `/metrics` after runs with a quarantine, drift, a retried failure and a
//! schedule tick, on real weather data: every family, the duration
//! histogram's count against the recorded attempts, rows by stage adding up,
//! promtool's lint; and the Grafana dashboard and alert rules query nothing
//! else.

use std::collections::BTreeSet;

use sluice_store::TickState;

use super::*;
use crate::metrics::{DURATION, EXPOSED};
use crate::monitoring::tests::promtool;

struct Monitored {
    _dir: tempfile::TempDir,
    ws: Arc<Workspace>,
    reader: String,
}

const PROJECT: &str = r#"
[project]
name = "monitored"

[sources.weather]
path = "data/*.parquet"
freshness = { max_age = "1d" }

[sources.weather.contract.columns.origin]
# LGA's rows go to the quarantine.
one_of = ["EWR", "JFK"]

[[sources.weather.contract.expect]]
column = "temp"
null_fraction = { max = 0.01 }
severity = "warn"

[[sources.weather.contract.expect]]
column = "humid"
drift = { reference = "previous", psi_max = 0.2, ks_max = 0.1 }
severity = "warn"

[features.origin_weather]
sql = "SELECT origin, time_hour, temp, humid FROM weather"
entity = "origin"
timestamp = "time_hour"

[tables.broken]
sql = "SELECT CAST(origin AS INT) AS o FROM weather"
retries = 1
retry_delay = "2ms"
max_delay = "3ms"
retry_on = "any"

[schedules.hourly]
cron = "0 * * * *"

# Never set: the failure's message is given up at its first attempt.
[alerts.oncall]
on = ["failure"]
webhook = { url = "${SLUICE_TEST_NEVER_SET_HOOK}" }
"#;

/// Due time of the tick the fixture records: 2026-03-01T10:00:00Z.
const TICK: i64 = 1_772_359_200;

/// Two runs: the second reads one more file, so the source is rebuilt and its
/// drift measured against the first version; `broken` fails both times after
/// a retry.
async fn monitored() -> Monitored {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/flights/data/weather.parquet");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    std::fs::copy(&data, dir.path().join("data/a.parquet")).expect("copy weather");
    std::fs::write(dir.path().join("sluice.toml"), PROJECT).expect("project");
    let project = sluice_project::load(dir.path(), None).expect("project compiles");
    let ws = Arc::new(Workspace::open(project).expect("workspace"));
    for file in ["b.parquet", ""] {
        let summary = sluice_runner::run(ws.clone(), &[], Arc::new(Quiet))
            .await
            .expect("run");
        let status = |name: &str| {
            summary
                .assets
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.status)
        };
        assert_eq!(status("weather"), Some(sluice_core::AssetStatus::Built));
        assert_eq!(status("broken"), Some(sluice_core::AssetStatus::Failed));
        if !file.is_empty() {
            std::fs::copy(&data, dir.path().join("data").join(file)).expect("copy");
        }
    }
    // The failure's message, given up; and one delivered at its third attempt.
    assert!(ws.outbox.wait(Duration::from_secs(60)).await);
    let now = ws.now();
    let id = ws
        .metadata
        .begin_delivery(
            sluice_store::NewDelivery {
                alert: "oncall",
                asset: None,
                run_id: None,
                event: "test",
                channel: "webhook",
                owner: "fixture",
                message: "{}",
            },
            now,
        )
        .expect("delivery");
    ws.metadata
        .update_delivery(id, sluice_store::DeliveryState::Delivered, 3, None, now)
        .expect("delivered");
    let due = chrono::DateTime::from_timestamp(TICK, 0).expect("time");
    ws.metadata.schedule_enabled("hourly", due).expect("enable");
    assert!(
        ws.metadata
            .record_tick("hourly", due, TickState::Started, due)
            .expect("tick")
    );
    let reader = ws
        .metadata
        .create_key(Role::Reader, "prometheus")
        .expect("key")
        .secret;
    Monitored {
        _dir: dir,
        ws,
        reader,
    }
}

async fn scrape(f: &Monitored) -> String {
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.reader);
    // One request first, so that the HTTP histogram has a series.
    call(&app, "GET", "/v1/assets", Some(key.as_str()), None).await;
    let (status, body) = call_raw(&app, "GET", "/metrics", Some(key.as_str()), None).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).expect("utf8")
}

/// The value of the sample written exactly as `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .unwrap_or_else(|e| panic!("{series}: {e}"))
}

/// The metric names in a PromQL expression.
pub(crate) fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sluice_") {
        let before = rest[..i].chars().last();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// The families a scrape exposes, by their `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// A histogram's series name back to its family (`x_bucket` → `x`).
fn family_of(name: &str, exposed: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(base) = name.strip_suffix(suffix)
            && exposed.contains(base)
        {
            return base.to_string();
        }
    }
    name.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_attempts_retries_stages_quality_drift_age_and_ticks() {
    let f = monitored().await;
    let text = scrape(&f).await;
    let exposed = families(&text);
    for name in EXPOSED {
        assert!(exposed.contains(name), "{name} is not exposed:\n{text}");
    }
    assert!(text.contains(&format!("# TYPE {DURATION} histogram")));

    // The histogram counts every recorded attempt (a blocked asset was not attempted).
    let runs = f.ws.metadata.runs(10).expect("runs");
    assert_eq!(runs.len(), 2);
    let attempts: Vec<_> = runs
        .iter()
        .flat_map(|r| f.ws.metadata.attempts(r.id).expect("attempts"))
        .collect();
    for asset in ["weather", "origin_weather", "broken"] {
        let recorded = attempts
            .iter()
            .filter(|a| a.asset == asset && a.attempt >= 1)
            .count() as f64;
        let count = sample(&text, &format!("{DURATION}_count{{pipeline=\"{asset}\"}}"));
        assert_eq!(count, recorded, "{asset}");
        let inf = sample(
            &text,
            &format!("{DURATION}_bucket{{pipeline=\"{asset}\",le=\"+Inf\"}}"),
        );
        assert_eq!(inf, recorded, "{asset}");
    }
    // `broken` failed twice after one retry each: two failed runs, two retries,
    // four attempts.
    assert_eq!(
        sample(
            &text,
            r#"sluice_pipeline_runs_total{pipeline="broken",status="failed"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&text, r#"sluice_attempt_retries_total{pipeline="broken"}"#),
        2.0
    );
    assert_eq!(
        sample(&text, &format!("{DURATION}_count{{pipeline=\"broken\"}}")),
        4.0
    );
    assert_eq!(
        sample(&text, r#"sluice_pipeline_failing{pipeline="broken"}"#),
        1.0
    );
    // Series exist before anything happens, so a first failure is an increase.
    assert_eq!(
        sample(
            &text,
            r#"sluice_pipeline_runs_total{pipeline="weather",status="failed"}"#
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            r#"sluice_pipeline_runs_total{pipeline="weather",status="built"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&text, r#"sluice_pipeline_failing{pipeline="weather"}"#),
        0.0
    );

    // Rows by stage: a source extracts, its contract judges every row, and
    // each judged row is published or quarantined.
    let stage = |asset: &str, stage: &str| {
        sample(
            &text,
            &format!("sluice_records_processed_total{{pipeline=\"{asset}\",stage=\"{stage}\"}}"),
        )
    };
    let built_in: u64 = attempts
        .iter()
        .filter(|a| a.asset == "weather" && a.status == "built")
        .map(|a| a.rows_in)
        .sum();
    assert_eq!(stage("weather", "extract"), built_in as f64);
    assert_eq!(stage("weather", "validate"), built_in as f64);
    assert_eq!(stage("weather", "transform"), 0.0);
    assert!(stage("weather", "quarantine") > 0.0, "LGA is quarantined");
    assert_eq!(
        stage("weather", "publish") + stage("weather", "quarantine"),
        stage("weather", "validate")
    );
    assert_eq!(stage("origin_weather", "extract"), 0.0);
    assert!(stage("origin_weather", "transform") > 0.0);
    assert!(stage("origin_weather", "online") > 0.0);

    // The newest report's checks and drift, the asset's age, the schedule.
    assert!(
        sample(
            &text,
            r#"sluice_data_quality_score{check="origin.one_of",pipeline="weather"}"#
        ) < 1.0
    );
    let psi = sample(
        &text,
        r#"sluice_feature_drift_score{feature="humid",pipeline="weather",statistic="psi"}"#,
    );
    assert!((0.0..0.2).contains(&psi), "the same data twice: {psi}");
    assert!(sample(&text, r#"sluice_asset_age_seconds{asset="weather"}"#) >= 0.0);
    assert_eq!(
        sample(
            &text,
            r#"sluice_schedule_last_tick_timestamp_seconds{schedule="hourly"}"#
        ),
        TICK as f64
    );
    assert!(
        sample(
            &text,
            r#"sluice_schedule_next_tick_timestamp_seconds{schedule="hourly"}"#
        ) > TICK as f64
    );
    assert!(sample(&text, r#"sluice_schedule_lag_seconds{schedule="hourly"}"#) >= 0.0);
    // Alert deliveries: the failure's message given up (its variable is not
    // set), the fixture's delivered after two retries.
    for (series, v) in [
        (
            r#"sluice_alert_deliveries_total{alert="oncall",channel="webhook",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"sluice_alert_deliveries_total{alert="oncall",channel="webhook",outcome="delivered"}"#,
            1.0,
        ),
        (
            r#"sluice_alert_deliveries_pending{alert="oncall",channel="webhook"}"#,
            0.0,
        ),
        (
            r#"sluice_alert_delivery_retries_total{alert="oncall",channel="webhook"}"#,
            2.0,
        ),
    ] {
        assert_eq!(sample(&text, series), v, "{series}");
    }
    // Labels are names, never a key.
    assert!(!text.contains(&f.reader));

    if let Some(out) = promtool(&["check", "metrics"], Some(&text)) {
        assert!(
            out.status.success(),
            "promtool rejects /metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_rules_query_only_metrics_sluice_exposes() {
    let f = monitored().await;
    let text = scrape(&f).await;
    let exposed = families(&text);

    let dashboard = crate::grafana_dashboard(&f.ws.project);
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(q) = var["query"]["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    assert!(exprs.len() >= 12, "{exprs:?}");
    let mut queried = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} queries no sluice metric");
        for name in names {
            let family = family_of(&name, &exposed);
            assert!(
                exposed.contains(&family),
                "the dashboard queries {name}, which /metrics does not expose: {expr}"
            );
            queried.insert(family);
        }
    }
    // Every family is on the dashboard.
    for name in EXPOSED {
        assert!(queried.contains(name), "no panel shows {name}");
    }

    // The rules, but for the search rule, whose metric a process shows only
    // after a search.
    let rules = crate::alert_rules(&f.ws.project);
    let mut checked = 0;
    for line in rules.lines() {
        let Some(expr) = line.trim().strip_prefix("expr: ") else {
            continue;
        };
        let expr: String = serde_json::from_str(expr).expect("a JSON string");
        for name in metric_names(&expr) {
            let family = family_of(&name, &exposed);
            // Exposed once a search was answered (tests/search.rs scrapes it).
            if family == "sluice_vector_search_latency_seconds_bucket" {
                continue;
            }
            assert!(exposed.contains(&family), "a rule queries {name}: {expr}");
            checked += 1;
        }
    }
    assert!(checked >= 6, "{rules}");
}
