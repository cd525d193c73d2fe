//! `sluice monitoring`: the rules and the dashboard of the flights example, and
//! end to end on loopback — Debian's Prometheus scrapes `sluice serve` with the
//! generated rules, and an asset failing in another process fires the
//! run-failed alert in Prometheus's `/api/v1/alerts`, which Debian's
//! Alertmanager delivers to a webhook receiver in the test.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::alerts::hook;
use crate::common::{Server, flights_copy, http, ok, repo, sluice};

/// Whether `tool` (from Debian's package `package`) runs; without it the test
/// is skipped (and says so), except under `CI`, where it is required.
fn have(tool: &str, package: &str) -> bool {
    match Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping: cannot run {tool} ({e}); install Debian's `{package}`");
            false
        }
        Err(e) => panic!("{tool} is required under CI (apt-get install {package}): {e}"),
    }
}

fn promtool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write");
    }
    drop(input);
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} fails:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn monitoring_writes_the_examples_rules_and_dashboard() {
    let dir = flights_copy();
    let file = dir.path().join("alerts.yml");
    let printed = ok(
        dir.path(),
        &["monitoring", "rules", "--output", &file.to_string_lossy()],
    );
    assert!(printed.contains("wrote "), "{printed}");
    let rules = std::fs::read_to_string(&file).expect("alerts.yml");
    // The example's own thresholds: dep_delay's drift, carrier's null fraction.
    for expr in [
        r#"sluice_feature_drift_score{pipeline=\"flights\",feature=\"dep_delay\",statistic=\"psi\"} > 0.1"#,
        r#"sluice_feature_drift_score{pipeline=\"flights\",feature=\"dep_delay\",statistic=\"ks\"} > 0.05"#,
        r#"sluice_data_quality_score{pipeline=\"flights\",check=\"carrier.null_fraction\"} < 1"#,
        r#"sluice_data_quality_score{pipeline=\"flights\",check=\"arrived_or_cancelled\"} < 1"#,
    ] {
        assert!(rules.contains(expr), "no {expr} in\n{rules}");
    }
    // Standard output without --output; the same text.
    assert_eq!(ok(dir.path(), &["monitoring", "rules"]), rules);
    if have("promtool", "prometheus") {
        promtool(&["check", "rules", &file.to_string_lossy()], None);
    }

    let dashboard: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["monitoring", "grafana"])).expect("JSON");
    assert_eq!(dashboard["title"], "sluice: flights");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{dashboard}");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for t in [
        "Runs by status",
        "Rows by stage",
        "HTTP latency by route (p99)",
    ] {
        assert!(titles.contains(&t), "{titles:?}");
    }

    // A project that does not compile: the file and line, exit status 2.
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[project]\nname = \"x\"\n\n[tables.t]\nsql = \"SELECT * FROM nowhere\"\n",
    )
    .expect("write");
    let o = sluice(dir.path(), &["monitoring", "rules"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sluice.toml:5"), "{err}");
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP body, with chunked transfer decoded (Prometheus chunks larger answers).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, body) = http(addr, "GET", path, None, None);
    (status, dechunk(&body))
}

fn dechunk(body: &str) -> String {
    let mut rest = body;
    let mut out = String::new();
    loop {
        let Some((size, tail)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            // Not chunked.
            return body.to_string();
        };
        if n == 0 || tail.len() < n {
            return out;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
}

/// Polls `check` until it holds, for at most `limit`.
fn until(limit: Duration, what: &str, mut check: impl FnMut() -> Option<String>) -> String {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Debian's Alertmanager on a free loopback port, alone (no cluster), its
/// state in `dir`, routing every alert to the webhook receiver on `hook_port`
/// after a second of grouping; ready when returned.
struct Alertmanager {
    addr: SocketAddr,
    _process: Killed,
}

fn alertmanager(dir: &std::path::Path, hook_port: u16) -> Alertmanager {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: test\n  group_by: [alertname, pipeline]\n  \
             group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: test\n    webhook_configs:\n      \
             - url: \"http://127.0.0.1:{hook_port}/alertmanager\"\n        send_resolved: false\n"
        ),
    )
    .expect("alertmanager.yml");
    let checked = Command::new("amtool")
        .args(["check-config", &config.to_string_lossy()])
        .output()
        .expect("amtool runs");
    assert!(
        checked.status.success(),
        "amtool check-config: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let process = Killed(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join("alertmanager").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts"),
    );
    until(Duration::from_secs(60), "Alertmanager is ready", || {
        std::net::TcpStream::connect(addr).ok()?;
        (get(addr, "/-/ready").0 == 200).then(String::new)
    });
    Alertmanager {
        addr,
        _process: process,
    }
}

#[test]
fn prometheus_fires_the_run_failed_alert_and_alertmanager_delivers_it() {
    if !have("prometheus", "prometheus")
        || !have("promtool", "prometheus")
        || !have("prometheus-alertmanager", "prometheus-alertmanager")
        || !have("amtool", "prometheus-alertmanager")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = repo().join("examples/flights/data/weather.parquet");
    std::fs::copy(&data, dir.path().join("weather.parquet")).expect("copy");
    std::fs::write(
        dir.path().join("sluice.toml"),
        r#"[project]
name = "alerting"

[sources.weather]
path = "weather.parquet"

[sources.weather.contract.columns.origin]
one_of = ["EWR", "JFK"]

[tables.broken]
sql = "SELECT CAST(origin AS INT) AS o FROM weather"
retries = 1
retry_delay = "2ms"
max_delay = "3ms"
retry_on = "any"
"#,
    )
    .expect("project");
    ok(dir.path(), &["run", "weather"]);
    ok(
        dir.path(),
        &[
            "monitoring",
            "rules",
            "--output",
            &dir.path().join("alerts.yml").to_string_lossy(),
        ],
    );
    let key = ok(
        dir.path(),
        &["keys", "create", "--role", "reader", "--name", "prometheus"],
    );
    let key = key.trim().to_string();

    let server = Server::start(dir.path());
    let (hooked, hook_port) = hook();
    let manager = alertmanager(dir.path(), hook_port);
    let port = free_port();
    let prom: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [\"alerts.yml\"]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{}\"]\n\
             scrape_configs:\n  - job_name: sluice\n    authorization:\n      credentials: \"{key}\"\n    \
             static_configs:\n      - targets: [\"{}\"]\n",
            manager.addr, server.addr
        ),
    )
    .expect("prometheus.yml");
    promtool(
        &[
            "check",
            "config",
            &dir.path().join("prometheus.yml").to_string_lossy(),
        ],
        None,
    );
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let limit = Duration::from_secs(90);
    until(limit, "Prometheus is ready", || {
        std::net::TcpStream::connect(prom).ok()?;
        (get(prom, "/-/ready").0 == 200).then(String::new)
    });
    // Scraped, with the key: `broken` has a series and is not failing.
    until(limit, "a scrape of sluice serve", || {
        let (_, body) = get(prom, "/api/v1/query?query=sluice_pipeline_failing");
        body.contains(r#""pipeline":"broken""#).then_some(body)
    });
    let (_, alerts) = get(prom, "/api/v1/alerts");
    assert!(!alerts.contains("SluiceRunFailed"), "{alerts}");

    // Another process runs the failing asset (a retry, then a failure).
    let o = sluice(dir.path(), &["run", "broken"]);
    assert_eq!(o.status.code(), Some(1));
    let firing = until(limit, "the run-failed alert fires", || {
        let (_, body) = get(prom, "/api/v1/alerts");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let alerts = v["data"]["alerts"].as_array()?.clone();
        alerts
            .into_iter()
            .find(|a| {
                a["labels"]["alertname"] == "SluiceRunFailed"
                    && a["labels"]["pipeline"] == "broken"
                    && a["state"] == "firing"
            })
            .map(|a| a.to_string())
    });
    assert!(firing.contains(r#""project":"alerting""#), "{firing}");
    assert!(
        firing.contains("sluice asset broken failed"),
        "the summary names the asset: {firing}"
    );
    // Only the failing asset has failed; weather's quarantine alerts as quality.
    let (_, body) = get(prom, "/api/v1/alerts");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let alerts = v["data"]["alerts"].as_array().expect("alerts");
    let named = |name: &str| -> Vec<String> {
        alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .map(|a| {
                a["labels"]["pipeline"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(named("SluiceRunFailed"), vec!["broken"], "{body}");
    assert_eq!(
        named("SluiceDataQualityBelowThreshold"),
        vec!["weather"],
        "{body}"
    );

    // /metrics after a failure, a retry and a quarantine passes promtool's lint.
    let (status, metrics) = server.request("GET", "/metrics", Some(&key), None);
    assert_eq!(status, 200);
    for line in [
        r#"sluice_attempt_retries_total{pipeline="broken"} 1"#,
        r#"sluice_pipeline_runs_total{pipeline="broken",status="failed"} 1"#,
        r#"sluice_pipeline_duration_seconds_count{pipeline="broken"} 2"#,
    ] {
        assert!(metrics.contains(line), "no {line} in\n{metrics}");
    }
    assert!(!metrics.contains(&key));
    promtool(&["check", "metrics"], Some(&metrics));

    // Prometheus handed the firing alert to Alertmanager, which POSTed it to
    // the test's receiver with its labels.
    let delivered = until(limit, "Alertmanager delivers the alert", || {
        hooked.lock().expect("lock").iter().find_map(|body| {
            let v: serde_json::Value = serde_json::from_str(body).ok()?;
            let alerts = v["alerts"].as_array()?;
            alerts
                .iter()
                .find(|a| a["labels"]["alertname"] == "SluiceRunFailed")
                .map(|a| a.to_string())
        })
    });
    let delivered: serde_json::Value = serde_json::from_str(&delivered).expect("JSON");
    assert_eq!(delivered["status"], "firing", "{delivered}");
    assert_eq!(delivered["labels"]["pipeline"], "broken", "{delivered}");
    assert_eq!(delivered["labels"]["project"], "alerting", "{delivered}");
    assert_eq!(delivered["labels"]["severity"], "critical", "{delivered}");
    assert_eq!(
        delivered["annotations"]["summary"], "sluice asset broken failed",
        "{delivered}"
    );
}
