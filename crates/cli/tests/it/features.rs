//! Feature views, the online store and training sets, end to end: values written
//! out by hand, the leakage guard, newer-wins in the online store, readers during
//! a materialization, and the flights example's training set.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::common::*;

const EVENTS: &str = "\
user,ts,amount,kind,cat
a,2026-01-09T00:00:00Z,30,buy,x
a,2026-01-01T00:00:00Z,10,buy,x
b,2026-01-02T00:00:00Z,5,buy,y
a,2026-01-10T00:00:00Z,40,view,x
a,2026-01-03T00:00:00Z,20,view,y
";

const PROJECT: &str = r#"
[project]
name = "features"

[sources.events]
path = "events.csv"

[features.rolling]
source = "events"
entity = "user"
timestamp = "ts"

[features.rolling.aggregates]
n_7d = { agg = "count", window = "7d" }
amount_7d = { agg = "sum", column = "amount", window = "7d" }
buys = { agg = "count", filter = "kind = 'buy'" }
last_amount = { agg = "last", column = "amount" }
cats_7d = { agg = "count_distinct", column = "cat", window = "7d" }

[features.latest]
source = "events"
entity = "user"
timestamp = "ts"
as_of = "newest"

[features.latest.aggregates]
total = { agg = "count" }
amount_total = { agg = "sum", column = "amount" }
amount_7d = { agg = "sum", column = "amount", window = "7d" }
cats = { agg = "count_distinct", column = "cat" }
cats_7d = { agg = "count_distinct", column = "cat", window = "7d" }
buy_cats = { agg = "count_distinct", column = "cat", filter = "kind = 'buy'" }

[features.latest.pivots.cat]
value = "amount"

[features.latest.derived]
mean_amount = "amount_total / total"
"#;

fn csv(p: &Path, sql: &str) -> String {
    ok(p, &["query", "--format", "csv", sql])
}

#[test]
fn declared_features_have_the_values_written_by_hand() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("events.csv", EVENTS.as_bytes()),
    ]);
    let p = dir.path();
    let (ok1, summary) = run_json(p, &[]);
    assert!(ok1, "{summary}");
    assert_eq!(asset(&summary, "rolling")["kind"], "features");
    assert_eq!(asset(&summary, "rolling")["online"]["entities"], 2);

    // As of each event: windows closed at both ends ([t - 7d, t]).
    assert_eq!(
        csv(
            p,
            "SELECT user, ts, n_7d, amount_7d, buys, last_amount, cats_7d FROM rolling ORDER BY user, ts"
        ),
        "user,ts,n_7d,amount_7d,buys,last_amount,cats_7d\n\
         a,2026-01-01T00:00:00Z,1,10,1,10,1\n\
         a,2026-01-03T00:00:00Z,2,30,1,20,2\n\
         a,2026-01-09T00:00:00Z,2,50,2,30,2\n\
         a,2026-01-10T00:00:00Z,3,90,2,40,2\n\
         b,2026-01-02T00:00:00Z,1,5,1,5,1\n"
    );
    // As of the newest event (2026-01-10), one row per entity; the pivot is
    // zero-filled; a window with no event is null; derived features follow.
    assert_eq!(
        csv(p, "SELECT * FROM latest ORDER BY user"),
        "user,ts,total,amount_total,amount_7d,cats,cats_7d,buy_cats,cat_amount_x,cat_count_x,cat_amount_y,cat_count_y,mean_amount\n\
         a,2026-01-10T00:00:00Z,4,100,90,2,2,1,80,3,20,1,25\n\
         b,2026-01-02T00:00:00Z,1,5,,1,0,1,0,0,5,1,5\n"
    );
    // Its rows are one per entity, and the online store holds each as it is.
    assert_eq!(asset(&summary, "latest")["online"]["entities"], 2);
    for (user, ts, total, amount_7d, cats_7d) in [
        ("a", "2026-01-10T00:00:00Z", 4, serde_json::json!(90), 2),
        ("b", "2026-01-02T00:00:00Z", 1, serde_json::Value::Null, 0),
    ] {
        let got: serde_json::Value =
            serde_json::from_str(&ok(p, &["get", "latest", user, "--json"])).expect("json");
        assert_eq!(got["event_timestamp"], ts, "{got}");
        assert_eq!(got["features"]["total"], total, "{got}");
        assert_eq!(got["features"]["amount_7d"], amount_7d, "{got}");
        assert_eq!(got["features"]["cats_7d"], cats_7d, "{got}");
    }

    // The online store answers each entity's windows as of a time: at a's
    // newest event they are its newest row's.
    let got: serde_json::Value = serde_json::from_str(&ok(
        p,
        &["get", "rolling", "a", "--as-of", "2026-01-10", "--json"],
    ))
    .expect("json");
    assert_eq!(got["event_timestamp"], "2026-01-10T00:00:00Z");
    assert_eq!(got["features"]["n_7d"], 3);
    assert_eq!(got["features"]["amount_7d"], 90);
    assert_eq!(got["entity"]["user"], "a");
    let missing = sluice(p, &["get", "rolling", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no record for nobody"),
        "{}",
        stderr(&missing)
    );
    let wrong = sluice(p, &["get", "rolling", "a", "b"]);
    assert!(
        stderr(&wrong).contains("keyed by user"),
        "{}",
        stderr(&wrong)
    );

    // A training set: the spine's rows in order, each with the features as of its time.
    let spine = p.join("spine.csv");
    std::fs::write(
        &spine,
        "user,at,label\n\
         a,2026-01-09T12:00:00Z,1\n\
         b,2026-01-01T00:00:00Z,0\n\
         c,2026-01-05T00:00:00Z,0\n\
         a,2026-01-03T00:00:00Z,1\n\
         ,2026-01-05T00:00:00Z,0\n\
         a,2026-02-01T00:00:00Z,0\n",
    )
    .expect("spine");
    let out = p.join("train.parquet");
    let text = ok(
        p,
        &[
            "training-set",
            "--spine",
            spine.to_str().expect("path"),
            "--features",
            "rolling:n_7d,rolling:last_amount,latest:total",
            "--output",
            out.to_str().expect("path"),
            "--json",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(summary["rows"], 6);
    let (names, rows) = parquet_rows(&out);
    assert_eq!(
        names,
        ["user", "at", "label", "n_7d", "last_amount", "total"]
    );
    let rows: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
    // The CSV reader keeps the spine's times without a zone; they are read as UTC.
    // `rolling` (no `as_of`) is computed at each row's time: a count over a window
    // without events is 0; `latest` (as of its newest event) is joined per row.
    assert_eq!(
        rows,
        [
            "a,2026-01-09T12:00:00,1,2,30,null", // latest's only row for a is at 01-10: after T
            "b,2026-01-01T00:00:00,0,0,null,null", // b's first event is later
            "c,2026-01-05T00:00:00,0,0,null,null", // absent entity
            "a,2026-01-03T00:00:00,1,2,20,null", // an event exactly at T counts
            "null,2026-01-05T00:00:00,0,0,null,null", // null key
            "a,2026-02-01T00:00:00,0,0,40,4",    // nothing in [T - 7d, T]; no ttl: the newest row
        ]
    );

    // The last row per entity, without a spine.
    let last = p.join("last.parquet");
    ok(
        p,
        &[
            "training-set",
            "--features",
            "rolling",
            "--last",
            "2",
            "--output",
            last.to_str().expect("path"),
        ],
    );
    let (_, rows) = parquet_rows(&last);
    let firsts: Vec<(String, String)> = rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(
        firsts,
        [
            ("a".into(), "2026-01-10T00:00:00Z".into()),
            ("a".into(), "2026-01-09T00:00:00Z".into()),
            ("b".into(), "2026-01-02T00:00:00Z".into()),
        ]
    );
}

#[test]
fn future_events_never_change_past_features_and_the_online_store_keeps_the_newest() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("events.csv", EVENTS.as_bytes()),
    ]);
    let p = dir.path();
    assert!(run_json(p, &[]).0);
    let past = "SELECT * FROM rolling WHERE ts <= '2026-01-10T00:00:00Z' ORDER BY user, ts";
    let before = csv(p, past);

    // Events after 2026-01-10, shuffled in among the old ones.
    let mut lines: Vec<&str> = EVENTS.lines().collect();
    let future = [
        "a,2026-01-11T00:00:00Z,1000,buy,z",
        "b,2026-01-10T00:00:01Z,7,view,x",
        "a,2026-03-01T00:00:00Z,5,buy,x",
    ];
    lines.insert(2, future[0]);
    lines.insert(4, future[1]);
    lines.push(future[2]);
    std::fs::write(p.join("events.csv"), lines.join("\n")).expect("write");
    let (ok2, second) = run_json(p, &[]);
    assert!(ok2, "{second}");
    assert_eq!(
        csv(p, past),
        before,
        "features at or before 01-10 read no later event"
    );
    let a: serde_json::Value =
        serde_json::from_str(&ok(p, &["get", "rolling", "a", "--json"])).expect("json");
    assert_eq!(a["event_timestamp"], "2026-03-01T00:00:00Z");

    // Drop a's newest events from the source: the online record is not replaced
    // by an older one.
    std::fs::write(p.join("events.csv"), EVENTS).expect("write");
    let (ok3, third) = run_json(p, &[]);
    assert!(ok3, "{third}");
    assert_eq!(
        asset(&third, "rolling")["online"]["kept_newer"],
        2,
        "{third}"
    );
    let a: serde_json::Value =
        serde_json::from_str(&ok(p, &["get", "rolling", "a", "--json"])).expect("json");
    assert_eq!(a["event_timestamp"], "2026-03-01T00:00:00Z");
}

/// Many entities whose every feature carries the run's tag.
fn tagged_events(users: usize, tag: u32, day: u32) -> String {
    let mut s = String::from("user,ts,tag\n");
    for u in 0..users {
        for h in 0..2 {
            s.push_str(&format!("u{u},2026-01-{day:02}T0{h}:00:00Z,{tag}\n"));
        }
    }
    s
}

const TAGGED: &str = r#"
[project]
name = "tagged"

[sources.events]
path = "events.csv"

[features.tags]
source = "events"
entity = "user"
timestamp = "ts"
as_of = "newest"

[features.tags.aggregates]
tag = { agg = "max", column = "tag" }
n = { agg = "count" }
"#;

#[test]
fn readers_see_the_old_set_or_the_new_set_during_a_materialization() {
    const USERS: usize = 20_000;
    let dir = project(&[
        ("sluice.toml", TAGGED.as_bytes()),
        ("events.csv", tagged_events(USERS, 1, 1).as_bytes()),
    ]);
    let p = dir.path().to_path_buf();
    assert!(run_json(&p, &[]).0);
    std::fs::write(p.join("events.csv"), tagged_events(USERS, 2, 2)).expect("write");

    let store = p.join(".sluice/online.redb");
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = vec![];
    for r in 0..3u64 {
        let (store, done, reads) = (store.clone(), done.clone(), reads.clone());
        readers.push(std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let mut i = r;
            loop {
                let finished = done.load(Ordering::SeqCst);
                // A new handle per round, as a separate reading process has.
                let reader = sluice_store::RedbOnlineStore::new(&store);
                use sluice_store::OnlineStore as _;
                let snap = reader.snapshot().expect("snapshot");
                let meta = snap.meta("tags").expect("meta").expect("view");
                let mut tags = std::collections::BTreeSet::new();
                for _ in 0..200 {
                    i = (i * 7919 + 13) % USERS as u64;
                    let key = format!("u{i}");
                    let rec = snap
                        .get("tags", &[key.as_str()])
                        .expect("read")
                        .expect("every user has a record");
                    tags.insert(rec.values["tag"].as_i64().expect("tag"));
                }
                assert_eq!(
                    tags.len(),
                    1,
                    "one snapshot mixes two materializations: {tags:?}"
                );
                let tag = *tags.iter().next().expect("tag");
                assert_eq!(
                    meta.version + 1,
                    tag as u64,
                    "the records match the snapshot's version"
                );
                seen.insert(tag);
                reads.fetch_add(1, Ordering::SeqCst);
                if finished {
                    return seen;
                }
            }
        }));
    }
    // `sluice get` from other processes at the same time.
    let getter = {
        let (p, done) = (p.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                let o = sluice(&p, &["get", "tags", "u7", "--json"]);
                assert!(o.status.success(), "sluice get failed: {}", stderr(&o));
                let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
                let tag = v["features"]["tag"].as_i64().expect("tag");
                assert!(tag == 1 || tag == 2);
                n += 1;
            }
            n
        })
    };
    let run = sluice_cmd(&p)
        .args(["run", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert!(run.status.success(), "{}", stderr(&run));
    done.store(true, Ordering::SeqCst);
    let mut seen = std::collections::BTreeSet::new();
    for r in readers {
        seen.extend(r.join().expect("a reader failed"));
    }
    let gets = getter.join().expect("a `sluice get` failed");
    assert!(reads.load(Ordering::SeqCst) > 3, "the readers ran");
    assert!(gets > 0);
    assert!(seen.contains(&2), "the new set became visible: {seen:?}");
}

#[test]
fn the_flights_example_builds_a_training_set() {
    let dir = flights_copy();
    let p = dir.path();
    let (ok1, summary) = run_json(p, &[]);
    assert!(ok1, "{summary}");
    let planes = scalar(p, "SELECT count(DISTINCT tailnum) FROM flight_events");
    assert_eq!(
        asset(&summary, "plane_delays")["online"]["entities"],
        planes
    );
    assert_eq!(asset(&summary, "carrier_origins")["online"]["entities"], 16);
    let spine_rows = scalar(p, "SELECT count(*) FROM flight_spine");
    let out = p.join("training.parquet");
    let text = ok(
        p,
        &[
            "training-set",
            "--spine",
            "flight_spine",
            "--features",
            "plane_delays,carrier_delays,carrier_origins,origin_weather",
            "--output",
            out.to_str().expect("path"),
            "--json",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(summary["rows"], spine_rows);
    let (names, rows) = parquet_rows(&out);
    assert_eq!(rows.len() as i64, spine_rows);
    assert_eq!(
        &names[..6],
        [
            "tailnum",
            "carrier",
            "origin",
            "dest",
            "scheduled_at",
            "late"
        ]
    );
    for f in [
        "plane_flights_30d",
        "carrier_late_share_30d",
        "origin_count_EWR_30d",
        "visib",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} in {names:?}");
    }
    // Spine order is kept: the training set is the spine's files, each in its
    // own row order, one after another (the files of a table written on
    // several cores have no order among themselves).
    let key = |names: &[String], rows: &[Vec<String>]| -> Vec<(String, String)> {
        let at = |n: &str| names.iter().position(|c| c == n).expect("column");
        let (t, f) = (at("tailnum"), at("flight_id"));
        rows.iter().map(|r| (r[t].clone(), r[f].clone())).collect()
    };
    let got = key(&names, &rows);
    let mut files: Vec<Vec<(String, String)>> =
        std::fs::read_dir(p.join(".sluice/tables/flight_spine"))
            .expect("spine table")
            .map(|e| e.expect("entry").path())
            .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
            .map(|f| {
                let (n, r) = parquet_rows(&f);
                key(&n, &r)
            })
            .collect();
    assert!(!files.is_empty());
    let mut at = 0;
    while at < got.len() {
        let next = files
            .iter()
            .position(|f| got[at..].starts_with(f))
            .unwrap_or_else(|| panic!("row {at} of the training set starts no file of the spine"));
        at += files.remove(next).len();
    }
    assert!(files.is_empty(), "every spine file is in the training set");
    // Most flights have a weather observation within 3 hours and a plane history.
    let col = |name: &str| names.iter().position(|n| n == name).expect("column");
    let filled =
        |c: usize| rows.iter().filter(|r| r[c] != "null").count() as f64 / rows.len() as f64;
    assert!(filled(col("visib")) > 0.95, "{}", filled(col("visib")));
    assert!(filled(col("plane_flights_90d")) > 0.9);
    // The online store answers for a plane, its windows read as of the end of
    // the data (read now, years later, they would be empty).
    let plane: serde_json::Value = serde_json::from_str(&ok(
        p,
        &[
            "get",
            "plane_delays",
            "N14228",
            "--as-of",
            "2013-12-31",
            "--json",
        ],
    ))
    .expect("json");
    assert!(
        plane["features"]["plane_flights_90d"]
            .as_i64()
            .expect("count")
            > 0
    );
}

/// A view as of a time whose aggregates all combine from partials is computed in
/// two steps (partials per entity, window count, filter and category, then per
/// entity); one with a `stddev` is computed in one. On the real flights, every
/// kind of windowed, filtered and pivoted aggregate, and distinct counts of a
/// pivot's column (counted in the two steps: `month`'s 12 values as bits,
/// `dest`'s 105 by marks) and of another (counted beside),
/// has the same columns, types and values both ways (floats to 1e-9, since sums
/// add in another order).
#[test]
fn a_view_in_two_steps_equals_the_one_step_query() {
    let view = |name: &str, extra: &str| {
        format!(
            r#"
[features.{name}]
source = "flights"
entity = ["carrier", "origin"]
timestamp = "time_hour"
as_of = "2013-07-01T00:00:00Z"

[features.{name}.aggregates]
flights = {{ agg = "count" }}
flights_6h = {{ agg = "count", window = "6h" }}
arrived_7d = {{ agg = "count", column = "arr_delay", window = "7d" }}
late_30d = {{ agg = "count", window = "30d", filter = "arr_delay > 15" }}
dep_delay_sum_30d = {{ agg = "sum", column = "dep_delay", window = "30d", filter = "distance > 1000" }}
arr_delay_mean_7d = {{ agg = "mean", column = "arr_delay", window = "7d" }}
distance_mean = {{ agg = "mean", column = "distance" }}
minutes_mean_1d = {{ agg = "mean", column = "minute", window = "1d", filter = "dep_delay > 0" }}
air_time_min_1d = {{ agg = "min", column = "air_time", window = "1d" }}
late_tail_max = {{ agg = "max", column = "tailnum", filter = "dep_delay > 60" }}
first = {{ agg = "min", column = "time_hour" }}
dests_7d = {{ agg = "count_distinct", column = "dest", window = "7d" }}
late_dests_30d = {{ agg = "count_distinct", column = "dest", window = "30d", filter = "arr_delay > 15" }}
dests = {{ agg = "count_distinct", column = "dest" }}
tails_30d = {{ agg = "count_distinct", column = "tailnum", window = "30d", filter = "dep_delay > 0" }}
months_30d = {{ agg = "count_distinct", column = "month", window = "30d", filter = "dep_delay > 0" }}
months = {{ agg = "count_distinct", column = "month" }}
{extra}
[features.{name}.pivots.to]
column = "dest"
value = "dep_delay"
window = "30d"
filter = "arr_delay > 0"

[features.{name}.pivots.month]
column = "month"

[features.{name}.derived]
late_share = "CAST(late_30d AS DOUBLE) / nullif(flights, 0)"
"#
        )
    };
    let toml = format!(
        "[project]\nname = \"two_steps\"\n\n[sources.flights]\npath = \"flights.parquet\"\n{}{}",
        view("two", ""),
        view(
            "one",
            "air_time_sd = { agg = \"stddev\", column = \"air_time\" }"
        ),
    );
    let flights =
        std::fs::read(repo().join("examples/flights/data/flights.parquet")).expect("flights");
    let dir = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("flights.parquet", &flights),
    ]);
    let p = dir.path();
    let (ran, summary) = run_json(p, &[]);
    assert!(ran, "{summary}");
    let columns = |name: &str| {
        let json: serde_json::Value =
            serde_json::from_str(&ok(p, &["describe", name, "--json"])).expect("json");
        let mut columns = json["columns"].as_array().expect("columns").clone();
        columns.retain(|c| c["name"] != "air_time_sd");
        columns
    };
    let two = columns("two");
    assert_eq!(two, columns("one"));
    assert!(two.len() > 100, "{} columns", two.len());
    let rows = |sql: &str| -> Vec<Vec<String>> {
        csv(p, sql)
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let two = rows("SELECT * FROM two ORDER BY carrier, origin");
    let one = rows("SELECT * EXCLUDE (air_time_sd) FROM one ORDER BY carrier, origin");
    assert_eq!(two.len(), one.len());
    assert!(two.len() > 30, "{} rows", two.len());
    for (r, (a, b)) in two.iter().zip(&one).enumerate() {
        assert_eq!(a.len(), b.len(), "row {r}");
        for (c, (x, y)) in a.iter().zip(b).enumerate() {
            let same = x == y
                || matches!((x.parse::<f64>(), y.parse::<f64>()),
                    (Ok(x), Ok(y)) if (x - y).abs() <= 1e-9 * y.abs().max(1.0));
            assert!(
                same,
                "row {r}, column {} ({}): {x} against {y}",
                c, one[0][c]
            );
        }
    }
}
