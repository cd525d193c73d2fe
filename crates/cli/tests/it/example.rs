//! The flights example: build, rebuild nothing, rebuild only what a change touches,
//! query, time travel, status, history and the run log.

use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::*;

const ALL: [&str; 21] = [
    "airlines",
    "airports",
    "carrier_delays",
    "carrier_delays_json",
    "carrier_origins",
    "carrier_summary",
    "carrier_summary_csv",
    "daily_delays",
    "flight_events",
    "flight_spine",
    "flights",
    "flights_enriched",
    "late",
    "late_predictions",
    "origin_weather",
    "plane_delays",
    "planes",
    "route_delays",
    "upcoming_flights",
    "weather",
    "weather_effect",
];

/// Rewrites `airlines.parquet` with one airline renamed.
fn rename_united(path: &std::path::Path) {
    let file = std::fs::File::open(path).expect("open");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let schema = batches[0].schema();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(path).expect("create"),
        schema.clone(),
        None,
    )
    .expect("writer");
    for b in batches {
        let names = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("name is a string");
        let renamed: StringArray = names
            .iter()
            .map(|n| {
                n.map(|n| {
                    if n.starts_with("United") {
                        "United Airlines (renamed)"
                    } else {
                        n
                    }
                })
            })
            .collect();
        let b = RecordBatch::try_new(schema.clone(), vec![b.column(0).clone(), Arc::new(renamed)])
            .expect("batch");
        writer.write(&b).expect("write");
    }
    writer.close().expect("close");
}

#[test]
fn builds_everything_then_nothing_then_only_what_changed() {
    let dir = flights_copy();
    let p = dir.path();

    let (ok1, first) = run_json(p, &[]);
    assert!(ok1, "first run: {first}");
    let mut names: Vec<_> = statuses(&first)
        .into_iter()
        .map(|(n, s)| {
            assert_eq!(s, "built", "{n} in {first}");
            n
        })
        .collect();
    names.sort();
    assert_eq!(names, ALL);
    let flights = asset(&first, "flights");
    // The contract quarantines the 1,175 diverted flights and 4 malformed tail numbers.
    assert_eq!(flights["rows_in"], 336_776);
    assert_eq!(flights["rows_out"], 335_597);
    assert_eq!(flights["rows_quarantined"], 1_179);
    assert_eq!(
        flights["warnings"], 2,
        "FAA tail-number format and freshness"
    );
    assert_eq!(flights["version"], 0);
    assert_eq!(
        asset(&first, "flights_enriched")["rows_out"],
        335_597,
        "a left join keeps every flight"
    );
    assert_eq!(asset(&first, "carrier_summary")["rows_out"], 16);
    for a in first["assets"].as_array().expect("assets") {
        for key in [
            "name",
            "status",
            "version",
            "rows_in",
            "rows_out",
            "rows_quarantined",
            "duration_ms",
            "error",
        ] {
            assert!(a.get(key).is_some(), "{key} missing in {a}");
        }
    }

    // Nothing changed: no work, every asset up to date at the same version.
    let (ok2, second) = run_json(p, &[]);
    assert!(ok2);
    for (n, s) in statuses(&second) {
        assert_eq!(s, "up_to_date", "{n}");
    }
    assert_eq!(asset(&second, "flights")["version"], 0);
    // Touching a file without changing it is not a change.
    let airlines = p.join("data/airlines.parquet");
    let bytes = std::fs::read(&airlines).expect("read");
    std::fs::write(&airlines, bytes).expect("rewrite");
    let (_, touched) = run_json(p, &[]);
    assert!(
        statuses(&touched).iter().all(|(_, s)| s == "up_to_date"),
        "{touched}"
    );

    // One source changes: it and its downstream rebuild, nothing else.
    rename_united(&airlines);
    let (ok3, third) = run_json(p, &[]);
    assert!(ok3, "{third}");
    let rebuilt: Vec<String> = statuses(&third)
        .into_iter()
        .filter(|(_, s)| s == "built")
        .map(|(n, _)| n)
        .collect();
    let mut rebuilt_sorted = rebuilt.clone();
    rebuilt_sorted.sort();
    assert_eq!(
        rebuilt_sorted,
        [
            "airlines",
            "carrier_summary",
            "carrier_summary_csv",
            "flights_enriched",
            "weather_effect"
        ]
    );
    assert_eq!(asset(&third, "airlines")["version"], 1);
    assert_eq!(asset(&third, "flights")["status"], "up_to_date");

    // Time travel: version 0 still holds the old name.
    let now = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT name FROM airlines WHERE carrier = 'UA'",
        ],
    );
    assert_eq!(now, "name\nUnited Airlines (renamed)\n");
    let then = ok(
        p,
        &[
            "query",
            "--as-of",
            "0",
            "--format",
            "csv",
            "SELECT name FROM airlines WHERE carrier = 'UA'",
        ],
    );
    assert_eq!(then, "name\nUnited Air Lines Inc.\n");

    // History lists both versions with their runs; status says everything is fresh.
    let history: serde_json::Value =
        serde_json::from_str(&ok(p, &["history", "airlines", "--json"])).expect("json");
    let versions: Vec<_> = history
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["version"].clone())
        .collect();
    assert_eq!(versions, [1, 0]);
    assert_eq!(history[0]["rows"], 16);
    let status: serde_json::Value =
        serde_json::from_str(&ok(p, &["status", "--json"])).expect("json");
    for s in status.as_array().expect("array") {
        assert_eq!(s["stale"], false, "{s}");
    }

    // A definition change makes the table stale, and status says so before the run.
    let sql = p.join("sql/weather_effect.sql");
    let text = std::fs::read_to_string(&sql).expect("read");
    std::fs::write(&sql, text.replace("ORDER BY 1, 2", "ORDER BY 2, 1")).expect("write");
    let status: serde_json::Value =
        serde_json::from_str(&ok(p, &["status", "--json"])).expect("json");
    let stale: Vec<_> = status
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["stale"] == true)
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(stale, ["weather_effect"]);
    let (_, fourth) = run_json(p, &["weather_effect"]);
    assert_eq!(
        statuses(&fourth)
            .iter()
            .filter(|(_, s)| s == "built")
            .count(),
        1,
        "{fourth}"
    );

    // The run log has every run, newest first.
    let runs: serde_json::Value = serde_json::from_str(&ok(p, &["runs", "--json"])).expect("json");
    let runs = runs.as_array().expect("array");
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r["state"] == "succeeded"));
    let first_run = runs.last().expect("first run");
    let flights_attempt = first_run["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .find(|a| a["asset"] == "flights")
        .expect("flights");
    assert_eq!(flights_attempt["rows_out"], 335_597);
    assert_eq!(flights_attempt["rows_quarantined"], 1_179);
    assert_eq!(flights_attempt["output_version"], 0);
}

#[test]
fn query_prints_the_top_carriers_in_csv_and_other_formats() {
    let dir = flights_copy();
    let p = dir.path();
    ok(p, &["run", "flights"]);
    let sql = "SELECT carrier, count(*) AS n FROM flights GROUP BY carrier ORDER BY n DESC LIMIT 3";
    assert_eq!(
        ok(p, &["query", "--format", "csv", sql]),
        "carrier,n\nUA,58468\nB6,54515\nEV,53925\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(p, &["query", "--format", "json", sql])).expect("json");
    assert_eq!(json[0]["carrier"], "UA");
    assert_eq!(json[0]["n"], 58468);
    let table = ok(p, &["query", sql]);
    assert!(table.contains("| UA      | 58468 |"), "{table}");
    let out = p.join("top.csv");
    ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "--output",
            out.to_str().expect("utf8"),
            sql,
        ],
    );
    assert!(
        std::fs::read_to_string(out)
            .expect("written")
            .starts_with("carrier,n\nUA,58468\n")
    );

    // Only `flights` was asked for, so only it (with no upstream) was built.
    let status: serde_json::Value =
        serde_json::from_str(&ok(p, &["status", "--json"])).expect("json");
    let built: Vec<_> = status
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| !s["version"].is_null())
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(built, ["flights"]);

    // Queries are read-only and only name assets.
    let o = sluice(p, &["query", "DROP TABLE flights"]);
    assert!(!o.status.success());
    let o = sluice(p, &["query", "SELECT * FROM nope"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown asset `nope`"),
        "{}",
        stderr(&o)
    );
    let o = sluice(p, &["query", "SELECT * FROM airlines"]);
    assert!(
        stderr(&o).contains("`airlines` has no version yet"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn time_travel_by_timestamp_and_profiles() {
    let dir = flights_copy();
    let p = dir.path();
    ok(p, &["run", "airlines"]);
    let o = sluice(
        p,
        &[
            "query",
            "--as-of",
            "2001-01-01",
            "SELECT count(*) FROM airlines",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no version at or before"),
        "{}",
        stderr(&o)
    );
    let n = ok(
        p,
        &[
            "query",
            "--as-of",
            "2999-01-01T00:00:00Z",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM airlines",
        ],
    );
    assert_eq!(n, "n\n16\n");
    let o = sluice(p, &["query", "--as-of", "yesterday", "SELECT 1"]);
    assert!(
        stderr(&o).contains("neither a version number nor a time"),
        "{}",
        stderr(&o)
    );

    // The prod profile takes its warehouse from the environment.
    let o = sluice(p, &["--profile", "prod", "status"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("environment variable `SLUICE_WAREHOUSE` is not set"),
        "{}",
        stderr(&o)
    );
    let wh = tempfile::tempdir().expect("tempdir");
    let o = sluice_cmd(p)
        .args(["--profile", "prod", "run", "airlines"])
        .env("SLUICE_WAREHOUSE", wh.path())
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(wh.path().join("tables/airlines/_delta_log").is_dir());
    let o = sluice(p, &["--profile", "staging", "status"]);
    assert!(
        stderr(&o).contains("unknown profile `staging`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_plans_every_table_without_building() {
    let dir = flights_copy();
    let p = dir.path();
    let out = ok(p, &["check"]);
    assert!(
        out.contains(
            "21 assets (5 sources, 8 tables, 4 feature views, 1 model, 1 predictions table, 2 exports)"
        ),
        "{out}"
    );
    assert!(!p.join(".sluice/tables/flights/_delta_log").exists());
}

/// Regression: `sluice check` said "21 assets (5 sources, 8 tables, 4 feature
/// views, 1 model, 2 exports)", which sums to 20: predictions were not counted.
#[test]
fn check_counts_every_kind_so_the_parts_sum_to_the_total() {
    let dir = flights_copy();
    let out = ok(dir.path(), &["check"]);
    let number = |s: &str| {
        s.trim()
            .split(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
    };
    let (total, parts) = out
        .trim()
        .strip_prefix("ok: ")
        .and_then(|s| s.split_once(" assets ("))
        .and_then(|(total, rest)| Some((number(total)?, rest.split_once(')')?.0)))
        .unwrap_or_else(|| panic!("unexpected summary: {out}"));
    let sum: usize = parts.split(", ").map(|p| number(p).expect("a count")).sum();
    assert_eq!(sum, total, "{out}");
}

/// The codecs of the column chunks of an asset's Parquet files.
fn codecs(p: &std::path::Path, asset: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(p.join(".sluice/tables").join(asset)).expect("table") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let file = std::fs::File::open(&path).expect("open");
        let meta = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .metadata()
            .clone();
        for group in meta.row_groups() {
            found.extend(group.columns().iter().map(|c| {
                // The codec's name, without a level.
                let codec = format!("{:?}", c.compression());
                codec.split('(').next().unwrap_or_default().to_string()
            }));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// A Parquet source is stored as a copy of its file's column chunks (so in the
/// file's own codec), unless a contract filters its rows; both read the same.
#[test]
fn a_parquet_source_is_stored_as_a_copy_of_its_file_unless_a_contract_filters_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    let from = repo().join("examples/flights/data/planes.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(from).expect("open"))
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    write_snappy_parquet(&p.join("planes.parquet"), &batches);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    std::fs::write(
        p.join("sluice.toml"),
        "[project]\nname = \"t\"\n\n\
         [sources.plain]\npath = \"planes.parquet\"\n\n\
         [sources.checked]\npath = \"planes.parquet\"\n\
         [sources.checked.contract.columns.tailnum]\nrequired = true\n",
    )
    .expect("toml");
    ok(p, &["run"]);
    assert_eq!(codecs(p, "plain"), ["SNAPPY"]);
    assert_eq!(codecs(p, "checked"), ["ZSTD"]);
    let all = |t: &str| {
        ok(
            p,
            &[
                "query",
                "--format",
                "csv",
                &format!("SELECT * FROM {t} ORDER BY tailnum"),
            ],
        )
    };
    assert_eq!(all("plain"), all("checked"));
    assert_eq!(scalar(p, "SELECT count(*) FROM plain"), rows as i64);
}
