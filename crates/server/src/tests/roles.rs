//! Every route answers exactly the roles allowed, and the keyless local mode.

use super::*;

/// Every route of the API, called once each by the role matrix.
pub(super) fn matrix_routes() -> Vec<Route<'static>> {
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
        // The fixture has no collection: allowed callers get a 404 from the handler.
        (
            "POST",
            "/v1/search/nope",
            Some(json!({"question": "late flights"})),
            Some(Role::Reader),
            StatusCode::NOT_FOUND,
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
        // The fixture has no keyed export: allowed callers get a 404 from the handler.
        (
            "GET",
            "/v1/exports/nope/JFK",
            None,
            Some(Role::Reader),
            StatusCode::NOT_FOUND,
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
            "GET",
            "/v1/runs/1/logs",
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
        (
            "POST",
            "/v1/runs/1/cancel",
            None,
            Some(Role::Operator),
            StatusCode::CONFLICT,
        ),
        (
            "POST",
            "/v1/push/readings",
            Some(json!([{"station": "JFK", "temp": 3.5}])),
            Some(Role::Writer),
            StatusCode::OK,
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
        ("writer", Some(bearer(&f.writer)), Some(Role::Writer)),
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
