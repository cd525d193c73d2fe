//! Contracts end to end: planted bad rows land in the quarantine with the right
//! rule, column and reason; counts add up; error checks close the gate and keep
//! the previous versions; warnings flow on and are recorded; reports render.

use crate::common::*;

/// Real flights (testdata/contracts/flights.csv, 60 rows) plus one planted bad
/// row per row-rule kind. Each planted row breaks exactly one rule, except the
/// duplicate id, which makes two rows (it and row 7) break `unique`.
const PLANTED: &[(&str, &str, &str, &str)] = &[
    // (csv line, rule, column, reason fragment)
    (
        "61,12a,UA,N14228,517,2,11,1400,2013-01-01 10:00:00",
        "type",
        "flight_no",
        "int32",
    ),
    (
        "62,1545,,N14228,517,2,11,1400,2013-01-01 10:00:00",
        "required",
        "carrier",
        "missing",
    ),
    (
        "63,1545,UA,N14228,517,-500,11,1400,2013-01-01 10:00:00",
        "min",
        "dep_delay",
        "minimum -60",
    ),
    (
        "64,1545,UA,N14228,517,5000,11,1400,2013-01-01 10:00:00",
        "max",
        "dep_delay",
        "maximum 1440",
    ),
    (
        "65,1545,UA,N,517,2,11,1400,2013-01-01 10:00:00",
        "min_length",
        "tailnum",
        "shorter than 2",
    ),
    (
        "66,1545,UA,N1234567,517,2,11,1400,2013-01-01 10:00:00",
        "max_length",
        "tailnum",
        "longer than 6",
    ),
    (
        "67,1545,UA,X123,517,2,11,1400,2013-01-01 10:00:00",
        "regex",
        "tailnum",
        "does not match",
    ),
    (
        "68,1545,ZZ,N14228,517,2,11,1400,2013-01-01 10:00:00",
        "one_of",
        "carrier",
        "not one of",
    ),
    (
        "7,1545,UA,N14228,517,2,11,1400,2013-01-01 10:00:00",
        "unique",
        "id",
        "more than once",
    ),
    (
        "70,1545,UA,N14228,517,2,,1400,2013-01-01 10:00:00",
        "arrived_or_cancelled",
        "",
        "breaks",
    ),
];

const CONTRACT: &str = r#"
[sources.flights.contract.columns.id]
unique = true

[sources.flights.contract.columns.flight_no]
type = "int32"

[sources.flights.contract.columns.carrier]
required = true
one_of = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]

[sources.flights.contract.columns.dep_delay]
min = -60
max = 1440

[sources.flights.contract.columns.tailnum]
min_length = 2
max_length = 6
regex = '^N[0-9A-Z]{1,5}$'

[[sources.flights.contract.rules]]
name = "arrived_or_cancelled"
check = "dep_time IS NULL OR arr_delay IS NOT NULL"
"#;

fn real_rows() -> String {
    std::fs::read_to_string(repo().join("testdata/contracts/flights.csv")).expect("fixture")
}

fn flights_project(csv: &str, contract_and_more: &str) -> tempfile::TempDir {
    let toml = format!(
        "[project]\nname = \"c\"\n\n[sources.flights]\npath = \"data/flights.csv\"\n{contract_and_more}\n\n\
         [tables.by_carrier]\nsql = \"SELECT carrier, count(*) AS n, sum(flight_no) AS s FROM flights GROUP BY carrier\"\n"
    );
    project(&[
        ("sluice.toml", toml.as_bytes()),
        ("data/flights.csv", csv.as_bytes()),
    ])
}

fn query_json(dir: &std::path::Path, sql: &str) -> Vec<serde_json::Value> {
    let out = ok(dir, &["query", sql, "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn planted_bad_rows_are_quarantined_with_their_rule_and_counts_add_up() {
    let mut csv = real_rows();
    for (line, ..) in PLANTED {
        csv.push_str(line);
        csv.push('\n');
    }
    let p = flights_project(&csv, CONTRACT);
    let (ok_run, summary) = run_json(p.path(), &[]);
    assert!(ok_run, "{summary}");
    let f = asset(&summary, "flights");
    let rows_in = 60 + PLANTED.len() as u64;
    // The duplicate id takes the real row 7 with it.
    let quarantined = PLANTED.len() as u64 + 1;
    assert_eq!(f["rows_in"], rows_in);
    assert_eq!(f["rows_quarantined"], quarantined);
    assert_eq!(f["rows_out"], rows_in - quarantined);

    let rows = query_json(
        p.path(),
        "SELECT id, flight_no, rule, \"column\", reason, run_id FROM flights__quarantine ORDER BY id, flight_no",
    );
    assert_eq!(rows.len() as u64, quarantined, "{rows:?}");
    let run_id = summary["run_id"].as_i64().unwrap();
    for (line, rule, column, reason) in PLANTED {
        let id: i64 = line.split(',').next().unwrap().parse().unwrap();
        let flight_no = line.split(',').nth(1).unwrap();
        let row = rows
            .iter()
            .find(|r| r["id"] == id && r["flight_no"] == flight_no)
            .unwrap_or_else(|| panic!("planted row {line} is not in the quarantine: {rows:?}"));
        assert_eq!(row["rule"], *rule, "{row}");
        if column.is_empty() {
            assert!(row["column"].is_null(), "{row}");
        } else {
            assert_eq!(row["column"], *column, "{row}");
        }
        assert!(row["reason"].as_str().unwrap().contains(reason), "{row}");
        assert_eq!(row["run_id"], run_id);
    }
    // The real row 7 broke `unique` only because of the planted copy.
    let sevens: Vec<_> = rows.iter().filter(|r| r["id"] == 7).collect();
    assert_eq!(sevens.len(), 2);

    // Clean rows are published unchanged, flight_no converted to int32.
    let published = query_json(p.path(), "SELECT * FROM flights ORDER BY id");
    assert_eq!(published.len() as u64, rows_in - quarantined);
    let first = &published[0];
    assert_eq!(first["id"], 1);
    assert_eq!(first["flight_no"], 1545);
    assert_eq!(first["tailnum"], "N14228");
    assert_eq!(first["dep_delay"], 2);
    let ids: Vec<i64> = published
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=60).filter(|i| *i != 7).collect();
    assert_eq!(ids, expected);
    // The type is the contract's.
    let typed = query_json(
        p.path(),
        "SELECT arrow_typeof(flight_no) AS t FROM flights LIMIT 1",
    );
    assert_eq!(typed[0]["t"], "Int32");

    // The downstream table read only the published rows.
    let total = query_json(p.path(), "SELECT sum(n) AS n FROM by_carrier");
    assert_eq!(total[0]["n"], rows_in - quarantined);

    // The report has every rule with its count, and the run log has the counts.
    let report = ok(p.path(), &["report", "flights"]);
    assert!(report.contains("flight_no.type"), "{report}");
    assert!(report.contains("arrived_or_cancelled"), "{report}");
    let runs: serde_json::Value = serde_json::from_str(&ok(p.path(), &["runs", "--json"])).unwrap();
    let logged = runs[0]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["asset"] == "flights")
        .unwrap()
        .clone();
    assert_eq!(logged["rows_quarantined"], quarantined, "{logged}");

    // Up to date on the next run, still accounting for every row.
    let (_, again) = run_json(p.path(), &[]);
    let f = asset(&again, "flights");
    assert_eq!(f["status"], "up_to_date");
    assert_eq!(f["rows_in"], rows_in);
    assert_eq!(f["rows_quarantined"], quarantined);
}

#[test]
fn an_error_check_blocks_downstream_and_keeps_previous_versions_and_warn_flows_on() {
    let expect = |mean_max: f64| {
        format!(
            "{CONTRACT}\n[[sources.flights.contract.expect]]\ncolumn = \"dep_delay\"\nmean = {{ max = {mean_max} }}\n\n\
             [[sources.flights.contract.expect]]\ncolumn = \"time_hour\"\nfreshness = {{ max_age = \"1d\" }}\nseverity = \"warn\"\n\n\
             [[sources.flights.contract.expect]]\nrow_count = {{ min = 10 }}\n"
        )
    };
    let p = flights_project(&real_rows(), &expect(100.0));
    let (ok_run, first) = run_json(p.path(), &[]);
    assert!(ok_run, "{first}");
    let f = asset(&first, "flights");
    assert_eq!(f["status"], "built");
    // Freshness (data from 2013) is a warning: recorded, and the rows flow on.
    assert_eq!(f["warnings"], 1);
    assert_eq!(asset(&first, "by_carrier")["status"], "built");
    let report = ok(p.path(), &["report", "flights"]);
    assert!(report.contains("time_hour.freshness"), "{report}");
    assert!(report.to_lowercase().contains("fail"), "{report}");

    // New data whose mean delay breaks the error bound.
    let mut late = real_rows();
    for i in 0..30 {
        late.push_str(&format!(
            "{},1545,UA,N14228,517,900,905,1400,2013-01-02 10:00:00\n",
            100 + i
        ));
    }
    std::fs::write(p.path().join("data/flights.csv"), &late).unwrap();
    std::fs::write(
        p.path().join("sluice.toml"),
        std::fs::read_to_string(p.path().join("sluice.toml"))
            .unwrap()
            .replace("mean = { max = 100 }", "mean = { max = 60 }"),
    )
    .unwrap();
    let (ok_run, second) = run_json(p.path(), &[]);
    assert!(!ok_run);
    let f = asset(&second, "flights");
    assert_eq!(f["status"], "failed");
    let error = f["error"].as_str().unwrap();
    assert!(error.contains("dep_delay.mean"), "{error}");
    assert_eq!(f["version"], asset(&first, "flights")["version"]);
    assert_eq!(f["rows_in"], 90);
    let b = asset(&second, "by_carrier");
    assert_eq!(b["status"], "blocked");
    assert!(
        b["error"].as_str().unwrap().contains("dep_delay.mean"),
        "{b}"
    );
    // Both previous versions are still what is published.
    let n = query_json(p.path(), "SELECT count(*) AS n FROM flights");
    assert_eq!(n[0]["n"], 60);
    let n = query_json(p.path(), "SELECT sum(n) AS n FROM by_carrier");
    assert_eq!(n[0]["n"], 60);
    // The failed run's report says why; the history shows it.
    let report = ok(p.path(), &["report", "flights"]);
    assert!(report.contains("gate: closed"), "{report}");
    let quality = ok(p.path(), &["quality", "flights", "--days", "1"]);
    assert!(quality.contains("dep_delay.mean"), "{quality}");
    assert!(quality.contains("over 2 runs"), "{quality}");
}

#[test]
fn drift_is_measured_against_the_previous_version() {
    let drift = format!(
        "{CONTRACT}\n[[sources.flights.contract.expect]]\ncolumn = \"dep_delay\"\n\
         drift = {{ psi_max = 0.1, ks_max = 0.2, bins = 4 }}\nseverity = \"warn\"\n\n\
         [[sources.flights.contract.expect]]\ncolumn = \"carrier\"\n\
         drift = {{ psi_max = 0.1 }}\nseverity = \"warn\"\n"
    );
    let p = flights_project(&real_rows(), &drift);
    let (_, first) = run_json(p.path(), &[]);
    assert_eq!(asset(&first, "flights")["warnings"], 0);
    let report = ok(p.path(), &["report", "flights"]);
    assert!(report.contains("no previous version"), "{report}");

    // Shift every delay by an hour: the distribution moves entirely.
    let shifted: String = real_rows()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                return format!("{line}\n");
            }
            let mut f: Vec<String> = line.split(',').map(String::from).collect();
            f[5] = (f[5].parse::<i64>().unwrap() + 60).to_string();
            // And every flight moves to American.
            f[2] = "AA".to_string();
            format!("{}\n", f.join(","))
        })
        .collect();
    std::fs::write(p.path().join("data/flights.csv"), shifted).unwrap();
    let (ok_run, second) = run_json(p.path(), &[]);
    assert!(ok_run, "{second}");
    assert_eq!(asset(&second, "flights")["warnings"], 3);
    let json_path = p.path().join("report.json");
    ok(
        p.path(),
        &["report", "flights", "--output", json_path.to_str().unwrap()],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {report}"))
            .clone()
    };
    let ks = check("dep_delay.ks");
    assert_eq!(ks["verdict"], "fail");
    assert!(ks["observed"].as_f64().unwrap() > 0.9, "{ks}");
    let psi = check("dep_delay.psi");
    assert_eq!(psi["verdict"], "fail");
    assert_eq!(psi["histogram"]["reference_version"], 0);
    assert_eq!(psi["histogram"]["reference"].as_array().unwrap().len(), 4);
    // A text column drifts over its categories: one bin per carrier seen in either version.
    let carriers = check("carrier.psi");
    assert_eq!(carriers["verdict"], "fail", "{carriers}");
    let labels = carriers["histogram"]["labels"].as_array().unwrap();
    assert!(labels.contains(&serde_json::json!("AA")) && labels.contains(&serde_json::json!("UA")));
    let current = carriers["histogram"]["current"].as_array().unwrap();
    let aa = labels.iter().position(|l| l == "AA").unwrap();
    assert_eq!(current[aa], 1.0);
}

#[test]
fn contract_mistakes_are_reported_at_their_position() {
    let bad = r#"
[sources.flights.contract.columns.carier]
required = true

[sources.flights.contract.columns.tailnum]
min = 3

[sources.flights.contract.columns.dep_delay]
regex = '('

[[sources.flights.contract.expect]]
column = "dep_delay"
mean = { min = 5, max = 1 }
"#;
    let p = flights_project(&real_rows(), bad);
    let o = sluice(p.path(), &["check"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("invalid regex"), "{err}");
    assert!(err.contains("`min` 5 is larger than `max` 1"), "{err}");
    assert!(err.contains("sluice.toml:"), "{err}");
    // Fix the project-level mistakes: now the columns are checked against the data.
    let p = flights_project(
        &real_rows(),
        "[sources.flights.contract.columns.carier]\nrequired = true\n\n[sources.flights.contract.columns.tailnum]\nmin = 3\n",
    );
    let o = sluice(p.path(), &["check"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("column `carier`, which the asset does not have"),
        "{err}"
    );
    assert!(err.contains("sluice.toml:6:1"), "{err}");
    // One problem at a time for a source's contract: the first rule that does not fit.
    let o = sluice(p.path(), &["run"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("carier"), "{}", stderr(&o));
}

/// The browser for the report test: `SLUICE_TEST_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("SLUICE_TEST_CHROMIUM") {
        return Some(p.into());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    })
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs chromium for the report test (.ci/run installs it)"
        );
        eprintln!("skipping: no chromium on the PATH (set SLUICE_TEST_CHROMIUM)");
        return;
    };
    let drift = format!(
        "{CONTRACT}\n[[sources.flights.contract.expect]]\ncolumn = \"dep_delay\"\n\
         drift = {{ psi_max = 0.1, bins = 4 }}\nseverity = \"warn\"\n"
    );
    let mut csv = real_rows();
    csv.push_str(PLANTED[2].0);
    csv.push('\n');
    let p = flights_project(&csv, &drift);
    ok(p.path(), &["run"]);
    // A second version, so that the drift check has a histogram.
    csv.push_str("99,1545,UA,N14228,517,300,11,1400,2013-01-01 10:00:00\n");
    std::fs::write(p.path().join("data/flights.csv"), &csv).unwrap();
    ok(p.path(), &["run"]);
    let html = p.path().join("report.html");
    ok(
        p.path(),
        &["report", "flights", "--output", html.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "the page fetches nothing"
    );

    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    assert!(
        !log.contains("CONSOLE"),
        "the page logged to the console: {log}"
    );
    assert!(!log.contains("Failed to load"), "{log}");
    // What the page shows: the asset, the accounting, each check and its verdict.
    assert!(dom.contains("<h1>flights</h1>"), "{dom}");
    assert!(dom.contains("rows quarantined<b>1</b>"), "{dom}");
    assert!(dom.contains("dep_delay.min"), "{dom}");
    assert!(dom.contains("is below the minimum -60"), "{dom}");
    assert!(dom.contains("dep_delay.psi"), "{dom}");
    assert!(dom.contains("distribution against version 0"), "{dom}");
    assert!(dom.contains("<svg"), "{dom}");
}

#[test]
fn bad_input_under_a_contract_still_names_the_file_and_line() {
    let mut csv = real_rows();
    csv.push_str("71,1545,UA\n");
    let p = flights_project(&csv, CONTRACT);
    let o = sluice(p.path(), &["run"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("flights.csv:62: expected 9 fields, found 3"),
        "{err}"
    );
}

/// An unchanged source returned `up_to_date` before its expectations ran, so a
/// `freshness` check never fired on a feed that stopped — the case it exists
/// for. Now the check runs on every run, on the published version.
#[test]
fn freshness_fails_on_a_feed_that_stopped_though_nothing_changed() {
    let now = chrono::Utc::now();
    let csv: String = (0..3)
        .map(|i| {
            let t = now - chrono::Duration::seconds(i);
            format!("{i},{}\n", t.format("%Y-%m-%dT%H:%M:%SZ"))
        })
        .collect();
    let dir = project(&[
        (
            "sluice.toml",
            b"[project]\nname = \"feed\"\n\n[sources.events]\npath = \"events.csv\"\n\n\
              [[sources.events.contract.expect]]\ncolumn = \"at\"\nfreshness = { max_age = \"30s\" }\n\n\
              [tables.latest]\nsql = \"SELECT max(at) AS at FROM events\"\n",
        ),
        ("events.csv", format!("id,at\n{csv}").as_bytes()),
    ]);
    let (ok, first) = run_json(dir.path(), &[]);
    assert!(ok, "a fresh feed passes: {first}");
    assert_eq!(asset(&first, "events")["status"], "built");

    // The feed stops: no new file, nothing changes, but time passes (the
    // newest event is older than `max_age` once 30 s have passed since `now`;
    // a generous age, so that a slow first run still finds the feed fresh).
    let stale_at = now + chrono::Duration::seconds(32);
    if let Ok(wait) = (stale_at - chrono::Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
    let (ok, second) = run_json(dir.path(), &[]);
    assert!(!ok, "a stale feed fails the run: {second}");
    let events = asset(&second, "events");
    assert_eq!(events["status"], "failed", "{second}");
    let error = events["error"].as_str().unwrap_or_default();
    assert!(error.contains("freshness"), "{error}");
    assert!(error.contains("stays published"), "{error}");
    assert_eq!(events["version"], 0, "the published version is kept");
    assert_eq!(asset(&second, "latest")["status"], "blocked");

    // The report of the second run says so too.
    let report = stdout(&sluice(dir.path(), &["report", "events"]));
    assert!(report.to_lowercase().contains("fail"), "{report}");
}

/// Issue 15, item 10: one hour in a year of weather breaks a bound; its score
/// rounds to 1 at three decimals, and the report must not show it as `1.000`.
#[test]
fn a_failed_quarantine_check_shows_a_score_below_one() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{DataType, Float64Type};
    let weather = repo().join("examples/flights/data/weather.parquet");
    let file = std::fs::File::open(&weather).expect("weather.parquet");
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
    let columns = ["temp", "dewp", "humid", "wind_speed", "pressure", "visib"];
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
    let mut rows = 0;
    for batch in reader {
        let b = batch.expect("batch");
        rows += b.num_rows();
        for (c, v) in columns.iter().zip(values.iter_mut()) {
            let f = datafusion::arrow::compute::cast(
                b.column_by_name(c).expect("column"),
                &DataType::Float64,
            )
            .expect("float");
            v.extend(f.as_primitive::<Float64Type>().iter().flatten());
        }
    }
    // A bound that exactly one hour of the year breaks: the lowest or highest
    // value of a column, where no other hour has it.
    let (column, kind, bound) = columns
        .iter()
        .zip(values.iter_mut())
        .find_map(|(c, v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if v[0] < v[1] {
                Some((*c, "min", (v[0] + v[1]) / 2.0))
            } else if v[n - 1] > v[n - 2] {
                Some((*c, "max", (v[n - 1] + v[n - 2]) / 2.0))
            } else {
                None
            }
        })
        .expect("a column with one extreme hour");
    let toml = format!(
        "[project]\nname = \"s\"\n\n[sources.weather]\npath = \"weather.parquet\"\n\n\
         [sources.weather.contract.columns.{column}]\n{kind} = {bound:?}\n"
    );
    let p = project(&[
        ("sluice.toml", toml.as_bytes()),
        ("weather.parquet", &std::fs::read(&weather).expect("read")),
    ]);
    let (done, summary) = run_json(p.path(), &[]);
    assert!(done, "{summary}");
    assert_eq!(asset(&summary, "weather")["rows_quarantined"], 1);
    let score = 1.0 - 1.0 / rows as f64;
    assert_eq!(
        format!("{score:.3}"),
        "1.000",
        "the case the issue describes"
    );
    let report = ok(p.path(), &["report", "weather"]);
    let line = report
        .lines()
        .find(|l| l.contains(&format!("{column}.{kind}")))
        .unwrap_or_else(|| panic!("no {column}.{kind} in {report}"));
    assert!(line.contains("fail"), "{line}");
    assert!(!line.contains("1.000"), "{line}");
    assert!(
        line.contains(&sluice_validate::format_score(score)),
        "{line}"
    );
    assert!(line.contains("0.9999"), "{line}");
}
