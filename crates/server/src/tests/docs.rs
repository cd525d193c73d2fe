//! Metrics, the OpenAPI document and stable row pages.

use super::roles::matrix_routes;
use super::*;

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
        r#"sluice_records_processed_total{pipeline="weather",stage="extract"} 26115"#,
        r#"sluice_records_processed_total{pipeline="weather",stage="publish"} 26115"#,
        r#"sluice_pipeline_duration_seconds_count{pipeline="weather"} 1"#,
        "# TYPE sluice_pipeline_duration_seconds histogram",
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
        "/v1/exports/{name}/{key}",
        "/v1/query",
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/runs/{id}/cancel",
        "/v1/runs/{id}/logs",
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
    let rest = t.last().is_some_and(|s| *s == "{entity}" || *s == "{key}");
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
