//! HTTP sources through the real binary, against a server on 127.0.0.1:0:
//! every paging style, a 429 waited out, 500s retried then failing with the
//! URL, a malformed page named by URL, page and position, a timeout, an
//! unchanged page skipped by its ETag, a change of parse options parsed from
//! the raw zone without fetching, and no secret in any error, log or record.

use serde_json::{Value, json};

use crate::common::{asset, ok, run_json, sluice_cmd, stderr, stdout};
use crate::web::{Req, Resp, serve};

/// A project whose source `users` is `source` (TOML under `[sources.users]`).
fn project(source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!("[project]\nname = \"net\"\n\n[sources.users]\n{source}"),
    )
    .expect("write");
    dir
}

/// 23 users, as an API would page them.
fn users() -> Vec<Value> {
    (1..=23)
        .map(|i| json!({"id": i, "name": format!("user {i}"), "score": i as f64 / 4.0}))
        .collect()
}

/// The rows of `SELECT ... FROM users ORDER BY id` as JSON.
fn rows(dir: &std::path::Path, sql: &str) -> Vec<Value> {
    let out = ok(dir, &["query", sql, "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn ids(dir: &std::path::Path) -> Vec<i64> {
    rows(dir, "SELECT id FROM users ORDER BY id")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

fn error_of(summary: &Value) -> String {
    asset(summary, "users")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn page_number_paging_reads_until_a_short_page() {
    let web = serve(|r: &Req| {
        let page: usize = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let size: usize = r
            .param("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(10);
        let items: Vec<Value> = users()
            .into_iter()
            .skip((page - 1) * size)
            .take(size)
            .collect();
        Resp::json(json!({"data": {"items": items}}).to_string())
    });
    let dir = project(&format!(
        "records = \"$.data.items\"\n[sources.users.http]\nurl = \"{}\"\n\
         [sources.users.http.paging]\nstyle = \"page\"\nlimit_param = \"per_page\"\nlimit = 10\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(ids(dir.path()), (1..=23).collect::<Vec<_>>());
    // 10 + 10 + 3: the short third page is the last.
    assert_eq!(web.count("/users"), 3);
    assert!(web.seen().iter().all(|r| r.method == "GET"));
    let first = rows(dir.path(), "SELECT name, score FROM users WHERE id = 2");
    assert_eq!(first, vec![json!({"name": "user 2", "score": 0.5})]);
}

#[test]
fn offset_paging_with_concurrency_stops_at_the_empty_page_without_duplicates() {
    let web = serve(|r: &Req| {
        let offset: usize = r.param("offset").and_then(|p| p.parse().ok()).unwrap_or(0);
        let limit: usize = r.param("limit").and_then(|p| p.parse().ok()).unwrap_or(10);
        let items: Vec<Value> = users().into_iter().skip(offset).take(limit).collect();
        Resp::json(Value::Array(items).to_string())
    });
    // 23 records in pages of 23 would end on a full page: an empty page ends it.
    let dir = project(&format!(
        "[sources.users.http]\nurl = \"{}\"\nconcurrency = 3\n\
         [sources.users.http.paging]\nstyle = \"offset\"\nlimit = 23\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(ids(dir.path()), (1..=23).collect::<Vec<_>>());
}

#[test]
fn cursor_paging_follows_the_response_s_cursor_until_it_is_null() {
    let web = serve(|r: &Req| {
        let at: usize = r.param("after").and_then(|p| p.parse().ok()).unwrap_or(0);
        let items: Vec<Value> = users().into_iter().skip(at).take(5).collect();
        let next = (at + 5 < 23).then(|| (at + 5).to_string());
        Resp::json(json!({"results": items, "meta": {"next": next}}).to_string())
    });
    let dir = project(&format!(
        "records = \"results\"\n[sources.users.http]\nurl = \"{}\"\n\
         [sources.users.http.paging]\nstyle = \"cursor\"\nparam = \"after\"\ncursor = \"$.meta.next\"\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(ids(dir.path()), (1..=23).collect::<Vec<_>>());
    assert_eq!(web.count("/users"), 5);
}

#[test]
fn link_header_paging_of_ndjson_pages() {
    let web = serve(|r: &Req| {
        let page: usize = r.param("p").and_then(|p| p.parse().ok()).unwrap_or(1);
        let lines: Vec<String> = users()
            .into_iter()
            .skip((page - 1) * 8)
            .take(8)
            .map(|u| u.to_string())
            .collect();
        let mut resp = Resp::new(200, lines.join("\n") + "\n");
        if page * 8 < 23 {
            resp = resp.header("link", &format!("</users?p={}>; rel=\"next\"", page + 1));
        }
        resp
    });
    let dir = project(&format!(
        "format = \"ndjson\"\n[sources.users.http]\nurl = \"{}\"\n\
         [sources.users.http.paging]\nstyle = \"link\"\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(ids(dir.path()), (1..=23).collect::<Vec<_>>());
    assert_eq!(web.count("/users"), 3);
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let web = serve(move |_r: &Req| {
        if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Resp::new(429, "slow down").header("retry-after", "1")
        } else {
            Resp::json(json!([{"id": 1}]).to_string())
        }
    });
    let dir = project(&format!(
        "[sources.users.http]\nurl = \"{}\"\nbackoff = \"10ms\"\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(ids(dir.path()), vec![1]);
    assert_eq!(web.count("/users"), 2, "one 429, then the answer");
}

#[test]
fn server_errors_are_retried_then_fail_naming_the_url() {
    let web = serve(|_r: &Req| Resp::new(500, "boom"));
    let dir = project(&format!(
        "[sources.users.http]\nurl = \"{}\"\nretries = 2\nbackoff = \"10ms\"\n",
        web.url("/users?team=a")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(!ok_);
    let err = error_of(&summary);
    assert!(err.contains(&web.url("/users?team=a")), "{err}");
    assert!(
        err.contains("HTTP 500") && err.contains("after 3 attempts"),
        "{err}"
    );
    assert_eq!(web.count("/users"), 3);
    // 5xx after retries is transient: the runner's own retries may try again.
    assert_eq!(asset(&summary, "users")["status"], "failed");
}

#[test]
fn a_malformed_page_is_named_by_url_page_and_position() {
    let web = serve(|r: &Req| match r.param("page").as_deref() {
        Some("2") => Resp::json("{\"items\": [\n  {\"id\": 3},\n  {\"id\": 4,, }\n]}"),
        _ => Resp::json(json!({"items": [{"id": 1}, {"id": 2}]}).to_string()),
    });
    let dir = project(&format!(
        "records = \"items\"\n[sources.users.http]\nurl = \"{}\"\n\
         [sources.users.http.paging]\nstyle = \"page\"\nlimit = 2\nlimit_param = \"n\"\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(!ok_);
    let err = error_of(&summary);
    assert!(err.contains(&web.url("/users?n=2&page=2")), "{err}");
    assert!(
        regex::Regex::new(r"\(page 2, line 3, column \d+\): the page is not valid JSON")
            .expect("regex")
            .is_match(&err),
        "{err}"
    );
    // The page is in the raw zone, as fetched, for whoever looks into it.
    let listed = ok(dir.path(), &["raw", "ls", "users", "--json"]);
    let manifests: Vec<Value> = serde_json::from_str(&listed).expect("json");
    assert_eq!(manifests[0]["complete"], false);
    assert_eq!(manifests[0]["records"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_request_that_times_out_fails_naming_the_url() {
    let web = serve(|_r: &Req| {
        let mut r = Resp::json("[]");
        r.delay = std::time::Duration::from_secs(3);
        r
    });
    let dir = project(&format!(
        "[sources.users.http]\nurl = \"{}\"\ntimeout = \"200ms\"\nretries = 1\nbackoff = \"10ms\"\n",
        web.url("/slow")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(!ok_);
    let err = error_of(&summary);
    assert!(err.contains(&web.url("/slow")), "{err}");
    assert!(
        err.contains("did not answer in time") && err.contains("after 2 attempts"),
        "{err}"
    );
}

#[test]
fn an_unchanged_page_is_skipped_by_its_etag_and_parse_changes_refetch_nothing() {
    let web = serve(|r: &Req| {
        if r.header("if-none-match") == Some("\"v1\"") {
            return Resp::new(304, "");
        }
        Resp::json(json!([{"id": 1, "at": "2024-05-01T10:00:00Z"}, {"id": 2, "at": "2024-05-02T10:00:00Z"}]).to_string())
            .header("etag", "\"v1\"")
    });
    let toml = |columns: &str| {
        format!(
            "{columns}[sources.users.http]\nurl = \"{}\"\n",
            web.url("/users")
        )
    };
    let dir = project(&toml(""));
    let (ok1, s1) = run_json(dir.path(), &[]);
    assert!(ok1, "{s1}");
    assert_eq!(asset(&s1, "users")["status"], "built");
    let (ok2, s2) = run_json(dir.path(), &[]);
    assert!(ok2, "{s2}");
    assert_eq!(asset(&s2, "users")["status"], "up_to_date", "{s2}");
    let seen = web.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""));
    let listed: Vec<Value> =
        serde_json::from_str(&ok(dir.path(), &["raw", "ls", "users", "--json"])).expect("json");
    assert_eq!(listed[0]["records"][0]["status"], 304);
    assert_eq!(
        listed[0]["records"][0]["file"],
        listed[1]["records"][0]["file"]
    );
    let table = ok(dir.path(), &["raw", "ls", "users"]);
    assert!(
        table.contains("304") && table.contains(&web.url("/users")),
        "{table}"
    );

    // Only a parse option changes: the stored payload is parsed again, and
    // nothing is fetched.
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "[project]\nname = \"net\"\n\n[sources.users]\n{}",
            toml("columns = { at = \"timestamp\" }\n")
        ),
    )
    .expect("write");
    let (ok3, s3) = run_json(dir.path(), &[]);
    assert!(ok3, "{s3}");
    assert_eq!(asset(&s3, "users")["status"], "built");
    assert_eq!(web.seen().len(), 2, "re-parsed from the raw zone");
    let typed = rows(
        dir.path(),
        "SELECT id FROM users WHERE at > TIMESTAMP '2024-05-01T12:00:00Z'",
    );
    assert_eq!(typed, vec![json!({"id": 2})]);
}

#[test]
fn no_secret_appears_in_errors_logs_or_the_raw_zone() {
    const TOKEN: &str = "tok-9f8e7d-secret";
    const KEY: &str = "key-1234-secret";
    const PASSWORD: &str = "pw-5678-secret";
    let web = serve(move |r: &Req| {
        let auth = r.header("authorization").unwrap_or_default().to_string();
        if r.path() == "/bearer" && auth == format!("Bearer {TOKEN}") {
            // An API that echoes what it was sent in its refusal.
            return Resp::new(403, format!("token {TOKEN} may not read; key {KEY}"));
        }
        if r.path() == "/basic" && auth.starts_with("Basic ") {
            return Resp::json("[{\"id\": 1}]");
        }
        Resp::new(401, "who are you")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!(
            "[project]\nname = \"net\"\n\n\
             [sources.users]\nhttp = {{ url = \"{}\", params = {{ api_key = \"${{NET_KEY}}\" }}, auth = {{ bearer = \"${{NET_TOKEN}}\" }} }}\n\n\
             [sources.admins]\nhttp = {{ url = \"http://me:${{NET_PASSWORD}}@127.0.0.1:{}/basic?k=${{NET_KEY}}\", retries = 0 }}\n",
            web.url("/bearer"),
            web.port
        ),
    )
    .expect("write");
    let o = sluice_cmd(dir.path())
        .args(["run", "--json"])
        .env("NET_TOKEN", TOKEN)
        .env("NET_KEY", KEY)
        .env("NET_PASSWORD", PASSWORD)
        .env("SLUICE_LOG", "debug")
        .output()
        .expect("runs");
    let out = stdout(&o) + &stderr(&o);
    let summary: Value = serde_json::from_str(&stdout(&o)).expect("json summary");
    let err = error_of(&summary);
    assert!(
        err.contains("HTTP 403") && err.contains("api_key=***"),
        "{err}"
    );
    assert_eq!(asset(&summary, "admins")["status"], "built", "{summary}");
    let runs = ok(dir.path(), &["runs", "show", "1"]);
    let raw = ok(dir.path(), &["raw", "ls", "admins", "--json"])
        + &ok(dir.path(), &["raw", "ls", "users", "--json"]);
    for secret in [TOKEN, KEY, PASSWORD] {
        for (what, text) in [("output", &out), ("run log", &runs), ("raw zone", &raw)] {
            assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
        }
    }
    assert!(raw.contains("k=***"), "{raw}");
}

/// A cursor-paged API read incrementally: the first run reads everything and
/// keeps the greatest `updated_at` as the watermark; the next asks the API
/// for what changed since the watermark less the lookback (`since_param`),
/// and merges it by key: an updated user changes, a new one is added, and
/// nothing is duplicated.
#[test]
fn a_cursor_paged_api_is_read_incrementally_from_its_watermark() {
    let data = std::sync::Arc::new(std::sync::Mutex::new(
        (1..=23)
            .map(|i| {
                json!({"id": i, "name": format!("user {i}"),
                       "updated_at": format!("2024-03-01T{:02}:00:00Z", i % 24)})
            })
            .collect::<Vec<Value>>(),
    ));
    let served = data.clone();
    let web = serve(move |r: &Req| {
        let since = r.param("since");
        let mut items: Vec<Value> = served
            .lock()
            .expect("data")
            .iter()
            .filter(|u| {
                since
                    .as_deref()
                    .is_none_or(|s| u["updated_at"].as_str().unwrap_or_default() >= s)
            })
            .cloned()
            .collect();
        items.sort_by_key(|u| u["id"].as_i64());
        let at: usize = r.param("after").and_then(|p| p.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = items.iter().skip(at).take(5).cloned().collect();
        let next = (at + 5 < items.len()).then(|| (at + 5).to_string());
        Resp::json(json!({"results": page, "next": next}).to_string())
    });
    let dir = project(&format!(
        "records = \"results\"\ncolumns = {{ updated_at = \"timestamp\" }}\n\
         incremental = {{ column = \"updated_at\", key = [\"id\"], mode = \"merge\", lookback = \"1h\" }}\n\
         [sources.users.http]\nurl = \"{}\"\nsince_param = \"since\"\n\
         [sources.users.http.paging]\nstyle = \"cursor\"\nparam = \"after\"\ncursor = \"$.next\"\n",
        web.url("/users")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(ids(dir.path()), (1..=23).collect::<Vec<_>>());
    assert!(
        web.seen().iter().all(|r| r.param("since").is_none()),
        "the first load reads everything"
    );
    let first_requests = web.seen().len();

    // The API changes: user 5 is renamed at 23:30, user 24 arrives at 23:45.
    {
        let mut d = data.lock().expect("data");
        d[4] = json!({"id": 5, "name": "renamed", "updated_at": "2024-03-01T23:30:00Z"});
        d.push(json!({"id": 24, "name": "user 24", "updated_at": "2024-03-01T23:45:00Z"}));
    }
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    let later: Vec<Req> = web.seen().into_iter().skip(first_requests).collect();
    // The watermark was 23:00 (user 23); less the hour of lookback.
    assert!(
        later
            .iter()
            .all(|r| r.param("since").as_deref() == Some("2024-03-01T22:00:00Z")),
        "{later:?}"
    );
    // Users 22, 23, 5 and 24 changed since 22:00: one page.
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(ids(dir.path()), (1..=24).collect::<Vec<_>>());
    assert_eq!(
        rows(dir.path(), "SELECT name FROM users WHERE id = 5"),
        vec![json!({"name": "renamed"})]
    );
}

/// Events of 1–3 March 2024, four a day, as an API that answers a date range.
fn events_between(from: &str, to: &str) -> Vec<Value> {
    (1..=3)
        .flat_map(|d| (0..4).map(move |i| (d, i)))
        .map(|(d, i)| json!({"id": d * 10 + i, "day": format!("2024-03-{d:02}")}))
        .filter(|e| {
            let day = e["day"].as_str().unwrap_or_default();
            day >= from && day < to
        })
        .collect()
}

#[test]
fn a_partitioned_api_is_asked_for_each_partition_s_bounds() {
    let web = serve(|r: &Req| {
        let from = r.param("from").unwrap_or_default();
        let to = r.param("to").unwrap_or_default();
        let mut events = events_between(&from, &to);
        // The API also answers an event of another day: the partition keeps
        // only its own rows.
        events.push(json!({"id": 99, "day": "2024-02-28"}));
        Resp::json(json!({"events": events}).to_string())
    });
    let dir = project(&format!(
        "records = \"events\"\ncolumns = {{ day = \"date\" }}\n\
         partitioned = {{ by = \"day\", column = \"day\", start = \"2024-03-01\", end = \"2024-03-03\" }}\n\
         [sources.users.http]\nurl = \"{}\"\n\
         params = {{ from = \"{{start}}\", to = \"{{end}}\", stamp = \"{{start:%Y%m%d}}\" }}\n",
        web.url("/events/{start:%Y}")
    ));
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    // Each request as "path from to stamp".
    let mut asked: Vec<String> = web
        .seen()
        .iter()
        .map(|r| {
            let p = |name: &str| r.param(name).unwrap_or_else(|| "-".into());
            format!("{} {} {} {}", r.path(), p("from"), p("to"), p("stamp"))
        })
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            "/events/2024 2024-03-01 2024-03-02 20240301",
            "/events/2024 2024-03-02 2024-03-03 20240302",
            "/events/2024 2024-03-03 2024-03-04 20240303",
        ]
    );
    assert_eq!(
        ids(dir.path()),
        vec![10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33]
    );
    // Each partition's fetch has its own manifest in the run's raw folder.
    let listed: Value =
        serde_json::from_str(&ok(dir.path(), &["raw", "ls", "users", "--json"])).expect("json");
    let mut labels: Vec<&str> = listed
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["partition"].as_str())
        .collect();
    labels.sort_unstable();
    assert_eq!(labels, ["2024-03-01", "2024-03-02", "2024-03-03"]);

    // The days have ended: a second run keeps them and asks for nothing.
    let (ok_, summary) = run_json(dir.path(), &[]);
    assert!(ok_, "{summary}");
    assert_eq!(web.seen().len(), 3, "{:?}", web.seen());
}

#[test]
fn a_partition_that_has_not_ended_is_fetched_again_at_each_run() {
    let today = chrono::Utc::now().date_naive();
    let web = serve(move |r: &Req| {
        let n = r
            .param("n")
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        Resp::json(json!([{"id": n, "day": today.to_string()}]).to_string())
    });
    let dir = project(&format!(
        "columns = {{ day = \"date\" }}\n\
         partitioned = {{ by = \"day\", column = \"day\", start = \"{today}\" }}\n\
         [sources.users.http]\nurl = \"{}?day={{start}}\"\n",
        web.url("/today")
    ));
    for run in 1..=2 {
        let (ok_, summary) = run_json(dir.path(), &[]);
        assert!(ok_, "{summary}");
        assert_eq!(web.count("/today"), run, "today is still open: asked again");
    }
    let asked = web.seen();
    assert!(
        asked
            .iter()
            .all(|r| r.param("day").as_deref() == Some(today.to_string().as_str())),
        "{asked:?}"
    );
}

#[test]
fn a_bound_in_an_unpartitioned_source_is_refused_at_load() {
    let dir = project("[sources.users.http]\nurl = \"https://api.example.com/d/{start}\"\n");
    let o = sluice_cmd(dir.path())
        .args(["check"])
        .output()
        .expect("sluice runs");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("sluice.toml:") && err.contains("`http.url` holds `{start}`"),
        "{err}"
    );
    assert!(err.contains("partitioned = {"), "{err}");
}
