//! One definition, three places: a declared view's windows read per event (the
//! view's own rows), anchored at spine rows (a training set) and online (the
//! server, as of a time) agree cell by cell, for every aggregate kind and a
//! derived feature over them, at tile-aligned times. Online windows age with the clock: a read now of a
//! purchase log from March sees empty 30-day windows.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate};
use serde_json::Value;

use crate::common::*;

/// A purchase log (customer, time, amount, category, product): events at
/// midnight and within days, on tile boundaries and between them, no two of a
/// customer at one time.
const PURCHASES: &str = "\
customer,ts,amount,category,product
c1,2026-03-01T00:00:00Z,10.5,food,p1
c1,2026-03-03T14:20:00Z,3.25,food,p2
c1,2026-03-10T00:00:00Z,25.0,toys,p7
c1,2026-03-12T09:00:00Z,16.99,food,p1
c1,2026-03-31T00:00:00Z,40.0,food,p3
c1,2026-04-05T00:00:00Z,7.75,food,p2
c1,2026-04-20T18:45:00Z,120.0,toys,p9
c2,2026-03-15T00:00:00Z,100.0,toys,p7
c2,2026-03-15T06:00:00Z,50.0,food,p4
c2,2026-03-16T00:00:00Z,12.5,food,p4
c2,2026-04-02T23:59:00Z,8.0,food,p5
c3,2026-01-01T00:00:00Z,5.0,food,p1
c3,2026-02-28T00:00:00Z,60.0,toys,p8
c3,2026-03-20T12:00:00Z,9.99,food,p1
";

const PROJECT: &str = r#"
[project]
name = "online_windows"

[sources.purchases]
path = "purchases.csv"

[features.spend]
source = "purchases"
entity = "customer"
timestamp = "ts"
tile = "1d"
online_history = "3650d"

[features.spend.aggregates]
n_7d = { agg = "count", window = "7d" }
n_30d = { agg = "count", window = "30d" }
amount_30d = { agg = "sum", column = "amount", window = "30d" }
mean_30d = { agg = "mean", column = "amount", window = "30d" }
max_30d = { agg = "max", column = "amount", window = "30d" }
min_7d = { agg = "min", column = "amount", window = "7d" }
sd_30d = { agg = "stddev", column = "amount", window = "30d" }
products_30d = { agg = "count_distinct", column = "product", window = "30d" }
food_30d = { agg = "count", window = "30d", filter = "category = 'food'" }
last_category = { agg = "last", column = "category" }
n_all = { agg = "count" }

[features.spend.pivots.category]
value = "amount"
values = ["food", "toys"]
window = "30d"

[features.spend.derived]
food_share_30d = "CAST(food_30d AS DOUBLE) / nullif(n_30d, 0)"
"#;

/// Midnights (UTC) from 2026-02-20 to 2026-05-25, every third day, and the
/// customers (one never seen).
fn pairs() -> Vec<(String, String)> {
    let mut out = vec![];
    let mut day = NaiveDate::from_ymd_opt(2026, 2, 20).expect("date");
    let end = NaiveDate::from_ymd_opt(2026, 5, 25).expect("date");
    while day <= end {
        for c in ["c1", "c2", "c3", "c9"] {
            out.push((c.to_string(), format!("{day}T00:00:00Z")));
        }
        day += Duration::days(3);
    }
    out
}

/// Equal as the same number (floats to 1e-9 relative: sums of floats merged in
/// another order), or as the same text.
fn same(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn setup() -> tempfile::TempDir {
    let spine: String = std::iter::once("customer,at,label".to_string())
        .chain(pairs().iter().map(|(c, t)| format!("{c},{t},0")))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
        ("spine.csv", spine.as_bytes()),
    ]);
    let (ok1, summary) = run_json(dir.path(), &[]);
    assert!(ok1, "{summary}");
    dir
}

/// Per (customer, time in microseconds), a row's feature values.
type ByPair = BTreeMap<(String, String), Vec<String>>;

/// The training set over every pair: the feature names and the rows by pair.
fn anchored(p: &Path) -> (Vec<String>, ByPair) {
    let out = p.join("anchored.parquet");
    ok(
        p,
        &[
            "training-set",
            "--spine",
            p.join("spine.csv").to_str().expect("path"),
            "--features",
            "spend",
            "--output",
            out.to_str().expect("path"),
        ],
    );
    let (names, rows) = parquet_rows(&out);
    let features = names[3..].to_vec();
    let by_pair = rows
        .into_iter()
        .map(|r| {
            let t = DateTime::parse_from_rfc3339(&format!("{}Z", r[1].trim_end_matches('Z')))
                .expect("time")
                .timestamp_micros();
            ((r[0].clone(), t.to_string()), r[3..].to_vec())
        })
        .collect();
    (features, by_pair)
}

fn micros(t: &str) -> String {
    DateTime::parse_from_rfc3339(t)
        .expect("time")
        .timestamp_micros()
        .to_string()
}

#[test]
fn per_event_rows_training_sets_and_online_reads_agree() {
    let dir = setup();
    let p = dir.path();
    let (features, training) = anchored(p);
    assert_eq!(features.len(), 16, "{features:?}");
    assert!(features.contains(&"food_share_30d".to_string()));

    // Online, as of each time: one batch request per time.
    let server = Server::start(p);
    let mut compared = 0;
    let times: Vec<String> = {
        let mut t: Vec<String> = pairs().into_iter().map(|(_, t)| t).collect();
        t.dedup();
        t
    };
    for t in &times {
        let body = serde_json::json!({
            "features": ["spend"],
            "entities": [{"customer": "c1"}, {"customer": "c2"}, {"customer": "c3"}, {"customer": "c9"}],
            "as_of": t,
        });
        let (status, answer) =
            server.request("POST", "/v1/features", None, Some(&body.to_string()));
        assert_eq!(status, 200, "{answer}");
        let answer: Value = serde_json::from_str(&answer).expect("json");
        for result in answer["results"].as_array().expect("results") {
            let customer = result["entity"]["customer"].as_str().expect("customer");
            let record = &result["views"]["spend"];
            let want = &training[&(customer.to_string(), micros(t))];
            if record.is_null() {
                // Never seen: the training set's windows are empty too.
                assert_eq!(customer, "c9");
                continue;
            }
            assert_eq!(record["as_of"].as_str(), Some(t.as_str()));
            for (f, w) in features.iter().zip(want) {
                let got = text_of(&record["features"][f]);
                assert!(
                    same(&got, w),
                    "{customer} at {t}, {f}: online {got}, training set {w}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 900, "{compared} cells compared");

    // Per event: the view's own row at an event at midnight is its windows as of
    // that time, so it equals the training set's row at (customer, event time).
    let rows: Value = serde_json::from_str(&ok(
        p,
        &[
            "query",
            "SELECT * FROM spend ORDER BY customer, ts",
            "--format",
            "json",
        ],
    ))
    .expect("json");
    let mut at_midnight = 0;
    for row in rows.as_array().expect("rows") {
        let ts = row["ts"].as_str().expect("ts");
        if !ts.contains("T00:00:00") {
            continue;
        }
        let t = format!("{}Z", ts.trim_end_matches('Z'));
        let key = (text_of(&row["customer"]), micros(&t));
        let Some(want) = training.get(&key) else {
            continue;
        };
        for (f, w) in features.iter().zip(want) {
            let got = text_of(&row[f]);
            assert!(
                same(&got, w),
                "{key:?} {f}: per event {got}, training set {w}"
            );
        }
        at_midnight += 1;
    }
    assert!(at_midnight >= 3, "{at_midnight} event rows compared");
}

#[test]
fn online_windows_age_without_a_run_and_refuse_times_they_do_not_keep() {
    let dir = setup();
    let p = dir.path();
    // Read now (December 2026 or later): every 30-day window has emptied; the
    // all-time features keep their values.
    let now: Value = serde_json::from_str(&ok(p, &["get", "spend", "c1", "--json"])).expect("json");
    assert_eq!(now["features"]["n_30d"], 0, "{now}");
    assert_eq!(now["features"]["amount_30d"], Value::Null, "{now}");
    assert_eq!(now["features"]["category_amount_food_30d"], 0.0, "{now}");
    assert_eq!(now["features"]["n_all"], 7, "{now}");
    // A derived feature over emptied windows: 0 / 0 is null.
    assert_eq!(now["features"]["food_share_30d"], Value::Null, "{now}");
    assert_eq!(now["features"]["last_category"], "toys", "{now}");
    assert!(now["as_of"].is_string(), "{now}");
    // As of the day after c1's 03-31 purchase: 03-03, 03-10, 03-12 and 03-31 are
    // within 30 days (03-01 is not).
    let then: Value = serde_json::from_str(&ok(
        p,
        &["get", "spend", "c1", "--as-of", "2026-04-01", "--json"],
    ))
    .expect("json");
    assert_eq!(then["features"]["n_30d"], 4, "{then}");
    assert_eq!(then["features"]["max_30d"], 40.0, "{then}");
    // Three of the four were food.
    assert_eq!(then["features"]["food_share_30d"], 0.75, "{then}");
    assert_eq!(then["as_of"], "2026-04-01T00:00:00Z", "{then}");

    // With one day of history, c1's tiles are kept from 03-20 (its newest event,
    // 04-20 18:45, less 30 days and a day, down to the day): its 30-day windows
    // can be read from 04-19 on. A read before is refused, naming what is kept;
    // a bad time is named too.
    let short = PROJECT.replace("online_history = \"3650d\"", "online_history = \"1d\"");
    std::fs::write(p.join("sluice.toml"), short).expect("write");
    let (ok2, summary) = run_json(p, &[]);
    assert!(ok2, "{summary}");
    let out = sluice(p, &["get", "spend", "c1", "--as-of", "2026-03-15"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("keeps the features of entity c1 online from 2026-04-19T00:00:00Z on")
            && err.contains("2026-03-15T00:00:00Z is before that"),
        "{err}"
    );
    let out = sluice(p, &["get", "spend", "c1", "--as-of", "last tuesday"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`last tuesday` is not a time"),
        "{}",
        stderr(&out)
    );
}

/// Runs sluice with its clock standing at `now`.
fn at(p: &Path, now: &str, args: &[&str]) -> std::process::Output {
    sluice_cmd(p)
        .env("SLUICE_NOW", now)
        .args(args)
        .output()
        .expect("the sluice binary runs")
}

/// The status of `name` with the clock at `now`.
fn status_at(p: &Path, now: &str, name: &str) -> Value {
    let out = at(p, now, &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all: Value = serde_json::from_str(&stdout(&out)).expect("json");
    all.as_array()
        .expect("array")
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .expect("listed")
}

#[test]
fn an_export_of_a_tiled_view_writes_its_windows_as_of_the_run_and_ages_with_the_clock() {
    let text =
        format!("{PROJECT}\n[exports.spend_now]\nfrom = \"spend\"\npath = \"out/spend.json\"\n");
    let dir = project(&[
        ("sluice.toml", text.as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
    ]);
    let p = dir.path();
    let exported = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("out/spend.json")).expect("export"))
            .expect("json")
    };
    // Every feature of every customer equals the online read as of the same time.
    let agrees_with_online = |t: &str| {
        let export = exported();
        for c in ["c1", "c2", "c3"] {
            let online: Value =
                serde_json::from_str(&ok(p, &["get", "spend", c, "--as-of", t, "--json"]))
                    .expect("json");
            let features = online["features"].as_object().expect("features");
            assert_eq!(features.len(), 16);
            for (f, want) in features {
                let got = text_of(&export[c][f]);
                assert!(
                    same(&got, &text_of(want)),
                    "{c} {f} at {t}: export {got}, online {want}"
                );
            }
        }
    };

    // As of the day after c1's 03-31 purchase: 03-03, 03-10, 03-12 and 03-31
    // are within 30 days.
    let out = at(p, "2026-04-01", &["run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(exported()["c1"]["n_30d"], 4, "{}", exported());
    assert_eq!(exported()["c1"]["max_30d"], 40.0);
    agrees_with_online("2026-04-01T00:00:00Z");

    // Later the same day (the same tile): up to date.
    let same_tile = status_at(p, "2026-04-01T18:00:00Z", "spend_now");
    assert_eq!(same_tile["stale"], false, "{same_tile}");
    // The next day: stale, and status says why; nothing else is.
    let next = status_at(p, "2026-04-02T00:00:00Z", "spend_now");
    assert_eq!(next["stale"], true, "{next}");
    let reason = next["reason"].as_str().expect("reason");
    assert!(
        reason.contains("the clock has moved from the tile of 2026-04-01T00:00:00Z into the tile of 2026-04-02T00:00:00Z"),
        "{reason}"
    );
    assert_eq!(
        status_at(p, "2026-04-02T00:00:00Z", "spend")["stale"],
        false
    );

    // Two weeks on, with no new data: the run rewrites the export alone, and the
    // 30-day windows of c1 hold 03-31 and 04-05 only.
    let out = at(p, "2026-04-15", &["run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(asset(&summary, "spend_now")["status"], "built", "{summary}");
    assert_eq!(
        asset(&summary, "spend")["status"],
        "up_to_date",
        "{summary}"
    );
    assert_eq!(exported()["c1"]["n_30d"], 2, "{}", exported());
    // 03-31 and 04-05 were both food.
    assert_eq!(exported()["c1"]["food_share_30d"], 1.0);
    // All time as of 04-15: the purchase of 04-20 is not counted yet.
    assert_eq!(exported()["c1"]["n_all"], 6);
    agrees_with_online("2026-04-15T00:00:00Z");
}
