//! Incremental sources: each run reads only what is past the watermark,
//! appends or merges it, and commits the watermark with the rows; killed at
//! any moment, the next run neither skips nor repeats a row.

use std::path::Path;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cmp::{gt_eq, lt};
use datafusion::arrow::compute::{and, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::*;

/// The flights of 2013 (the example's file), as read.
fn flights() -> Vec<RecordBatch> {
    let path = repo().join("examples/flights/data/flights.parquet");
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

/// Microseconds since the epoch of `2013-MM-DD 00:00 UTC` plus `days`.
fn day(days: i64) -> i64 {
    // 2013-01-01T00:00:00Z
    (1_356_998_400 + days * 86_400) * 1_000_000
}

/// Writes the flights scheduled in `[from, to)` (microseconds) to `path`;
/// returns how many.
fn write_flights(all: &[RecordBatch], from: i64, to: i64, path: &Path) -> usize {
    let schema = all[0].schema();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).expect("create"), schema, None)
        .expect("writer");
    let mut n = 0;
    for b in all {
        let i = b.schema().index_of("time_hour").expect("time_hour");
        let t = datafusion::arrow::compute::cast(
            b.column(i),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .expect("cast");
        let t = t
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("micros");
        let lo = TimestampMicrosecondArray::new_scalar(from);
        let hi = TimestampMicrosecondArray::new_scalar(to);
        let mask = and(&gt_eq(t, &lo).expect("cmp"), &lt(t, &hi).expect("cmp")).expect("and");
        let part = filter_record_batch(b, &mask).expect("filter");
        n += part.num_rows();
        w.write(&part).expect("write");
    }
    w.close().expect("close");
    n
}

const APPEND: &str = r#"
[project]
name = "incremental"

[sources.flights]
path = "data/*.parquet"
incremental = { column = "time_hour" }
"#;

/// The watermark in the newest commit of `asset`'s table.
fn watermark(project: &Path, asset: &str) -> Option<String> {
    let log = project
        .join(".sluice/tables")
        .join(asset)
        .join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .expect("log")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    let text = std::fs::read_to_string(commits.last().expect("a commit")).expect("read");
    text.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        v["commitInfo"]["sluice"]["watermark"]
            .as_str()
            .map(str::to_string)
    })
}

/// Whether the incremental table holds the rows of the files: as many rows,
/// and none of either side missing from the other. 0 when they are equal.
fn differences(project: &Path) -> (i64, i64) {
    let q = |sql: &str| scalar(project, sql);
    // The files, read whole by a second source.
    let count = q("SELECT count(*) FROM flights") - q("SELECT count(*) FROM flights_files");
    let missing =
        q("SELECT count(*) FROM (SELECT * FROM flights_files EXCEPT SELECT * FROM flights)")
            + q("SELECT count(*) FROM (SELECT * FROM flights EXCEPT SELECT * FROM flights_files)");
    (count, missing)
}

/// The project reads the same files twice: incrementally, and whole (to compare).
fn with_reference(project: &Path) {
    let mut text = APPEND.to_string();
    text.push_str("\n[sources.flights_files]\npath = \"data/*.parquet\"\n");
    std::fs::write(project.join("sluice.toml"), text).expect("write");
}

fn version(summary: &serde_json::Value, name: &str) -> i64 {
    asset(summary, name)["version"].as_i64().expect("version")
}

#[test]
fn appends_only_what_is_past_the_watermark_and_reads_whole_on_request() {
    let all = flights();
    let p = project(&[("sluice.toml", APPEND.as_bytes())]);
    let dir = p.path();
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let first = write_flights(&all, day(0), day(90), &dir.join("data/q1.parquet"));
    let (ok1, s1) = run_json(dir, &[]);
    assert!(ok1, "{s1}");
    assert_eq!(
        asset(&s1, "flights")["rows_out"].as_u64(),
        Some(first as u64)
    );
    let w1 = watermark(dir, "flights").expect("a watermark");
    assert!(w1.starts_with("2013-03-31T"), "{w1}");

    // Nothing new: no new version.
    let (_, s2) = run_json(dir, &[]);
    assert_eq!(asset(&s2, "flights")["status"], "up_to_date", "{s2}");
    assert_eq!(version(&s2, "flights"), version(&s1, "flights"));

    // A second file: only its rows are read and added.
    let second = write_flights(&all, day(90), day(181), &dir.join("data/q2.parquet"));
    let (ok3, s3) = run_json(dir, &[]);
    assert!(ok3, "{s3}");
    assert_eq!(asset(&s3, "flights")["status"], "built");
    assert_eq!(
        asset(&s3, "flights")["rows_out"].as_u64(),
        Some(second as u64)
    );
    assert_eq!(
        scalar(dir, "SELECT count(*) FROM flights"),
        (first + second) as i64
    );
    assert!(
        watermark(dir, "flights")
            .expect("w")
            .starts_with("2013-06-30T")
    );

    // A row older than the watermark, without a key and lookback, is not read
    // again; `--full-refresh` reads everything whole.
    with_reference(dir);
    let (ok4, s4) = run_json(dir, &["--full-refresh", "flights"]);
    assert!(ok4, "{s4}");
    assert_eq!(
        asset(&s4, "flights")["rows_out"].as_u64(),
        Some((first + second) as u64)
    );
    assert_eq!(differences(dir), (0, 0));

    // `--full-refresh` of something that is not incremental is refused.
    let out = sluice(dir, &["run", "--full-refresh", "flights_files"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not an incremental or push source"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("flights"), "{}", stderr(&out));
}

const ORDERS: &str = r#"
[project]
name = "orders"

[sources.orders]
path = "orders.csv"
incremental = { column = "updated_at", key = ["id"], mode = "merge", lookback = "1h" }
"#;

#[test]
fn merges_updates_and_late_rows_by_key_exactly_once() {
    let p = project(&[
        ("sluice.toml", ORDERS.as_bytes()),
        (
            "orders.csv",
            b"id,status,amount,updated_at\n\
              1,new,10.5,2024-05-01T10:00:00Z\n\
              2,new,20.0,2024-05-01T11:00:00Z\n\
              3,new,30.0,2024-05-01T12:00:00Z\n",
        ),
    ]);
    let dir = p.path();
    let (ok1, s1) = run_json(dir, &[]);
    assert!(ok1, "{s1}");
    assert_eq!(scalar(dir, "SELECT count(*) FROM orders"), 3);

    // Order 2 is paid (updated twice since: the newest wins), order 4 is new,
    // and order 5 arrives late: stamped 30 minutes before the watermark.
    std::fs::write(
        dir.join("orders.csv"),
        "id,status,amount,updated_at\n\
         1,new,10.5,2024-05-01T10:00:00Z\n\
         2,shipped,20.0,2024-05-01T14:00:00Z\n\
         2,paid,20.0,2024-05-01T13:00:00Z\n\
         3,new,30.0,2024-05-01T12:00:00Z\n\
         4,new,40.0,2024-05-01T13:30:00Z\n\
         5,new,50.0,2024-05-01T11:30:00Z\n",
    )
    .expect("write");
    let (ok2, s2) = run_json(dir, &[]);
    assert!(ok2, "{s2}");
    let rows = ok(
        dir,
        &[
            "query",
            "--format",
            "csv",
            "SELECT id, status, amount FROM orders ORDER BY id",
        ],
    );
    assert_eq!(
        rows,
        "id,status,amount\n1,new,10.5\n2,shipped,20.0\n3,new,30.0\n4,new,40.0\n5,new,50.0\n"
    );
    assert_eq!(
        watermark(dir, "orders").as_deref(),
        Some("2024-05-01T14:00:00Z")
    );

    // Read again within the lookback, nothing differs: no new version.
    let (_, s3) = run_json(dir, &[]);
    assert_eq!(asset(&s3, "orders")["status"], "up_to_date", "{s3}");
    assert_eq!(version(&s3, "orders"), version(&s2, "orders"));

    // A row without a key cannot be merged: the load fails and says what to do.
    let mut text = std::fs::read_to_string(dir.join("orders.csv")).expect("read");
    text.push_str(",new,60.0,2024-05-01T15:00:00Z\n");
    std::fs::write(dir.join("orders.csv"), text).expect("write");
    let (ok4, s4) = run_json(dir, &[]);
    assert!(!ok4);
    let error = asset(&s4, "orders")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("no value in key column(s) `id`"), "{error}");
    assert!(error.contains("required = true"), "{error}");
    assert_eq!(scalar(dir, "SELECT count(*) FROM orders"), 5);
}

#[test]
fn a_merge_without_a_key_is_refused_where_it_is_written() {
    let p = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"x\"\n\n[sources.orders]\npath = \"orders.csv\"\nincremental = { column = \"updated_at\", mode = \"merge\" }\n",
        ),
        ("orders.csv", b"id,updated_at\n1,2024-01-01\n"),
    ]);
    let out = sluice(p.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("sluice.toml:6:"), "{err}");
    assert!(err.contains("needs a `key`"), "{err}");
}

/// A run killed at random moments while loading leaves the table equal to
/// the files it had read, and the watermark never ahead of the rows; the next
/// run completes the load exactly once.
#[test]
fn killed_loads_neither_skip_nor_repeat_rows() {
    let all = flights();
    let p = project(&[("sluice.toml", APPEND.as_bytes())]);
    let dir = p.path();
    with_reference(dir);
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    write_flights(&all, day(0), day(10), &dir.join("data/p00.parquet"));
    let (ok0, s0) = run_json(dir, &["flights"]);
    assert!(ok0, "{s0}");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed = 0;
    for trial in 1..=20 {
        let (from, to) = (day(trial * 17 - 7), day(trial * 17 + 10));
        write_flights(
            &all,
            from,
            to,
            &dir.join(format!("data/p{trial:02}.parquet")),
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(seed % 700);
        let mut child = sluice_cmd(dir)
            .args(["run", "flights"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let started = Instant::now();
        while started.elapsed() < wait {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            killed += 1;
        }
        child.wait().expect("reap");
        // Whatever was committed holds its own watermark: none ahead of its rows.
        if let Some(w) = watermark(dir, "flights") {
            let newest = ok(
                dir,
                &[
                    "query",
                    "--format",
                    "csv",
                    "SELECT CAST(max(time_hour) AS VARCHAR) AS m FROM flights",
                ],
            );
            let newest = newest.lines().nth(1).unwrap_or_default().to_string();
            assert_eq!(
                newest, w,
                "trial {trial}: the watermark is not the newest row's"
            );
        }
        let (done, s) = run_json(dir, &[]);
        assert!(done, "trial {trial}: {s}");
        assert_eq!(differences(dir), (0, 0), "trial {trial}");
    }
    eprintln!("{killed} of 20 runs were killed before they ended");
}

/// The same against PostgreSQL, merged by key with a lookback: each trial
/// inserts rows, updates some and adds one late (stamped before the
/// watermark), and a run killed at a random moment is followed by one that
/// completes; the table then equals the database's, row for row.
#[test]
fn killed_merges_from_postgres_leave_the_table_equal_to_the_database() {
    let Some(url) = crate::databases::pg_url() else {
        return;
    };
    let table = format!("inc_crash_{}", std::process::id());
    let pg = |sql: &str| crate::databases::pg(&url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    pg(&format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id bigint PRIMARY KEY, amount numeric(12,2), note text,
                               updated_at timestamptz NOT NULL);"
    ));
    let text = format!(
        r#"
[project]
name = "pg_incremental"

[sources.orders]
postgres = {{ url = "{url}", table = "{table}" }}
incremental = {{ column = "updated_at", key = ["id"], mode = "merge", lookback = "1h" }}

[sources.orders_all]
postgres = {{ url = "{url}", table = "{table}" }}
"#
    );
    let p = project(&[("sluice.toml", text.as_bytes())]);
    let dir = p.path();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut killed = 0;
    for trial in 0..20_i64 {
        // One late order (stamped 30 minutes before the newest so far), then
        // 500 new ones a minute apart, and some older ones changed.
        let base = trial * 500;
        pg(&format!(
            "INSERT INTO {table} SELECT -{trial} - 1, 0, 'late', max(updated_at) - interval '30 minutes'
               FROM {table} HAVING max(updated_at) IS NOT NULL;
             INSERT INTO {table}
               SELECT g, g * 1.25, 'order ' || g || ' ✓', timestamptz '2024-01-01 00:00+00' + g * interval '1 minute'
               FROM generate_series({base}, {base} + 499) g;
             UPDATE {table} SET amount = amount + 1,
                 updated_at = timestamptz '2024-01-01 00:00+00' + {base} * interval '1 minute' + interval '499 minutes'
               WHERE id % 97 = {trial} AND id >= 0 AND id < {base};"
        ));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(seed % 1_200);
        let mut child = sluice_cmd(dir)
            .args(["run", "orders"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            killed += 1;
        }
        child.wait().expect("reap");
        if let Some(w) = watermark(dir, "orders") {
            let newest = ok(
                dir,
                &[
                    "query",
                    "--format",
                    "csv",
                    "SELECT CAST(max(updated_at) AS VARCHAR) AS m FROM orders",
                ],
            );
            assert_eq!(
                newest.lines().nth(1).unwrap_or_default(),
                w,
                "trial {trial}"
            );
        }
        let (done, s) = run_json(dir, &[]);
        assert!(done, "trial {trial}: {s}");
        let q = |sql: &str| scalar(dir, sql);
        assert_eq!(
            q("SELECT count(*) FROM orders"),
            q("SELECT count(*) FROM orders_all"),
            "trial {trial}"
        );
        assert_eq!(
            q("SELECT count(DISTINCT id) FROM orders"),
            q("SELECT count(*) FROM orders"),
            "trial {trial}"
        );
        assert_eq!(
            q("SELECT count(*) FROM (SELECT * FROM orders_all EXCEPT SELECT * FROM orders)"),
            0,
            "trial {trial}"
        );
    }
    pg(&format!("DROP TABLE {table}"));
    eprintln!("{killed} of 20 runs were killed before they ended");
}
