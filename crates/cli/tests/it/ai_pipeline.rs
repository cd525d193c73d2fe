//! `examples/ai-pipeline` end to end, as its README runs it: the events loaded
//! into PostgreSQL by its script, the profile API served by its script, three
//! runs of the real binary — the first load, a day added with corrections (an
//! incremental merge within the lookback), nothing new — and the features in
//! Redis. The example's table goes to a schema of the test's own and its keys
//! to a Redis database of their own, so a person running the example on this
//! machine is not disturbed.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use redis::Commands;

use crate::common::*;
use crate::databases::{pg, pg_url};
use crate::db_exports::unique;

/// Redis database 9, kept for this test.
const REDIS_URL: &str = "redis://127.0.0.1:6379/9";

/// The profile API, stopped when the test ends.
struct Api(Child);

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn redis_connection() -> Option<redis::Connection> {
    match redis::Client::open(REDIS_URL).and_then(|c| c.get_connection()) {
        Ok(c) => Some(c),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: no Redis at {REDIS_URL}: {e}");
            None
        }
        Err(e) => panic!("Redis at {REDIS_URL} is needed under CI=true: {e}"),
    }
}

#[test]
fn the_ai_pipeline_example_loads_validates_merges_and_exports_as_its_readme_says() {
    let Some(url) = pg_url() else { return };
    let Some(python) = python() else { return };
    let Some(mut redis) = redis_connection() else {
        return;
    };
    let _: () = redis::cmd("FLUSHDB").query(&mut redis).expect("flush");
    let schema = unique("sluice_it_ai");
    pg(&url, &format!("CREATE SCHEMA {schema}")).expect("schema");
    // The script writes `ai_events` unqualified: into the test's schema.
    let events_url = format!("{url}?options=-csearch_path%3D{schema}");

    let dir = example_copy("ai-pipeline");
    let p = dir.path();
    let port = free_port();
    let toml = std::fs::read_to_string(p.join("sluice.toml")).expect("toml");
    assert!(toml.contains("public.ai_events") && toml.contains("127.0.0.1:8765"));
    let toml = toml
        .replace("public.ai_events", &format!("{schema}.ai_events"))
        .replace("127.0.0.1:8765", &format!("127.0.0.1:{port}"));
    std::fs::write(p.join("sluice.toml"), toml).expect("write");

    let setup = |args: &[&str]| {
        let o = Command::new(&python)
            .arg("scripts/setup_events.py")
            .args(args)
            .current_dir(p)
            .env("PG_URL", &events_url)
            .output()
            .expect("the setup script runs");
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let out = setup(&[]);
    assert!(out.contains("200000 events"), "{out}");

    let _api = Api(Command::new(&python)
        .arg("scripts/profiles_api.py")
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(p)
        // Its access log: a line per page, of no use here.
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the profile API starts"));
    let up = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "the profile API did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let sluice_env = |args: &[&str]| {
        sluice_cmd(p)
            .args(args)
            .env("PG_URL", &url)
            .env("REDIS_URL", REDIS_URL)
            .output()
            .expect("sluice runs")
    };
    let run = || {
        let o = sluice_env(&["run", "--json"]);
        let text = stdout(&o);
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("no JSON ({e}):\n{text}\n{}", stderr(&o)));
        assert!(o.status.success(), "{v}\n{}", stderr(&o));
        v
    };
    let o = sluice_env(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("9 assets"), "{}", stdout(&o));

    // The first run reads everything: the README's table.
    let first = run();
    let counts = |s: &serde_json::Value, name: &str| {
        let a = asset(s, name);
        (
            a["rows_in"].as_u64().unwrap_or_default(),
            a["rows_out"].as_u64().unwrap_or_default(),
            a["rows_quarantined"].as_u64().unwrap_or_default(),
        )
    };
    assert_eq!(counts(&first, "events"), (200_000, 199_930, 70), "{first}");
    assert_eq!(counts(&first, "profiles"), (1000, 990, 10), "{first}");
    assert_eq!(counts(&first, "promotions"), (8, 8, 0), "{first}");
    assert_eq!(counts(&first, "user_features_redis").1, 1000, "{first}");
    assert_eq!(counts(&first, "user_profiles_redis").1, 990, "{first}");
    let rules = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT rule, count(*) AS n FROM events__quarantine GROUP BY rule ORDER BY rule",
        ],
    );
    assert_eq!(
        rules.trim(),
        "rule,n\nmin,40\nmin_length,10\none_of,20",
        "{rules}"
    );

    // Redis: one hash per user under the version the pointer names, equal to
    // the online record.
    let prefix: String = redis.get("features:user:current").expect("pointer");
    let keys: Vec<String> = redis
        .scan_match::<_, String>(format!("{prefix}*"))
        .expect("scan")
        .map(|k| k.expect("key"))
        .collect();
    assert_eq!(keys.len(), 1000);
    let hash: std::collections::HashMap<String, String> =
        redis.hgetall(format!("{prefix}u0042")).expect("hash");
    assert!(!hash.contains_key("user_id"), "{hash:?}");
    let online = ok(p, &["get", "user_activity", "u0042", "--json"]);
    let online: serde_json::Value = serde_json::from_str(&online).expect("json");
    let record = online
        .get("features")
        .unwrap_or(&online)
        .get("event_count_7d")
        .map(|v| v.to_string())
        .expect("event_count_7d online");
    assert_eq!(hash.get("event_count_7d"), Some(&record), "{hash:?}");

    // A day more, and 25 purchases of the day before corrected: the
    // incremental read takes the new day and the two days before the
    // watermark, and merges by event_id.
    let out = setup(&["--more"]);
    assert!(out.contains("added 1440 events"), "{out}");
    let second = run();
    assert_eq!(counts(&second, "events"), (4321, 4318, 3), "{second}");
    assert_eq!(scalar(p, "SELECT count(*) FROM events"), 201_368);
    assert_eq!(
        asset(&second, "profiles")["status"],
        "up_to_date",
        "{second}"
    );
    assert_eq!(
        asset(&second, "promotions")["status"],
        "up_to_date",
        "{second}"
    );
    let newer: String = redis.get("features:user:current").expect("pointer");
    assert_ne!(newer, prefix, "the activity export was refreshed");

    // Nothing new: nothing is built.
    let third = run();
    assert_eq!(
        statuses(&third)
            .iter()
            .filter(|(_, s)| s == "built")
            .count(),
        0,
        "{third}"
    );
    pg(&url, &format!("DROP SCHEMA {schema} CASCADE")).expect("drop");
    let _: () = redis::cmd("FLUSHDB").query(&mut redis).expect("flush");
}
