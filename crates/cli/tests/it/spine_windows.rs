//! Declared views in a training set are computed at each spine row's own time:
//! windowed aggregates over `[T - w, T]` (or `[T - w, T)` with `closed = "left"`)
//! equal a naive computation written here, row for row; `as_of = "event"` keeps
//! the per-event join (the entity's newest view row at or before `T`).

use std::path::Path;

use chrono::{DateTime, Duration, NaiveDateTime};

use crate::common::*;

/// A purchase log: an event exactly at a spine time (c1, 03-31), one exactly at
/// `T - 30d` of it (c1, 03-01), two events of c2 within hours.
const PURCHASES: &str = "\
customer,ts,amount,category
c1,2026-03-01T00:00:00Z,10,food
c1,2026-03-10T00:00:00Z,25,toys
c1,2026-03-31T00:00:00Z,40,food
c1,2026-04-05T00:00:00Z,7,food
c2,2026-03-15T00:00:00Z,100,toys
c2,2026-03-15T06:00:00Z,50,food
c3,2026-01-01T00:00:00Z,5,food
";

/// Rows with no event in the window (c1 in May, c3, c2 before its first event,
/// an unknown customer) next to rows whose window holds events at both ends.
const SPINE: &str = "\
customer,at,label
c1,2026-03-31T00:00:00Z,1
c1,2026-03-20T00:00:00Z,0
c1,2026-05-20T00:00:00Z,0
c2,2026-03-15T03:00:00Z,1
c2,2026-03-10T00:00:00Z,0
c3,2026-02-15T00:00:00Z,0
c9,2026-03-31T00:00:00Z,1
";

const PROJECT: &str = r#"
[project]
name = "spine_windows"

[sources.purchases]
path = "purchases.csv"

[features.spend]
source = "purchases"
entity = "customer"
timestamp = "ts"

[features.spend.aggregates]
n_30d = { agg = "count", window = "30d" }
amount_30d = { agg = "sum", column = "amount", window = "30d" }
before_30d = { agg = "sum", column = "amount", window = "30d", closed = "left" }
food_30d = { agg = "count", window = "30d", filter = "category = 'food'" }

[features.spend.pivots.category]
value = "amount"
window = "30d"

[features.spend_event]
source = "purchases"
entity = "customer"
timestamp = "ts"
as_of = "event"

[features.spend_event.aggregates]
n_30d_event = { agg = "count", window = "30d" }
amount_30d_event = { agg = "sum", column = "amount", window = "30d" }
"#;

fn micros(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .expect("a time")
}

fn training_set(p: &Path, features: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let out = p.join(format!("{}.parquet", features.replace([',', ':'], "_")));
    ok(
        p,
        &[
            "training-set",
            "--spine",
            p.join("spine.csv").to_str().expect("path"),
            "--features",
            features,
            "--output",
            out.to_str().expect("path"),
        ],
    );
    parquet_rows(&out)
}

struct Event {
    customer: String,
    at: i64,
    amount: i64,
    category: String,
}

fn events() -> Vec<Event> {
    PURCHASES
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Event {
                customer: f[0].into(),
                at: micros(f[1]),
                amount: f[2].parse().expect("amount"),
                category: f[3].into(),
            }
        })
        .collect()
}

/// The events of `customer` in `[t - 30d, t]` (`[t - 30d, t)` when `left`).
fn window<'a>(events: &'a [Event], customer: &str, t: i64, left: bool) -> Vec<&'a Event> {
    let w = Duration::days(30).num_microseconds().expect("micros");
    events
        .iter()
        .filter(|e| e.customer == customer && e.at >= t - w && (e.at < t || (!left && e.at == t)))
        .collect()
}

fn sum(events: &[&Event]) -> String {
    if events.is_empty() {
        "null".into()
    } else {
        events.iter().map(|e| e.amount).sum::<i64>().to_string()
    }
}

#[test]
fn windowed_features_are_computed_at_each_spine_rows_time() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
        ("spine.csv", SPINE.as_bytes()),
    ]);
    let p = dir.path();
    let (ok1, summary) = run_json(p, &[]);
    assert!(ok1, "{summary}");
    let (names, rows) = training_set(p, "spend");
    assert_eq!(
        names,
        [
            "customer",
            "at",
            "label",
            "n_30d",
            "amount_30d",
            "before_30d",
            "food_30d",
            "category_amount_food_30d",
            "category_count_food_30d",
            "category_amount_toys_30d",
            "category_count_toys_30d",
        ]
    );
    let events = events();
    let mut expected = vec![];
    for line in SPINE.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let t = micros(f[1]);
        let inside = window(&events, f[0], t, false);
        let before = window(&events, f[0], t, true);
        let of = |c: &str| -> Vec<&Event> {
            inside.iter().copied().filter(|e| e.category == c).collect()
        };
        let zero_sum = |es: &[&Event]| es.iter().map(|e| e.amount).sum::<i64>().to_string();
        expected.push(vec![
            f[0].to_string(),
            f[1].trim_end_matches('Z').to_string(),
            f[2].to_string(),
            inside.len().to_string(),
            sum(&inside),
            sum(&before),
            of("food").len().to_string(),
            zero_sum(&of("food")),
            of("food").len().to_string(),
            zero_sum(&of("toys")),
            of("toys").len().to_string(),
        ]);
    }
    assert_eq!(rows, expected);
    // The cases the fixture is for, spelled out.
    assert_eq!(
        rows[0][3..6],
        ["3", "75", "35"],
        "events at T - w and at T count; left-closed drops T's"
    );
    assert_eq!(rows[2][3..5], ["0", "null"], "no event in the window");
}

#[test]
fn as_of_event_keeps_the_entitys_newest_per_event_row() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
        ("spine.csv", SPINE.as_bytes()),
    ]);
    let p = dir.path();
    let (ok1, summary) = run_json(p, &[]);
    assert!(ok1, "{summary}");
    let (_, anchored) = training_set(p, "spend:n_30d,spend:amount_30d");
    let (names, per_event) = training_set(p, "spend_event");
    assert_eq!(names[3..], ["n_30d_event", "amount_30d_event"]);
    let pick =
        |rows: &[Vec<String>]| -> Vec<String> { rows.iter().map(|r| r[3..5].join(",")).collect() };
    // c1 on 05-20: its newest event (04-05) saw 03-10, 03-31 and 04-05 in its
    // window; at 05-20 nothing is left in the last 30 days. c3 likewise; c2 and c9
    // before any event: no row per event, an empty window anchored.
    assert_eq!(
        pick(&per_event),
        [
            "3,75",
            "2,35",
            "3,72",
            "1,100",
            "null,null",
            "1,5",
            "null,null"
        ]
    );
    assert_eq!(
        pick(&anchored),
        [
            "3,75", "2,35", "0,null", "1,100", "0,null", "0,null", "0,null"
        ]
    );
}

#[test]
fn closed_left_is_refused_on_a_view_with_as_of() {
    let project_file = PROJECT.replace(
        "amount_30d_event = { agg = \"sum\", column = \"amount\", window = \"30d\" }",
        "amount_30d_event = { agg = \"sum\", column = \"amount\", window = \"30d\", closed = \"left\" }",
    );
    let dir = project(&[
        ("sluice.toml", project_file.as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
    ]);
    let out = sluice(dir.path(), &["check"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`closed = \"left\"` applies only to a view without `as_of`"),
        "{}",
        stderr(&out)
    );
}
