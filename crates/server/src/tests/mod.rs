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
    let operator = key(Role::Operator, "operator");
    let admin = key(Role::Admin, "admin");
    let revoked = key(Role::Admin, "gone");
    ws.metadata.revoke_key("gone").expect("revoke");
    Fixture {
        _dir: dir,
        ws,
        reader,
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

/// Every route of the API, called once each by the role matrix.
fn matrix_routes() -> Vec<Route<'static>> {
    let features = json!({"features": ["origin_weather"], "entities": [{"origin": "JFK"}]});
    vec![
        ("GET", "/healthz", None, None, StatusCode::OK),
        ("GET", "/readyz", None, None, StatusCode::OK),
        ("GET", "/openapi.json", None, None, StatusCode::OK),
        ("GET", "/metrics", None, Some(Role::Reader), StatusCode::OK),
        (
            "GET",
            "/v1/features/origin_weather/JFK",
            None,
            Some(Role::Reader),
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/features",
            Some(features),
            Some(Role::Reader),
            StatusCode::OK,
        ),
        // The fixture has no model: allowed callers get a 404 from the handler.
        (
            "GET",
            "/v1/predictions/nope/JFK",
            None,
            Some(Role::Reader),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/v1/predict/nope",
            Some(json!({"entity": {"origin": "JFK"}})),
            Some(Role::Reader),
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/models",
            None,
            Some(Role::Reader),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/models/nope",
            None,
            Some(Role::Reader),
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/assets",
            None,
            Some(Role::Reader),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/assets/weather",
            None,
            Some(Role::Reader),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/assets/weather/rows?limit=2",
            None,
            Some(Role::Operator),
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/query",
            Some(json!({"sql": "SELECT count(*) AS n FROM weather"})),
            Some(Role::Operator),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/runs",
            None,
            Some(Role::Operator),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/runs/1",
            None,
            Some(Role::Operator),
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/runs",
            Some(json!({"assets": ["origin_weather"]})),
            Some(Role::Operator),
            StatusCode::ACCEPTED,
        ),
        ("GET", "/v1/keys", None, Some(Role::Admin), StatusCode::OK),
        (
            "POST",
            "/v1/keys",
            Some(json!({"role": "reader", "name": "made"})),
            Some(Role::Admin),
            StatusCode::CREATED,
        ),
        (
            "DELETE",
            "/v1/keys/made",
            None,
            Some(Role::Admin),
            StatusCode::OK,
        ),
    ]
}

/// Every route × every kind of caller: exactly the matrix of the issue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_exactly_the_roles_allowed() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let bearer = |k: &str| format!("Bearer {k}");
    let mut wrong = f.admin.clone();
    let last = wrong.pop().expect("a key");
    wrong.push(if last == '0' { '1' } else { '0' });
    let callers: Vec<(&str, Option<String>, Option<Role>)> = vec![
        ("no key", None, None),
        ("wrong key", Some(bearer(&wrong)), None),
        ("not a bearer", Some(f.admin.clone()), None),
        ("junk", Some("Bearer ' OR 1=1 --".into()), None),
        ("revoked key", Some(bearer(&f.revoked)), None),
        ("reader", Some(bearer(&f.reader)), Some(Role::Reader)),
        ("operator", Some(bearer(&f.operator)), Some(Role::Operator)),
        ("admin", Some(bearer(&f.admin)), Some(Role::Admin)),
    ];
    let routes = matrix_routes();
    for (method, uri, body, needs, allowed) in &routes {
        for (who, key, role) in &callers {
            let (status, answer) = call(&app, method, uri, key.as_deref(), body.clone()).await;
            let expected = match (needs, role) {
                (None, _) => *allowed,
                (Some(_), None) => StatusCode::UNAUTHORIZED,
                (Some(n), Some(r)) if r < n => StatusCode::FORBIDDEN,
                _ => *allowed,
            };
            assert_eq!(status, expected, "{method} {uri} as {who}: {answer}");
            if status.is_client_error() {
                assert!(
                    answer["error"].is_string() && answer["message"].is_string(),
                    "{answer}"
                );
            }
            if *method == "POST" && *uri == "/v1/runs" && status == StatusCode::ACCEPTED {
                let id = answer["run_id"].as_i64().expect("run id");
                let run = wait_for_run(&app, &bearer(&f.operator), id).await;
                assert_eq!(run["state"], "succeeded", "{run}");
            }
            if *method == "POST" && *uri == "/v1/keys" && status == StatusCode::CREATED {
                // Revoked again by the next route, for the next caller.
                assert!(answer["key"].as_str().is_some_and(|k| k.starts_with("sk_")));
            }
            if *method == "DELETE" && status == StatusCode::OK {
                assert_eq!(answer["revoked"][0]["name"], "made");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_local_callers_act_as_operator_until_a_key_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[project]\nname = \"empty\"\n",
    )
    .expect("project");
    let project = sluice_project::load(dir.path(), None).expect("project");
    let ws = Arc::new(Workspace::open(project).expect("workspace"));
    let app = app(&ws, true);
    assert_eq!(
        call(&app, "GET", "/v1/assets", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/v1/runs", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/v1/keys", None, None).await.0,
        StatusCode::FORBIDDEN
    );
    let key = ws.metadata.create_key(Role::Reader, "first").expect("key");
    let (status, body) = call(&app, "GET", "/v1/assets", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let auth = format!("Bearer {}", key.secret);
    assert_eq!(
        call(&app, "GET", "/v1/assets", Some(&auth), None).await.0,
        StatusCode::OK
    );
    // A server that would listen beyond loopback without keys refuses to start.
    ws.metadata.revoke_key("first").expect("revoke");
    let err = crate::bind(ws.clone(), "0.0.0.0:0".parse().expect("addr"))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, crate::ServeError::OpenNotLoopback { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_by_entity_and_in_batches() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.reader);
    let k = Some(key.as_str());

    let (status, one) = call(&app, "GET", "/v1/features/origin_weather/JFK", k, None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["entity"]["origin"], "JFK");
    assert_eq!(one["view"], "origin_weather");
    let names: Vec<&String> = one["features"]
        .as_object()
        .expect("features")
        .keys()
        .collect();
    assert_eq!(names, ["temp", "humid"]);
    assert!(
        one["event_timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2013-12-3")),
        "{one}"
    );

    // Composite keys: one segment per key column; an integer key reads back as a number.
    let (status, m) = call(&app, "GET", "/v1/features/origin_month/LGA/7", k, None).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["entity"], json!({"origin": "LGA", "month": 7}));
    assert!(
        m["features"]["hours"].as_i64().is_some_and(|h| h > 600),
        "{m}"
    );
    let (status, e) = call(&app, "GET", "/v1/features/origin_month/LGA", k, None).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );

    for (uri, code) in [
        ("/v1/features/origin_weather/XXX", StatusCode::NOT_FOUND),
        ("/v1/features/nope/JFK", StatusCode::NOT_FOUND),
        ("/v1/features/weather/JFK", StatusCode::NOT_FOUND),
        ("/v1/features/origin_weather/%FF", StatusCode::BAD_REQUEST),
        ("/v1/nothing", StatusCode::NOT_FOUND),
    ] {
        let (status, e) = call(&app, "GET", uri, k, None).await;
        assert_eq!(status, code, "{uri}: {e}");
        assert!(e["message"].is_string(), "{uri}: {e}");
    }
    let (status, e) = call(&app, "PUT", "/v1/features", k, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{e}");

    let batch = json!({
        "features": ["origin_weather:temp", "origin_month"],
        "entities": [{"origin": "EWR", "month": 1}, {"origin": "nowhere", "month": "1"}, {"origin": "JFK", "month": 13}]
    });
    let (status, b) = call(&app, "POST", "/v1/features", k, Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let results = b["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["entity"], json!({"origin": "EWR", "month": 1}));
    assert_eq!(
        results[0]["views"]["origin_weather"]["features"]
            .as_object()
            .map(|o| o.len()),
        Some(1)
    );
    assert!(results[0]["views"]["origin_month"]["features"]["mean_temp"].is_f64());
    assert!(results[1]["views"]["origin_weather"].is_null());
    assert!(results[1]["views"]["origin_month"].is_null());
    assert!(results[2]["views"]["origin_weather"].is_object());
    assert!(results[2]["views"]["origin_month"].is_null());

    for (body, code) in [
        (
            json!({"features": ["origin_weather:nope"], "entities": [{"origin": "JFK"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"features": ["origin_month"], "entities": [{"origin": "JFK"}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"features": [], "entities": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"features": ["nope"], "entities": []}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"features": ["origin_weather"], "entities": vec![json!({"origin": "JFK"}); 1001]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"features": "origin_weather", "entities": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, e) = call(&app, "POST", "/v1/features", k, Some(body)).await;
        assert_eq!(status, code, "{e}");
        assert!(e["error"].is_string(), "{e}");
    }
    let (status, e) = call_raw(&app, "POST", "/v1/features", k, Some("{not json".into())).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&e)
    );
    let huge = format!(
        "{{\"features\": [\"origin_weather\"], \"entities\": [{{\"origin\": \"{}\"}}]}}",
        "x".repeat(2 << 20)
    );
    let (status, e) = call_raw(&app, "POST", "/v1/features", k, Some(huge)).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&e)
    );
    let e: Value = serde_json::from_slice(&e).expect("json error");
    assert_eq!(e["error"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_are_found_or_not_found_never_interpreted() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.reader);
    let k = Some(key.as_str());
    for (i, name) in odd_keys().iter().enumerate() {
        let encoded = utf8_percent_encode(name, NON_ALPHANUMERIC).to_string();
        let (status, r) = call(
            &app,
            "GET",
            &format!("/v1/features/odd_keys/{encoded}"),
            k,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name:.40}: {r}");
        assert_eq!(r["entity"]["name"].as_str(), Some(name.as_str()));
        assert_eq!(r["features"]["score"], json!(i as f64 + 0.5));
        let missing = utf8_percent_encode(&format!("{name}x"), NON_ALPHANUMERIC).to_string();
        let (status, r) = call(
            &app,
            "GET",
            &format!("/v1/features/odd_keys/{missing}"),
            k,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name:.40}: {r}");
        assert!(r["message"].as_str().is_some_and(|m| m.len() < 1000), "{r}");
    }
    let entities: Vec<Value> = odd_keys().iter().map(|n| json!({"name": n})).collect();
    let (status, b) = call(
        &app,
        "POST",
        "/v1/features",
        k,
        Some(json!({"features": ["odd_keys"], "entities": entities})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (i, r) in b["results"].as_array().expect("results").iter().enumerate() {
        assert_eq!(
            r["views"]["odd_keys"]["features"]["score"],
            json!(i as f64 + 0.5)
        );
    }
    // An unencoded slash makes two segments: a clear error, not a lookup of "a".
    let (status, e) = call(&app, "GET", "/v1/features/odd_keys/a/b", k, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_is_read_only_and_bounded() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.operator);
    let k = Some(key.as_str());
    let q = |sql: &str| json!({"sql": sql});

    let (status, r) = call(
        &app,
        "POST",
        "/v1/query",
        k,
        Some(q(
            "SELECT origin, count(*) AS n FROM weather GROUP BY origin ORDER BY origin",
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["rows"][0]["origin"], "EWR");
    assert_eq!(r["columns"][1]["name"], "n");
    assert_eq!(
        (r["row_count"].as_u64(), r["truncated"].as_bool()),
        (Some(3), Some(false))
    );

    // The limit stops the stream: 680 million joined rows are never computed.
    let (status, r) = call(&app, "POST", "/v1/query", k, Some(json!({"sql": "SELECT a.temp, b.humid FROM weather a CROSS JOIN weather b", "limit": 5}))).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (r["row_count"].as_u64(), r["truncated"].as_bool()),
        (Some(5), Some(true))
    );

    let outside = f._dir.path().join("stolen.csv");
    let refused = [
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "DROP TABLE weather".to_string(),
        "INSERT INTO weather SELECT * FROM weather".to_string(),
        "DELETE FROM weather".to_string(),
        format!("COPY (SELECT * FROM weather) TO '{}'", outside.display()),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM generate_series(1, 1000000000000)".to_string(),
        "SELECT * FROM read_parquet('weather.parquet')".to_string(),
        "SELECT * FROM '/etc/passwd'".to_string(),
        "SELECT * FROM 'weather.parquet'".to_string(),
        "SELECT * FROM information_schema.tables".to_string(),
        "SELECT 1; DROP TABLE weather".to_string(),
    ];
    for sql in &refused {
        let (status, e) = call(&app, "POST", "/v1/query", k, Some(q(sql))).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{sql}: {status} {e}"
        );
        assert!(e["message"].is_string(), "{sql}: {e}");
    }
    assert!(!outside.exists());
    let (status, r) = call(
        &app,
        "POST",
        "/v1/query",
        k,
        Some(q("SELECT count(*) AS n FROM weather")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["rows"][0]["n"], 26115);

    // Rows: pages, versions, bounds.
    let (status, r) = call(
        &app,
        "GET",
        "/v1/assets/weather/rows?limit=3&offset=10",
        k,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["rows"].as_array().map(Vec::len), Some(3));
    let (status, r) = call(
        &app,
        "GET",
        "/v1/assets/weather/rows?limit=1&as_of=0",
        k,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    for (uri, code) in [
        (
            "/v1/assets/weather/rows?limit=100000",
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/assets/weather/rows?limit=-1", StatusCode::BAD_REQUEST),
        ("/v1/assets/weather/rows?as_of=99", StatusCode::NOT_FOUND),
        (
            "/v1/assets/weather/rows?as_of=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/assets/..%2F..%2Fetc/rows", StatusCode::NOT_FOUND),
        ("/v1/assets/nope", StatusCode::NOT_FOUND),
        ("/v1/runs/abc", StatusCode::BAD_REQUEST),
        ("/v1/runs/999", StatusCode::NOT_FOUND),
    ] {
        let (status, e) = call(&app, "GET", uri, k, None).await;
        assert_eq!(status, code, "{uri}: {e}");
        assert!(e["error"].is_string(), "{uri}: {e}");
    }

    let (status, a) = call(&app, "GET", "/v1/assets/origin_month", k, None).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["kind"], "features");
    assert_eq!(a["inputs"], json!(["weather"]));
    assert_eq!(a["versions"][0]["version"], 0);
    assert!(a["columns"].as_array().is_some_and(|c| c.len() == 5), "{a}");
    let (status, l) = call(&app, "GET", "/v1/assets", k, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(l["assets"].as_array().map(Vec::len), Some(5));
    assert_eq!(l["assets"][0]["stale"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_openapi_describe_the_server() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.reader);
    let k = Some(key.as_str());
    let secret = "JFK";
    call(
        &app,
        "GET",
        &format!("/v1/features/origin_weather/{secret}"),
        k,
        None,
    )
    .await;
    call(
        &app,
        "GET",
        "/v1/features/origin_weather/SECRET_ENTITY",
        k,
        None,
    )
    .await;
    let (status, body) = call_raw(&app, "GET", "/metrics", k, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf8");
    for line in [
        r#"sluice_http_request_duration_seconds_count{route="/v1/features/{view}/{*entity}",status="200"} 1"#,
        r#"sluice_http_request_duration_seconds_count{route="/v1/features/{view}/{*entity}",status="404"} 1"#,
        r#"sluice_pipeline_runs_total{pipeline="weather",status="built"} 1"#,
        r#"sluice_records_processed_total{pipeline="weather",stage="read"} 26115"#,
        "# TYPE sluice_pipeline_duration_seconds gauge",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(!text.contains("SECRET_ENTITY"));

    let (status, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{doc}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/v1/features/{view}/{entity}",
        "/v1/features",
        "/v1/assets",
        "/v1/assets/{name}",
        "/v1/assets/{name}/rows",
        "/v1/query",
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/keys",
        "/v1/keys/{id}",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Whether a concrete path (`/v1/features/origin_weather/JFK`) is an instance
/// of an OpenAPI template (`/v1/features/{view}/{entity}`); the last parameter
/// of the entity routes spans the rest of the path.
fn instance_of(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    let rest = t.last().is_some_and(|s| *s == "{entity}");
    if p.len() < t.len() || (!rest && p.len() != t.len()) {
        return false;
    }
    t.iter()
        .zip(&p)
        .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// Regression: routes of the OpenAPI document went untested. Every method and
/// path it documents must be called by the role matrix (which asserts each
/// answer), and the matrix calls nothing it does not document.
#[test]
fn every_route_in_the_openapi_document_is_exercised() {
    let doc = serde_json::to_value(crate::openapi()).expect("the document as JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let routes = matrix_routes();
    let mut documented = 0;
    for (template, item) in paths {
        let methods = item.as_object().expect("a path item").keys().filter(|k| {
            [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&k.as_str())
        });
        for method in methods {
            documented += 1;
            let method = method.to_ascii_uppercase();
            assert!(
                routes
                    .iter()
                    .any(|(m, uri, ..)| *m == method && instance_of(template, uri)),
                "{method} {template} is documented but no test calls it"
            );
        }
    }
    for (method, uri, ..) in &routes {
        assert!(
            paths.iter().any(|(template, item)| {
                item.get(method.to_ascii_lowercase()).is_some() && instance_of(template, uri)
            }),
            "{method} {uri} is called but not documented"
        );
    }
    assert_eq!(documented, routes.len(), "one call per documented route");
}

/// Regression: `GET /v1/assets/{name}/rows` paged with an offset and no order,
/// so a page could repeat or skip rows. Pages of every row, concatenated, are
/// the table once, and the same page twice is the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_pages_are_stable_and_cover_every_row_once() {
    let f = fixture().await;
    let limits = Limits {
        rows: 10_000,
        ..Limits::default()
    };
    let app = router(AppState::new(f.ws.clone(), false, limits).expect("state"));
    let key = format!("Bearer {}", f.operator);
    let k = Some(key.as_str());
    let all = sluice_runner::query(&f.ws, "SELECT * FROM weather", sluice_store::AsOf::Latest)
        .await
        .expect("every row");
    let mut expected: Vec<String> = sluice_runner::json_rows(&all)
        .expect("json")
        .into_iter()
        .map(|r| Value::Object(r).to_string())
        .collect();
    assert_eq!(expected.len(), 26115);

    let page = 7_000;
    let mut pages: Vec<Vec<Value>> = Vec::new();
    for offset in (0..expected.len() + page).step_by(page) {
        let uri = format!("/v1/assets/weather/rows?limit={page}&offset={offset}");
        let (status, r) = call(&app, "GET", &uri, k, None).await;
        assert_eq!(status, StatusCode::OK, "{r}");
        let rows = r["rows"].as_array().expect("rows").clone();
        let (status, again) = call(&app, "GET", &uri, k, None).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(
            &rows,
            again["rows"].as_array().expect("rows"),
            "{uri} changed"
        );
        pages.push(rows);
    }
    assert!(
        pages.last().is_some_and(Vec::is_empty),
        "a page past the end is empty"
    );
    let mut got: Vec<String> = pages.concat().iter().map(Value::to_string).collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "pages hold every row exactly once"
    );
    got.sort_unstable();
    expected.sort_unstable();
    assert!(got == expected, "pages differ from the table's rows");
}
