//! The dashboard's doors, without a browser: signing in with a key sets a
//! session cookie (and never the key); each page answers the roles the API's
//! matching routes do; a POST without the session's CSRF token, or with
//! another session's, does nothing; a revoked key is signed out at once; with
//! no key in force the pages are open on loopback.

use super::*;

/// A browser: its cookie, sent with each request.
struct Browser {
    app: axum::Router,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(app: &axum::Router) -> Self {
        Self {
            app: app.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, method: &str, uri: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let req = match form {
            Some(fields) => {
                let body: String = fields
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}={}",
                            utf8_percent_encode(k, NON_ALPHANUMERIC),
                            utf8_percent_encode(v, NON_ALPHANUMERIC)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("&");
                req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
            }
            None => req.body(Body::empty()),
        }
        .expect("request");
        let response = self.app.clone().oneshot(req).await.expect("response");
        let status = response.status();
        if let Some(set) = response.headers().get(header::SET_COOKIE) {
            let set = set.to_str().expect("cookie");
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Strict"),
                "{set}"
            );
            let pair = set.split(';').next().expect("pair").to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().expect("location").to_string());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, uri: &str) -> Answer {
        self.send("GET", uri, None).await
    }

    /// The CSRF token of the page at `uri`, as its forms carry it.
    async fn token(&mut self, uri: &str) -> String {
        let page = self.get(uri).await;
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field on {uri}:\n{}", page.body));
        page.body[at + 19..at + 19 + 64].to_string()
    }

    async fn sign_in(&mut self, key: &str) -> Answer {
        let csrf = self.token("/sign-in").await;
        self.send(
            "POST",
            "/sign-in",
            Some(&[("csrf", &csrf), ("key", key), ("next", "/")]),
        )
        .await
    }
}

#[tokio::test]
async fn pages_answer_the_api_s_roles_and_posts_need_the_session_s_token() {
    let f = fixture().await;
    let app = app(&f.ws, false);

    // No session: every page sends to the sign-in page.
    let mut nobody = Browser::new(&app);
    let a = nobody.get("/").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location.as_deref(), Some("/sign-in?next=%2F"));
    assert!(nobody.cookie.is_some(), "a session for the sign-in form");
    let a = nobody.get("/runs").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let a = nobody.get("/search/docs?q=x").await;
    assert_eq!(
        a.status,
        StatusCode::SEE_OTHER,
        "a collection's search needs a reader"
    );
    assert_eq!(
        a.location.as_deref(),
        Some("/sign-in?next=%2Fsearch%2Fdocs")
    );
    let a = nobody.get("/static/app.css").await;
    assert_eq!(a.status, StatusCode::OK, "static files are public");

    // A wrong key is refused; a sign-in without the form's token too.
    let a = nobody.sign_in(&f.revoked).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let a = nobody
        .send("POST", "/sign-in", Some(&[("key", &f.reader)]))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // A reader: the overview and the assets; not the runs, rows or buttons.
    let mut reader = Browser::new(&app);
    let before = reader.get("/sign-in").await;
    assert_eq!(before.status, StatusCode::OK);
    let planted = reader.cookie.clone();
    let a = reader.sign_in(&f.reader).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location.as_deref(), Some("/"));
    assert_ne!(reader.cookie, planted, "signing in makes a new session id");
    let cookie = reader.cookie.clone().expect("cookie");
    assert!(
        !cookie.contains(&f.reader),
        "the key never reaches the browser"
    );
    let a = reader.get("/").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("svg class=\"graph\"") && a.body.contains("/assets/weather"));
    assert!(
        !a.body.contains("href=\"/runs\""),
        "no link a reader cannot follow"
    );
    let a = reader.get("/assets/weather").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("time_hour"), "its columns");
    assert!(
        !a.body.contains("<table class=\"rows\""),
        "rows are an operator's"
    );
    assert_eq!(reader.get("/runs").await.status, StatusCode::FORBIDDEN);
    assert_eq!(reader.get("/runs/1").await.status, StatusCode::FORBIDDEN);
    let csrf = reader.token("/").await;
    let a = reader
        .send("POST", "/actions/nope", Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = reader
        .send("POST", "/runs/1/rerun", Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // An operator: the runs and the buttons, each POST only with its token.
    let mut operator = Browser::new(&app);
    operator.sign_in(&f.operator).await;
    let a = operator.get("/runs").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("href=\"/runs/1\""), "{}", a.body);
    let a = operator.get("/runs/1").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("data-state=\"succeeded\""), "{}", a.body);
    assert!(!a.body.contains("hx-trigger"), "an ended run does not poll");
    let a = operator.get("/assets/weather").await;
    assert!(a.body.contains("<table class=\"rows\""), "{}", a.body);
    let a = operator.send("POST", "/actions/nope", Some(&[])).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no token");
    let a = operator
        .send("POST", "/actions/nope", Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "another session's token");
    let own = operator.token("/").await;
    let a = operator
        .send("POST", "/actions/nope", Some(&[("csrf", &own)]))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(a.body.contains("no action `nope`"), "{}", a.body);
    assert_eq!(
        f.ws.metadata.runs(10).expect("runs").len(),
        1,
        "no run was started"
    );

    // A revoked key is signed out at the next request.
    let gone =
        f.ws.metadata
            .create_key(Role::Operator, "soon")
            .expect("key");
    let mut leaving = Browser::new(&app);
    leaving.sign_in(&gone.secret).await;
    assert_eq!(leaving.get("/runs").await.status, StatusCode::OK);
    f.ws.metadata.revoke_key("soon").expect("revoke");
    let a = leaving.get("/runs").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);

    // Signing out ends the session.
    let own = operator.token("/").await;
    let a = operator
        .send("POST", "/sign-out", Some(&[("csrf", &own)]))
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(operator.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn without_keys_the_pages_are_open_on_loopback_and_still_need_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[project]\nname = \"open\"\n\n[sources.readings]\npush = { key = [\"station\"] }\ncolumns = { station = \"string\" }\n\n[actions.all]\nlabel = \"Everything\"\n",
    )
    .expect("project");
    let project = sluice_project::load(dir.path(), None).expect("project compiles");
    let ws = Arc::new(Workspace::open(project).expect("workspace"));
    let app = app(&ws, true);
    let mut b = Browser::new(&app);
    let a = b.get("/").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains(">Everything</button>"), "{}", a.body);
    let a = b.send("POST", "/actions/all", Some(&[])).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(ws.metadata.runs(10).expect("runs").is_empty());
    let csrf = b.token("/").await;
    let a = b
        .send("POST", "/actions/all", Some(&[("csrf", &csrf)]))
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let run = a.location.expect("the run's page");
    assert!(run.starts_with("/runs/"), "{run}");
}

#[tokio::test]
async fn an_operator_backfills_a_range_of_partitions_from_the_asset_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from("day,station,temp\n");
    for d in 1..=5 {
        for s in ["a", "b"] {
            csv.push_str(&format!("2024-01-0{d},{s},{d}.5\n"));
        }
    }
    std::fs::write(dir.path().join("readings.csv"), csv).expect("csv");
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[project]\nname = \"parts\"\n\n[sources.readings]\npath = \"readings.csv\"\ncolumns = { day = \"date\" }\npartitioned = { by = \"day\", column = \"day\", start = \"2024-01-01\", end = \"2024-01-05\" }\n",
    )
    .expect("project");
    let project = sluice_project::load(dir.path(), None).expect("project compiles");
    let ws = Arc::new(Workspace::open(project).expect("workspace"));
    let app = app(&ws, true);
    let mut b = Browser::new(&app);
    let page = b.get("/assets/readings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("/assets/readings/backfill"),
        "{}",
        page.body
    );
    let csrf = b.token("/assets/readings").await;
    let a = b
        .send(
            "POST",
            "/assets/readings/backfill",
            Some(&[("from", "2024-01-02"), ("to", "2024-01-03")]),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "no token");
    let a = b
        .send(
            "POST",
            "/assets/readings/backfill",
            Some(&[
                ("csrf", &csrf),
                ("from", "2024-02-30"),
                ("to", "2024-01-03"),
            ]),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body.contains("2024-02-30"), "{}", a.body);
    let a = b
        .send(
            "POST",
            "/assets/readings/backfill",
            Some(&[
                ("csrf", &csrf),
                ("from", "2024-01-02"),
                ("to", "2024-01-03"),
            ]),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let run: i64 = a
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/runs/"))
        .and_then(|id| id.parse().ok())
        .expect("the run's page");
    for _ in 0..600 {
        let r = ws.metadata.run(run).expect("run").expect("recorded");
        if r.finished_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let built: Vec<String> = sluice_runner::partition_status(&ws, "readings")
        .await
        .expect("partitions")
        .into_iter()
        .filter(|p| p.state == "built")
        .map(|p| p.partition)
        .collect();
    assert_eq!(built, ["2024-01-02", "2024-01-03"]);
}
