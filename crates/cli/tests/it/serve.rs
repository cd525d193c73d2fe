//! `sluice serve` as a real process on loopback: keys from the CLI, features
//! read while another process rewrites the view, `/metrics` checked by
//! promtool, and the example's exports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::common::{Server, flights_copy, ok, run_json, sluice};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn serve_answers_while_another_process_rewrites_the_view() {
    let dir = flights_copy();
    let (done, _) = run_json(dir.path(), &[]);
    assert!(done);

    // The example's exports: carriers keyed by code, and a CSV.
    let carriers = json(
        &std::fs::read_to_string(dir.path().join("exports/carrier_delays.json"))
            .expect("json export"),
    );
    let carriers = carriers.as_object().expect("keyed by carrier");
    assert_eq!(carriers.len(), 16);
    // As of the run, years after the data: the 30-day windows are empty.
    assert_eq!(
        carriers["UA"]["carrier_flights_30d"], 0,
        "{:?}",
        carriers["UA"]
    );
    assert!(
        carriers["UA"]["carrier_arr_delay_30d"].is_null(),
        "{:?}",
        carriers["UA"]
    );
    assert!(
        carriers["UA"].get("carrier").is_none(),
        "the key is not repeated inside"
    );
    let csv = std::fs::read_to_string(dir.path().join("exports/carrier_summary.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 17, "{csv}");

    // Keys from the CLI: printed once, listed without secrets.
    let reader = ok(
        dir.path(),
        &["keys", "create", "--role", "reader", "--name", "app"],
    );
    let reader = reader.trim().to_string();
    assert!(reader.starts_with("sk_"));
    let list = ok(dir.path(), &["keys", "list", "--json"]);
    assert!(
        !list.contains(&reader) && list.contains("\"app\""),
        "{list}"
    );

    let server = Server::start(dir.path());
    let (status, body) = server.request("GET", "/v1/features/plane_delays/N14228", None, None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.request(
        "GET",
        "/v1/features/plane_delays/N14228",
        Some(&reader),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let first = json(&body);
    assert_eq!(
        first["features"].as_object().map(|f| f.len()),
        Some(9),
        "{first}"
    );
    let v0 = first["version"].as_u64().expect("version");

    // Hammer the server from 4 threads while another process rebuilds the view.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let newest = Arc::new(AtomicU64::new(v0));
    let addr = server.addr;
    let mut readers = Vec::new();
    for t in 0..4 {
        let (stop, served, newest, key) =
            (stop.clone(), served.clone(), newest.clone(), reader.clone());
        readers.push(std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = if t % 2 == 0 {
                    crate::common::http(addr, "GET", "/v1/features/plane_delays/N14228", Some(&key), None)
                } else {
                    crate::common::http(
                        addr,
                        "POST",
                        "/v1/features",
                        Some(&key),
                        Some(r#"{"features":["plane_delays","carrier_delays"],"entities":[{"tailnum":"N14228","carrier":"UA"},{"tailnum":"N24211","carrier":"UA"}]}"#),
                    )
                };
                served.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    errors.push(format!("{status}: {body}"));
                    continue;
                }
                let v = json(&body);
                // Every answer is a whole record of one version.
                let record = if t % 2 == 0 { v.clone() } else { v["results"][0]["views"]["plane_delays"].clone() };
                if record["features"].as_object().map(|f| f.len()) != Some(9) {
                    errors.push(format!("partial record: {record}"));
                }
                if let Some(version) = record["version"].as_u64() {
                    newest.fetch_max(version, Ordering::Relaxed);
                }
            }
            errors
        }));
    }
    // A changed description changes the view's fingerprint: a full rebuild and republish.
    let toml_path = dir.path().join("sluice.toml");
    let text = std::fs::read_to_string(&toml_path).expect("toml");
    let text = text.replace(
        "description = \"Per plane: flights and mean delays",
        "description = \"Per plane (rebuilt): flights and mean delays",
    );
    std::fs::write(&toml_path, text).expect("toml");
    let (done, summary) = run_json(dir.path(), &["plane_delays"]);
    assert!(done, "{summary}");
    let rebuilt = summary["assets"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "plane_delays"))
        .expect("plane_delays");
    assert_eq!(rebuilt["status"], "built", "{rebuilt}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let errors: Vec<String> = readers
        .into_iter()
        .flat_map(|r| r.join().expect("reader"))
        .collect();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        served.load(Ordering::Relaxed) > 20,
        "too few requests were made"
    );
    assert_eq!(
        newest.load(Ordering::Relaxed),
        v0 + 1,
        "reads see the new version"
    );

    // /metrics: route templates, never entities; promtool accepts it.
    let (status, metrics) = server.request("GET", "/metrics", Some(&reader), None);
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"route="/v1/features/{view}/{*entity}""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sluice_pipeline_runs_total{pipeline="plane_delays",status="built"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"sluice_data_quality_score{check="arrived_or_cancelled",pipeline="flights"}"#
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("N14228"));
    promtool_accepts(&metrics);

    // Revoked keys stop working at once, without a restart.
    ok(dir.path(), &["keys", "revoke", "app"]);
    let (status, _) = server.request(
        "GET",
        "/v1/features/plane_delays/N14228",
        Some(&reader),
        None,
    );
    assert_eq!(status, 401);
}

/// `promtool check metrics` (Debian's `prometheus` package): required under CI.
fn promtool_accepts(metrics: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipping the promtool check: cannot run promtool ({e}); install Debian's `prometheus`"
            );
            return;
        }
        Err(e) => panic!("promtool is required under CI: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool rejects /metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_without_keys_stays_on_loopback() {
    let dir = flights_copy();
    let o = sluice(dir.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("only listens on loopback") && err.contains("sluice keys create"),
        "{err}"
    );
    let server = Server::start(dir.path());
    let (status, body) = server.request("GET", "/healthz", None, None);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    // Nothing materialized yet: a clear 404, not a crash.
    let (status, body) = server.request("GET", "/v1/features/plane_delays/N14228", None, None);
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("not been materialized")
            || body.contains("no version yet")
            || body.contains("sluice run"),
        "{body}"
    );
}
