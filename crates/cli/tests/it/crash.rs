//! Crash safety: real `sluice run` processes killed with SIGKILL at random moments
//! leave every published version intact; the next run succeeds; no row is lost or
//! duplicated.

use std::time::Instant;

use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::*;

/// Flights the example's contract publishes; the rest are quarantined.
const FLIGHTS: i64 = 335_597;
/// Flights the contract rejects (diverted flights, malformed tail numbers).
const QUARANTINED: i64 = 1_179;
/// Flights in the file.
const FLIGHTS_IN: i64 = 336_776;

/// The same flights one mile longer each, in a byte-different file: the counts
/// stay, but the source's rows differ, so it and everything downstream of it
/// must be rebuilt (a file with the very same rows would be cut off after the
/// source: its downstream would stay up to date).
fn recompressed_copy(from: &std::path::Path, to: &std::path::Path) {
    use datafusion::arrow::array::{Float64Array, RecordBatch};
    use datafusion::arrow::compute::{cast, kernels::numeric::add};
    use datafusion::arrow::datatypes::DataType;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(from).expect("open"))
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader
        .map(|b| {
            let b = b.expect("batch");
            let i = b.schema().index_of("distance").expect("distance");
            let distance = b.column(i);
            let longer = add(
                &cast(distance, &DataType::Float64).expect("cast"),
                &datafusion::arrow::array::Scalar::new(Float64Array::from(vec![1.0])),
            )
            .expect("add");
            let mut columns = b.columns().to_vec();
            columns[i] = cast(&longer, distance.data_type()).expect("cast back");
            RecordBatch::try_new(b.schema(), columns).expect("batch")
        })
        .collect();
    write_snappy_parquet(to, &batches);
}

/// Every published version is complete: counts match the source exactly, and
/// every flight is either published or quarantined.
fn assert_intact(p: &std::path::Path, trial: usize) {
    assert_eq!(
        scalar(p, "SELECT count(*) FROM flights__quarantine"),
        QUARANTINED,
        "trial {trial}: flights__quarantine"
    );
    assert_eq!(FLIGHTS + QUARANTINED, FLIGHTS_IN);
    assert_eq!(
        scalar(p, "SELECT count(*) FROM flights"),
        FLIGHTS,
        "trial {trial}: flights"
    );
    assert_eq!(
        scalar(p, "SELECT count(*) FROM flights_enriched"),
        FLIGHTS,
        "trial {trial}: flights_enriched"
    );
    assert_eq!(
        scalar(p, "SELECT sum(flights) FROM daily_delays"),
        FLIGHTS,
        "trial {trial}: daily_delays"
    );
    assert_eq!(
        scalar(p, "SELECT sum(flights) FROM carrier_summary"),
        FLIGHTS,
        "trial {trial}: carrier_summary"
    );
    // Batch predictions are whole, and the model registry answers.
    assert_eq!(
        scalar(p, "SELECT count(*) FROM late_predictions"),
        scalar(p, "SELECT count(*) FROM upcoming_flights"),
        "trial {trial}: late_predictions"
    );
    let m = sluice(p, &["model", "late", "--json"]);
    assert!(
        m.status.success(),
        "trial {trial}: sluice model: {}",
        stderr(&m)
    );
    // The online store opens (repaired if a write was cut) and answers.
    let o = sluice(p, &["get", "plane_delays", "N14228", "--json"]);
    assert!(
        o.status.success(),
        "trial {trial}: sluice get: {}",
        stderr(&o)
    );
}

/// The version of a feature view the online store holds.
fn online_version(p: &std::path::Path, view: &str, key: &str) -> serde_json::Value {
    let got: serde_json::Value =
        serde_json::from_str(&ok(p, &["get", view, key, "--json"])).expect("json");
    got["version"].clone()
}

#[test]
fn killed_runs_leave_published_versions_intact() {
    let dir = flights_copy();
    let p = dir.path();
    let original = p.join("data/flights.parquet");
    let other = p.join("data/flights-snappy.parquet");
    let kept = p.join("data/flights-zstd.parquet");
    std::fs::copy(&original, &kept).expect("copy");
    recompressed_copy(&original, &other);

    let started = Instant::now();
    ok(p, &["run"]);
    let full_run = started.elapsed();
    assert_intact(p, 0);

    // Kills land within the first 80% of a full run's time; rebuilding flights and
    // its downstream takes most of that. The window stays: a trial after a kill
    // that came before flights was published puts back the published file, and
    // its run has nothing to do.
    let mut kills = RandomKills::fixed(Lcg::seeded("crash test"), full_run, 4, 5);
    let trials = 24;
    for trial in 1..=trials {
        // Each trial changes the flights' distances (not their number), so the
        // source and everything downstream of it must be rebuilt.
        let next = if trial % 2 == 1 { &other } else { &kept };
        std::fs::copy(next, &original).expect("swap");
        let mut child = sluice_cmd(p)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        kills.kill(&mut child);
        assert_intact(p, trial);
    }
    eprintln!(
        "{} of {trials} kills landed while the run was in progress (window {} ms, {} failed first)",
        kills.landed,
        kills.window_ms(),
        kills.failed
    );
    assert!(
        kills.landed >= trials / 4,
        "only {} of {trials} kills landed during a run",
        kills.landed
    );

    // The next run succeeds and publishes a complete new set of versions.
    let (ok_run, summary) = run_json(p, &[]);
    assert!(ok_run, "{summary}");
    assert_intact(p, trials + 1);
    let history: serde_json::Value =
        serde_json::from_str(&ok(p, &["history", "flights", "--json"])).expect("json");
    for v in history.as_array().expect("array") {
        assert_eq!(v["rows"], FLIGHTS, "every version of flights is whole: {v}");
    }
    // Every feature view's (and the predictions') online copy is its newest
    // offline version.
    let flight = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT min(flight_id) FROM upcoming_flights",
        ],
    );
    let flight = flight.lines().nth(1).expect("a flight").trim().to_string();
    for (view, key) in [
        ("plane_delays", "N14228"),
        ("carrier_delays", "UA"),
        ("carrier_origins", "UA"),
        ("late_predictions", flight.as_str()),
    ] {
        let history: serde_json::Value =
            serde_json::from_str(&ok(p, &["history", view, "--json"])).expect("json");
        assert_eq!(
            online_version(p, view, key),
            history[0]["version"],
            "{view}"
        );
    }
    // Runs that were killed are marked abandoned, not left running.
    let runs: serde_json::Value =
        serde_json::from_str(&ok(p, &["runs", "--limit", "100", "--json"])).expect("json");
    assert!(
        runs.as_array()
            .expect("array")
            .iter()
            .all(|r| r["state"] != "running"),
        "{runs}"
    );
    // Every model version on record has its file: a kill between the file and
    // the registry row leaves at most a file no row names.
    let versions: serde_json::Value =
        serde_json::from_str(&ok(p, &["model", "late", "--json"])).expect("json");
    for v in versions.as_array().expect("array") {
        let file = p.join(format!(".sluice/models/late/v{}/model.json", v["version"]));
        assert!(file.is_file(), "{} is missing", file.display());
    }
}
