//! Exports to Redis, against the real server on 127.0.0.1:6379: the keys under
//! the version `{prefix}current` points at equal the asset after each run
//! (hashes and JSON strings), with their `ttl`; the previous version expires
//! after the grace period; a reader following the read protocol during a
//! refresh only ever sees one run's rows; a deleted pointer makes the export
//! stale; a password in the URL is in no error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::Commands;

use crate::common::*;
use crate::db_exports::unique;

const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// A connection of the test's own; without the server the test fails under
/// `CI=true` and is skipped (with the reason printed) otherwise.
fn connect() -> Option<redis::Connection> {
    let connected = redis::Client::open(REDIS_URL).and_then(|c| c.get_connection());
    match connected {
        Ok(c) => Some(c),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: no Redis at {REDIS_URL}: {e}");
            None
        }
        Err(e) => panic!("Redis at {REDIS_URL} is needed under CI=true: {e}"),
    }
}

/// Every key under `pattern`.
fn keys(con: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let iter: redis::Iter<'_, String> = con.scan_match(pattern).expect("scan");
    let mut keys: Vec<String> = iter.map(|k| k.expect("key")).collect();
    keys.sort();
    keys
}

/// Deletes the test's keys when it ends, passed or not.
struct DropKeys(String);

impl Drop for DropKeys {
    fn drop(&mut self) {
        if let Some(mut con) = connect() {
            for k in keys(&mut con, &format!("{}*", self.0)) {
                let _: Result<(), _> = con.del(&k);
            }
        }
    }
}

fn sluice_redis(p: &std::path::Path, args: &[&str]) -> std::process::Output {
    sluice_cmd(p)
        .args(args)
        .env("SLUICE_IT_REDIS_URL", REDIS_URL)
        .output()
        .expect("sluice runs")
}

fn ok_redis(p: &std::path::Path, args: &[&str]) -> String {
    let o = sluice_redis(p, args);
    assert!(
        o.status.success(),
        "sluice {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn project_toml(prefix: &str) -> String {
    format!(
        r#"
[project]
name = "redis_exports"

[sources.users]
path = "users.csv"

[exports.users_hash]
from = "users"
key = ["team", "id"]
redis = {{ url = "${{SLUICE_IT_REDIS_URL}}", key = "{prefix}h:{{id}}", ttl = "1d" }}

[exports.users_json]
from = "users"
key = ["team", "id"]
redis = {{ url = "${{SLUICE_IT_REDIS_URL}}", key = "{prefix}j:{{id}}:profile", format = "json" }}
"#
    )
}

/// The hashes under the version the pointer names, by key without the version.
fn hashes(con: &mut redis::Connection, prefix: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let current: String = con
        .get(format!("{prefix}current"))
        .expect("the pointer is set");
    assert!(current.starts_with(prefix), "{current}");
    keys(con, &format!("{current}*"))
        .into_iter()
        .map(|k| {
            let fields: BTreeMap<String, String> = con.hgetall(&k).expect("hash");
            (k[current.len()..].to_string(), fields)
        })
        .collect()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_current_version_holds_exactly_the_assets_rows_as_hashes_and_json() {
    let Some(mut con) = connect() else { return };
    let prefix = format!("{}:", unique("redis"));
    let _drop = DropKeys(prefix.clone());
    let dir = project(&[
        ("sluice.toml", project_toml(&prefix).as_bytes()),
        (
            "users.csv",
            "team,id,name,score\nred,1,Zoë,9.5\nred,2,Bo,\nblue,1,Ünï ☃,7\n".as_bytes(),
        ),
    ]);
    let p = dir.path();
    ok_redis(p, &["run"]);
    let h = format!("{prefix}h:");
    assert_eq!(
        hashes(&mut con, &h),
        BTreeMap::from([
            (
                "blue:1".to_string(),
                fields(&[("name", "Ünï ☃"), ("score", "7.0")])
            ),
            (
                "red:1".to_string(),
                fields(&[("name", "Zoë"), ("score", "9.5")])
            ),
            // A null column is no field.
            ("red:2".to_string(), fields(&[("name", "Bo")])),
        ])
    );
    let first: String = con.get(format!("{h}current")).expect("pointer");
    let ttl: i64 = con.ttl(format!("{first}red:1")).expect("ttl");
    assert!(ttl > 0 && ttl <= 86_400, "ttl {ttl}");
    let ttl: i64 = con.ttl(format!("{h}current")).expect("ttl");
    assert!(ttl > 0 && ttl <= 86_400, "pointer ttl {ttl}");

    let j = format!("{prefix}j:");
    let current: String = con.get(format!("{j}current")).expect("pointer");
    let json: String = con
        .get(format!("{current}blue:1:profile"))
        .expect("json row");
    let row: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(row, serde_json::json!({"name": "Ünï ☃", "score": 7.0}));
    let json: String = con
        .get(format!("{current}red:2:profile"))
        .expect("json row");
    let row: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(row, serde_json::json!({"name": "Bo", "score": null}));
    assert_eq!(keys(&mut con, &format!("{current}*")).len(), 3);
    // Without `ttl`, the keys live on.
    let ttl: i64 = con.ttl(format!("{current}blue:1:profile")).expect("ttl");
    assert_eq!(ttl, -1);

    // Run 2: a row gone, one changed, one new.
    std::fs::write(
        p.join("users.csv"),
        "team,id,name,score\nred,1,Zoë,10\nblue,3,Cy,1.25\n",
    )
    .expect("write");
    ok_redis(p, &["run"]);
    assert_eq!(
        hashes(&mut con, &h),
        BTreeMap::from([
            (
                "blue:3".to_string(),
                fields(&[("name", "Cy"), ("score", "1.25")])
            ),
            (
                "red:1".to_string(),
                fields(&[("name", "Zoë"), ("score", "10.0")])
            ),
        ])
    );
    // The previous version is left to expire after the grace period.
    let old_ttl: i64 = con.ttl(format!("{first}red:2")).expect("ttl");
    assert!(
        old_ttl > 0 && old_ttl <= 60,
        "the old version's ttl is {old_ttl}"
    );

    // Nothing changed: up to date. The pointer deleted: stale, and written again.
    let (_, summary) = run_json_redis(p);
    assert_eq!(
        asset(&summary, "users_hash")["status"],
        "up_to_date",
        "{summary}"
    );
    let _: () = con.del(format!("{h}current")).expect("del");
    let status = ok_redis(p, &["status", "--json"]);
    assert!(status.contains("is missing"), "{status}");
    let (_, summary) = run_json_redis(p);
    assert_eq!(
        asset(&summary, "users_hash")["status"],
        "built",
        "{summary}"
    );
    assert_eq!(hashes(&mut con, &h).len(), 2);
}

fn run_json_redis(p: &std::path::Path) -> (bool, serde_json::Value) {
    let o = sluice_redis(p, &["run", "--json"]);
    let v = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", stdout(&o), stderr(&o)));
    (o.status.success(), v)
}

#[test]
fn repeated_or_missing_keys_are_refused_with_the_row() {
    if connect().is_none() {
        return;
    }
    let prefix = format!("{}:", unique("redis_dup"));
    let _drop = DropKeys(prefix.clone());
    let toml = format!(
        r#"
[project]
name = "redis_dup"

[sources.users]
path = "users.csv"

[exports.by_id]
from = "users"
key = "id"
redis = {{ url = "${{SLUICE_IT_REDIS_URL}}", key = "{prefix}{{id}}" }}

[exports.by_team]
from = "users"
key = "team"
redis = {{ url = "${{SLUICE_IT_REDIS_URL}}", key = "{prefix}t:{{id}}" }}
"#
    );
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        (
            "users.csv",
            "team,id,name\nred,1,A\nblue,1,B\n,2,C\n".as_bytes(),
        ),
    ]);
    let (ok, summary) = run_json_redis(dir.path());
    assert!(!ok);
    let e = asset(&summary, "by_id")["error"]
        .as_str()
        .unwrap_or_default();
    assert!(e.contains("row 2 repeats the key `id`"), "{e}");
    let e = asset(&summary, "by_team")["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        e.contains("row 3 has no value in the key column `team`"),
        "{e}"
    );
    // Nothing was published: no pointer.
    let mut con = connect().expect("redis");
    let pointer: Option<String> = con.get(format!("{prefix}current")).expect("get");
    assert_eq!(pointer, None);
}

fn gen_csv(n: usize, generation: u32) -> String {
    let mut csv = String::from("id,generation\n");
    for i in 0..n {
        csv.push_str(&format!("{i},{generation}\n"));
    }
    csv
}

#[test]
fn a_reader_following_the_protocol_never_sees_a_mix_of_two_runs() {
    let Some(_con) = connect() else { return };
    let prefix = format!("{}:", unique("redis_poll"));
    let _drop = DropKeys(prefix.clone());
    let toml = format!(
        r#"
[project]
name = "redis_poll"

[sources.rows]
path = "rows.csv"

[exports.rows_redis]
from = "rows"
key = "id"
redis = {{ url = "${{SLUICE_IT_REDIS_URL}}", key = "{prefix}{{id}}", format = "json" }}
"#
    );
    let n = 30_000;
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("rows.csv", gen_csv(n, 1).as_bytes()),
    ]);
    let p = dir.path();
    ok_redis(p, &["run"]);
    std::fs::write(p.join("rows.csv"), gen_csv(n, 2)).expect("write");

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let prefix = prefix.clone();
        std::thread::spawn(move || {
            let mut con = connect().expect("the poller connects");
            let ids: Vec<usize> = (0..n).step_by(97).collect();
            let mut seen: Vec<Result<u64, String>> = vec![];
            loop {
                let done = stop.load(Ordering::SeqCst);
                // The read protocol: the pointer, then the keys under it.
                let current: String = con.get(format!("{prefix}current")).expect("pointer");
                let names: Vec<String> = ids.iter().map(|i| format!("{current}{i}")).collect();
                let values: Vec<Option<String>> = con.mget(&names).expect("mget");
                let gens: std::collections::BTreeSet<Option<u64>> = values
                    .iter()
                    .map(|v| {
                        v.as_deref()
                            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
                            .and_then(|v| v["generation"].as_u64())
                    })
                    .collect();
                seen.push(match gens.into_iter().collect::<Vec<_>>().as_slice() {
                    [Some(g)] => Ok(*g),
                    other => Err(format!("under {current}: {other:?}")),
                });
                if done {
                    return seen;
                }
            }
        })
    };
    ok_redis(p, &["run"]);
    stop.store(true, Ordering::SeqCst);
    let seen = poller.join().expect("poller");
    let mut counts = (0, 0);
    for (i, s) in seen.iter().enumerate() {
        match s {
            Ok(1) => counts.0 += 1,
            Ok(2) => counts.1 += 1,
            other => panic!("poll {i} saw {other:?}: not one run's rows"),
        }
    }
    assert!(counts.0 > 0 && counts.1 > 0, "{counts:?}");
    println!(
        "polls during the refresh: {} of run 1, {} of run 2",
        counts.0, counts.1
    );
}

#[test]
fn a_redis_password_is_in_no_error() {
    let Some(_con) = connect() else { return };
    let secret = "R3disS3cret-0815";
    let prefix = format!("{}:", unique("redis_secret"));
    let _drop = DropKeys(prefix.clone());
    let toml = format!(
        r#"
[project]
name = "redis_secret"

[sources.users]
path = "users.csv"

[exports.wrong_password]
from = "users"
key = "id"
redis = {{ url = "redis://:${{SLUICE_IT_REDIS_PASSWORD}}@127.0.0.1:6379/0", key = "{prefix}{{id}}" }}

[exports.unreachable]
from = "users"
key = "id"
redis = {{ url = "redis://:${{SLUICE_IT_REDIS_PASSWORD}}@127.0.0.1:1/0", key = "{prefix}{{id}}" }}
"#
    );
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("users.csv", b"id,name\n1,Ann\n"),
    ]);
    let p = dir.path();
    let o = sluice_cmd(p)
        .args(["run", "--json"])
        .env("SLUICE_IT_REDIS_PASSWORD", secret)
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let wrong = asset(&summary, "wrong_password");
    let e = wrong["error"].as_str().unwrap_or_default();
    assert!(e.contains("Redis at 127.0.0.1:6379/0"), "{e}");
    assert!(
        !e.contains("the run may retry it"),
        "authentication is permanent: {e}"
    );
    let unreachable = asset(&summary, "unreachable");
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Redis at 127.0.0.1:1/0"),
        "{unreachable}"
    );
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the run may retry it"),
        "{unreachable}"
    );
    let shown = stdout(&sluice(p, &["runs", "show", "1"]));
    let mut records = String::new();
    for name in ["sluice.db", "sluice.db-wal"] {
        if let Ok(bytes) = std::fs::read(p.join(".sluice").join(name)) {
            records.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let out = format!("{}{}", stdout(&o), stderr(&o));
    for (what, text) in [
        ("output", &out),
        ("runs show", &shown),
        ("run log", &records),
    ] {
        assert!(
            !text.contains(secret),
            "the password is in the {what}:\n{text}"
        );
    }
}
