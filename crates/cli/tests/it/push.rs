//! Push sources: applications send rows to `POST /v1/push/{source}` with a
//! writer's key; rows are checked against the declared columns and the
//! contract, merged by key, and never lost or duplicated under concurrency.

use std::sync::Arc;

use crate::common::*;

const PROJECT: &str = r#"
[project]
name = "push"

[sources.weather]
path = "weather.parquet"

[sources.readings]
push = { key = ["origin", "time_hour"] }
columns = { origin = "string", time_hour = "timestamp", temp = "float64" }

[sources.readings.contract.columns.temp]
min = -40
max = 130

[tables.warmest]
sql = "SELECT origin, max(temp) AS temp FROM readings GROUP BY origin"
"#;

/// Real observations (the flights example's weather) as JSON objects.
fn observations(dir: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let out = ok(
        dir,
        &[
            "query",
            "--format",
            "json",
            &format!(
                "SELECT origin, time_hour, min(temp) AS temp FROM weather WHERE temp IS NOT NULL \
                 GROUP BY origin, time_hour ORDER BY origin, time_hour LIMIT {n}"
            ),
        ],
    );
    serde_json::from_str(&out).expect("json rows")
}

fn setup() -> (tempfile::TempDir, String, String) {
    let p = project(&[("sluice.toml", PROJECT.as_bytes())]);
    std::fs::copy(
        repo().join("examples/flights/data/weather.parquet"),
        p.path().join("weather.parquet"),
    )
    .expect("copy");
    let (done, summary) = run_json(p.path(), &[]);
    assert!(done, "{summary}");
    // The push source exists, empty, so that what reads it builds.
    assert_eq!(asset(&summary, "readings")["status"], "built");
    assert_eq!(scalar(p.path(), "SELECT count(*) FROM readings"), 0);
    let key = |role: &str| {
        ok(
            p.path(),
            &["keys", "create", "--role", role, "--name", role],
        )
        .trim()
        .to_string()
    };
    let (writer, reader) = (key("writer"), key("reader"));
    (p, writer, reader)
}

#[test]
fn a_writer_pushes_rows_checked_by_the_contract_and_a_reader_cannot() {
    let (p, writer, reader) = setup();
    let dir = p.path();
    let rows = observations(dir, 3);
    let server = Server::start(dir);
    let body = |rows: &serde_json::Value| serde_json::json!({ "rows": rows }).to_string();

    let (status, answer) = server.request(
        "POST",
        "/v1/push/readings",
        Some(&reader),
        Some(&body(&serde_json::json!(rows))),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("writer"), "{answer}");

    // The second row is out of range: refused in the answer, quarantined, the others kept.
    let mut pushed = rows.clone();
    pushed[1]["temp"] = serde_json::json!(999.0);
    let (status, answer) = server.request(
        "POST",
        "/v1/push/readings",
        Some(&writer),
        Some(&body(&serde_json::json!(pushed))),
    );
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(answer["accepted"], 2, "{answer}");
    let rejected = answer["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{answer}");
    assert_eq!(rejected[0]["row"], 1, "{answer}");
    assert_eq!(rejected[0]["column"], "temp", "{answer}");
    assert_eq!(rejected[0]["temp"], 999.0, "{answer}");
    assert!(
        rejected[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("130")),
        "{answer}"
    );

    // A row that does not fit the columns refuses the request, naming it.
    let bad = serde_json::json!([rows[0], {"origin": "JFK", "time_hour": "2013-01-01T00:00:00Z", "temp": "hot"}]);
    let (status, answer) = server.request(
        "POST",
        "/v1/push/readings",
        Some(&writer),
        Some(&bad.to_string()),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("rows[1]"), "{answer}");
    let (status, answer) = server.request(
        "POST",
        "/v1/push/readings",
        Some(&writer),
        Some(r#"[{"origin": "JFK", "temp": 1.0}]"#),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("has no `time_hour`"), "{answer}");
    let (status, answer) = server.request("POST", "/v1/push/weather", Some(&writer), Some("[]"));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("not a push source"), "{answer}");
    let (status, answer) = server.request("POST", "/v1/push/nope", Some(&writer), Some("[]"));
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("readings"), "{answer}");
    drop(server);

    assert_eq!(scalar(dir, "SELECT count(*) FROM readings"), 2);
    assert_eq!(scalar(dir, "SELECT count(*) FROM readings__quarantine"), 1);
    // What reads it is rebuilt from the pushed rows at the next run.
    let (done, summary) = run_json(dir, &["warmest"]);
    assert!(done, "{summary}");
    assert_eq!(asset(&summary, "warmest")["status"], "built");
    assert_eq!(scalar(dir, "SELECT count(*) FROM warmest"), 1);
}

#[test]
fn a_thousand_concurrent_pushes_lose_no_row_and_duplicate_none() {
    let (p, writer, _) = setup();
    let dir = p.path();
    let rows = observations(dir, 800);
    let server = Arc::new(Server::start(dir));
    // 1,000 pushes of one row each: 800 keys, 200 of them pushed twice.
    let pushes: Vec<serde_json::Value> = rows
        .iter()
        .cloned()
        .chain(rows.iter().step_by(4).cloned())
        .collect();
    assert_eq!(pushes.len(), 1_000);
    let pushes = Arc::new(pushes);
    let threads: Vec<_> = (0..25)
        .map(|t| {
            let server = server.clone();
            let pushes = pushes.clone();
            let writer = writer.clone();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                for i in (t..pushes.len()).step_by(25) {
                    let body = serde_json::json!([pushes[i]]).to_string();
                    let (status, answer) =
                        server.request("POST", "/v1/push/readings", Some(&writer), Some(&body));
                    assert_eq!(status, 200, "push {i}: {answer}");
                    let answer: serde_json::Value = serde_json::from_str(&answer).expect("json");
                    assert_eq!(answer["accepted"], 1, "push {i}: {answer}");
                    versions.push(answer["version"].as_u64().expect("version"));
                }
                versions
            })
        })
        .collect();
    let mut versions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("pusher"))
        .collect();
    drop(server);
    versions.sort_unstable();
    versions.dedup();
    eprintln!("1000 pushes made {} versions", versions.len());
    assert_eq!(scalar(dir, "SELECT count(*) FROM readings"), 800);
    assert_eq!(
        scalar(
            dir,
            "SELECT count(*) FROM (SELECT DISTINCT origin, time_hour FROM readings)"
        ),
        800
    );
    // Every pushed value is there, as pushed.
    assert_eq!(
        scalar(
            dir,
            "SELECT count(*) FROM readings r JOIN \
             (SELECT origin, time_hour, min(temp) AS temp FROM weather GROUP BY origin, time_hour) w \
             ON r.origin = w.origin AND r.time_hour = w.time_hour AND r.temp = w.temp"
        ),
        800
    );
}
