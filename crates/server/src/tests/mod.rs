//! The router, called without a socket: the role matrix of every route, and what
//! each route answers, on a small project over real weather data.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sluice_runner::{Observer, Workspace};
use sluice_store::Role;
use tower::ServiceExt;

use crate::{AppState, Limits, router};

mod dashboard;
mod docs;
mod metrics;
mod reads;
mod roles;
mod values;

struct Quiet;
impl Observer for Quiet {}

/// Keys with quotes, slashes, SQL, unicode and 10 kB of text.
fn odd_keys() -> Vec<String> {
    vec![
        "O'Brien \"the\" key".to_string(),
        "a/b/../c".to_string(),
        "Zürich 東京 🚀".to_string(),
        "'; DROP TABLE weather; --".to_string(),
        "%2F%00 ?#&=+".to_string(),
        "k".repeat(10_000),
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    ws: Arc<Workspace>,
    reader: String,
    writer: String,
    operator: String,
    admin: String,
    revoked: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/flights/data/weather.parquet");
    std::fs::copy(&data, dir.path().join("weather.parquet")).expect("copy weather");
    let mut csv = String::from("name,at,score\n");
    for (i, k) in odd_keys().iter().enumerate() {
        csv.push_str(&format!(
            "\"{}\",2024-01-0{}T00:00:00Z,{i}.5\n",
            k.replace('"', "\"\""),
            i + 1
        ));
    }
    std::fs::write(dir.path().join("odd.csv"), csv).expect("csv");
    std::fs::write(
        dir.path().join("sluice.toml"),
        r#"
[project]
name = "serve"

[sources.weather]
path = "weather.parquet"

[sources.odd]
path = "odd.csv"
columns = { at = "timestamp" }

[sources.readings]
push = { key = ["station"] }
columns = { station = "string", temp = "float64" }

[features.origin_weather]
sql = "SELECT origin, time_hour, temp, humid FROM weather"
entity = "origin"
timestamp = "time_hour"

[features.origin_month]
source = "weather"
entity = ["origin", "month"]
timestamp = "time_hour"
as_of = "newest"

[features.origin_month.aggregates]
mean_temp = { agg = "mean", column = "temp" }
hours = { agg = "count" }

[features.odd_keys]
sql = "SELECT name, at, score FROM odd"
entity = "name"
timestamp = "at"
"#,
    )
    .expect("project");
    let project = sluice_project::load(dir.path(), None).expect("project compiles");
    let ws = Arc::new(Workspace::open(project).expect("workspace"));
    let summary = sluice_runner::run(ws.clone(), &[], Arc::new(Quiet))
        .await
        .expect("run");
    assert!(summary.ok, "{summary:#?}");
    let key = |role, name: &str| ws.metadata.create_key(role, name).expect("key").secret;
    let reader = key(Role::Reader, "reader");
    let writer = key(Role::Writer, "writer");
    let operator = key(Role::Operator, "operator");
    let admin = key(Role::Admin, "admin");
    let revoked = key(Role::Admin, "gone");
    ws.metadata.revoke_key("gone").expect("revoke");
    Fixture {
        _dir: dir,
        ws,
        reader,
        writer,
        operator,
        admin,
        revoked,
    }
}

fn app(ws: &Arc<Workspace>, open: bool) -> axum::Router {
    router(AppState::new(ws.clone(), open, Limits::default()).expect("state"))
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, bytes) = call_raw(app, method, uri, key, body.map(|b| b.to_string())).await;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

async fn call_raw(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, k);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let response = app.clone().oneshot(req).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

async fn wait_for_run(app: &axum::Router, key: &str, id: i64) -> Value {
    for _ in 0..600 {
        let (status, run) = call(app, "GET", &format!("/v1/runs/{id}"), Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["state"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {id} did not finish");
}

/// A route of the matrix: method, URI, body, role needed (None: public), status when allowed.
type Route<'a> = (&'a str, &'a str, Option<Value>, Option<Role>, StatusCode);
