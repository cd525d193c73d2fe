//! Run logs: what each asset's attempts logged, a step's stdout and stderr
//! (secrets masked), retries and blocked assets are kept per run and shown by
//! `sluice runs show ID [--asset A]` and `GET /v1/runs/{id}/logs` (operator);
//! `SLUICE_LOG_FORMAT=json` prints one JSON object per line with the run and
//! asset it is about.

use crate::common::*;

const SECRET: &str = "tok-9f8e7d6c";

const PROJECT: &str = r#"
[project]
name = "logs"

[sources.flights]
path = "flights.csv"

[tables.by_carrier]
sql = "SELECT carrier, count(*) AS n FROM flights GROUP BY carrier"

[steps.report]
command = ["sh", "-c", "echo \"report with $TOKEN\"; echo 'two carriers look late' >&2"]
inputs = ["by_carrier"]
env = { TOKEN = "${SLUICE_TEST_LOG_TOKEN}" }

[steps.flaky]
command = ["sh", "-c", "echo 'the API is rate limited' >&2; exit 75"]
retries = 1
retry_delay = "10ms"

[steps.after_flaky]
command = ["sh", "-c", "echo never"]
inputs = ["flaky"]
"#;

fn logs_project() -> tempfile::TempDir {
    let flights =
        std::fs::read(repo().join("testdata/contracts/flights.csv")).expect("flights.csv");
    project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("flights.csv", &flights),
    ])
}

/// `sluice ARGS` with the token in the environment.
fn sluice_env(p: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    sluice_cmd(p)
        .args(args)
        .env("SLUICE_TEST_LOG_TOKEN", SECRET)
        .envs(env.iter().copied())
        .output()
        .expect("sluice runs")
}

#[test]
fn each_assets_lines_are_kept_per_run_and_shown_by_the_cli_and_the_api() {
    let dir = logs_project();
    let p = dir.path();
    let o = sluice_env(p, &["run"], &[]);
    assert!(!o.status.success(), "flaky fails the run");

    // The whole run: every asset's attempts, in the order they were written.
    let o = sluice_env(p, &["runs", "show", "1"], &[]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    assert!(text.starts_with("run 1: failed in "), "{text}");
    for line in [
        "INFO  run: run 1 started: 5 assets",
        "INFO  flights#1: attempt 1 of `flights` started",
        "INFO  flights#1: built v0 in ",
        "60 rows in, 60 out, 0 quarantined",
        "INFO  by_carrier#1: built v0",
        "INFO  report#1: report with *** stream=stdout",
        "INFO  report#1: two carriers look late stream=stderr",
        "INFO  flaky#1: the API is rate limited stream=stderr",
        "ERROR flaky#1: failed after ",
        "WARN  flaky#1: attempt 1 failed with a transient error; retrying in ",
        "ERROR flaky#2: failed after ",
        "WARN  after_flaky: not attempted: upstream `flaky` failed",
        "WARN  run: run 1 failed in ",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    // A message's further lines are indented under it: the step's help line.
    assert!(text.contains("\n      help: "), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    let first = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("no {needle}: {text}"))
    };
    assert!(first("flights#1: attempt") < first("by_carrier#1: attempt"));
    assert!(first("flaky#1: failed") < first("flaky#2: attempt"));

    // One asset: its attempts and its lines only.
    let o = sluice_env(p, &["runs", "show", "1", "--asset", "flaky", "--json"], &[]);
    let run: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(run["state"], "failed");
    let attempts: Vec<_> = run["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| {
            (
                a["asset"].clone(),
                a["attempt"].clone(),
                a["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("flaky".into(), 1.into(), "failed".into()),
            ("flaky".into(), 2.into(), "failed".into())
        ]
    );
    let lines = run["logs"].as_array().expect("logs");
    assert!(lines.iter().all(|l| l["asset"] == "flaky"), "{run}");
    let stderr_lines: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "sluice::step")
        .map(|l| (l["attempt"].as_u64(), l["message"].as_str()))
        .collect();
    assert_eq!(
        stderr_lines,
        [
            (Some(1), Some("the API is rate limited stream=stderr")),
            (Some(2), Some("the API is rate limited stream=stderr"))
        ]
    );
    let seqs: Vec<_> = lines.iter().filter_map(|l| l["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Mistakes are named with what to ask instead.
    let o = sluice_env(p, &["runs", "show", "1", "--asset", "nope"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("run 1 has no asset `nope`") && err.contains("flaky"),
        "{err}"
    );
    let o = sluice_env(p, &["runs", "show", "7"], &[]);
    assert!(stderr(&o).contains("there is no run 7"), "{}", stderr(&o));

    // Over HTTP, for operators: the same lines, followed with `after`.
    let operator = ok(
        p,
        &["keys", "create", "--role", "operator", "--name", "ops"],
    );
    let reader = ok(p, &["keys", "create", "--role", "reader", "--name", "app"]);
    let server = Server::start(p);
    let (status, body) = server.request("GET", "/v1/runs/1/logs", Some(reader.trim()), None);
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.request(
        "GET",
        "/v1/runs/1/logs?asset=report",
        Some(operator.trim()),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["run"]["id"], 1);
    let messages: Vec<_> = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"report with *** stream=stdout"),
        "{messages:?}"
    );
    let all = v["lines"].as_array().expect("lines").len() as i64;
    let first_seq = v["lines"][0]["seq"].as_i64().expect("seq");
    let (status, body) = server.request(
        "GET",
        &format!("/v1/runs/1/logs?asset=report&after={first_seq}&limit=1"),
        Some(operator.trim()),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let next: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(next["lines"].as_array().map(Vec::len), Some(1), "{next}");
    assert!(next["lines"][0]["seq"].as_i64() > Some(first_seq), "{next}");
    assert_eq!(next["next_after"], next["lines"][0]["seq"]);
    assert!(all > 2, "{v}");
    assert!(!body.contains(SECRET));
}

#[test]
fn json_logs_carry_the_run_and_the_asset_and_a_bad_format_is_named() {
    let dir = logs_project();
    let p = dir.path();
    let o = sluice_env(
        p,
        &["run", "report"],
        &[("SLUICE_LOG_FORMAT", "json"), ("SLUICE_LOG", "info")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // Log events are JSON; the progress lines of `sluice run` stay text.
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| !l.starts_with("[sluice] "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let step_line = events
        .iter()
        .find(|e| e["fields"]["message"] == "report with ***")
        .unwrap_or_else(|| panic!("no step line in {err}"));
    assert_eq!(step_line["level"], "INFO");
    assert_eq!(step_line["fields"]["stream"], "stdout");
    assert_eq!(step_line["span"]["asset"], "report", "{step_line}");
    assert_eq!(step_line["span"]["run"], 1, "{step_line}");
    assert_eq!(step_line["span"]["attempt"], 1, "{step_line}");
    assert!(!err.contains(SECRET));

    let o = sluice_env(p, &["status"], &[("SLUICE_LOG_FORMAT", "xml")]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("SLUICE_LOG_FORMAT is `xml`; it is `text` (the default) or `json`"),
        "{err}"
    );
}
