//! Features, odd keys and SQL over HTTP.

use super::*;

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
        ("/v1/runs/abc/logs", StatusCode::BAD_REQUEST),
        ("/v1/runs/999/logs", StatusCode::NOT_FOUND),
        ("/v1/runs/1/logs?asset=nope", StatusCode::NOT_FOUND),
        ("/v1/runs/1/logs?limit=10001", StatusCode::BAD_REQUEST),
        ("/v1/runs/1/logs?lmit=3", StatusCode::BAD_REQUEST),
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
    assert_eq!(l["assets"].as_array().map(Vec::len), Some(6));
    assert_eq!(l["assets"][0]["stale"], false);
}
