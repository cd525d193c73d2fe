//! How values read back through the API: timestamps, entity keys and numbers
//! are written the same way by every route (issue 15, item 10).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{app, call, fixture};

fn ends_with_z(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.ends_with('Z'))
}

/// Regression: `GET /v1/features` gave `2013-01-01T01:00:00Z` while
/// `GET /v1/runs` gave `+00:00`, and a view over a time without a zone still
/// claimed `Z`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_come_back_with_z_from_one_route_and_without_from_another() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.operator);
    let k = Some(key.as_str());

    let (status, r) = call(&app, "GET", "/v1/features/origin_weather/JFK", k, None).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(ends_with_z(&r["event_timestamp"]), "{r}");

    let (status, r) = call(
        &app,
        "GET",
        "/v1/assets/origin_weather/rows?limit=1",
        k,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(ends_with_z(&r["rows"][0]["time_hour"]), "{r}");

    let sql = "SELECT time_hour, CAST(time_hour AS TIMESTAMP) AS wall FROM weather ORDER BY time_hour LIMIT 1";
    let (status, r) = call(&app, "POST", "/v1/query", k, Some(json!({ "sql": sql }))).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["rows"][0]["time_hour"], "2013-01-01T06:00:00Z", "{r}");
    // Without a time zone it is a wall-clock time, not an instant: no `Z`.
    assert_eq!(r["rows"][0]["wall"], "2013-01-01T06:00:00", "{r}");

    let (status, r) = call(&app, "GET", "/v1/runs", k, None).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let run = &r["runs"][0];
    assert!(ends_with_z(&run["started_at"]), "{r}");
    assert!(ends_with_z(&run["finished_at"]), "{r}");

    let (status, r) = call(&app, "GET", "/v1/assets/weather", k, None).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(ends_with_z(&r["versions"][0]["committed_at"]), "{r}");
}

/// Regression: `month`, an integer key column, came back as `"1"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_entity_ids_come_back_as_strings() {
    let f = fixture().await;
    let app = app(&f.ws, false);
    let key = format!("Bearer {}", f.reader);
    let (status, r) = call(
        &app,
        "GET",
        "/v1/features/origin_month/JFK/1",
        Some(key.as_str()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["entity"], json!({"origin": "JFK", "month": 1}), "{r}");
}
