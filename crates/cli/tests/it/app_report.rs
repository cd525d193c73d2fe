//! `examples/app-report`, the seed's nightly report workflow, end to end on
//! its real data (Lahman 2011-2020): SQL, the Python step, the keyed export,
//! and the schedule that `sluice serve` would fire.

use crate::common::*;

#[test]
fn the_report_workflow_builds_a_keyed_report_and_its_schedule_is_listed() {
    let Some(python) = python() else {
        return;
    };
    let dir = example_copy("app-report");
    // The step runs `python3`: the one with pyarrow comes first on the PATH.
    let bin = std::path::Path::new(&python)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        let o = sluice_cmd(dir.path())
            .args(args)
            .env("PATH", &path)
            .output()
            .expect("runs");
        let text = stdout(&o);
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("no JSON ({e}):\n{text}\n{}", stderr(&o)));
        (o.status.success(), v)
    };
    let (ok, summary) = run(&["run", "--json"]);
    assert!(ok, "{summary}");
    for a in [
        "batting",
        "people",
        "season_lines",
        "ranked",
        "report",
        "player_report",
    ] {
        assert_eq!(asset(&summary, a)["status"], "built", "{summary}");
    }
    // 10 seasons of batting lines, one per player-season after stints merge.
    assert_eq!(asset(&summary, "batting")["rows_out"], 14568);
    assert_eq!(asset(&summary, "season_lines")["rows_out"], 13340);
    assert_eq!(asset(&summary, "ranked")["rows_out"], 13340);

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/player_report.json")).expect("the export"),
    )
    .expect("JSON");
    assert_eq!(report.as_object().map(|o| o.len()), Some(3568));
    // Mike Trout's 2020 (60-game season): 17 HR, .281/.390/.603, a qualified hitter.
    let trout = &report["troutmi01"];
    assert_eq!(trout["name"], "Mike Trout");
    // An entry keeps the query's column order (the key taken out).
    let keys: Vec<&str> = trout
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.first().copied(), Some("name"), "{trout}");
    assert_eq!(keys.last().copied(), Some("avg_2011_2020"), "{trout}");
    assert_eq!(trout["season"], 2020);
    assert_eq!(trout["hr"], 17);
    assert_eq!(trout["qualified"], true);
    let close = |v: &serde_json::Value, x: f64| v.as_f64().is_some_and(|v| (v - x).abs() < 5e-4);
    assert!(close(&trout["avg"], 0.281), "{trout}");
    assert!(close(&trout["obp"], 0.390), "{trout}");
    assert!(close(&trout["slg"], 0.603), "{trout}");
    let pct = trout["ops_percentile"].as_f64().expect("ranked");
    assert!((90.0..=100.0).contains(&pct), "{trout}");

    // Nothing changed: the next run rebuilds nothing, the step included.
    let (ok, again) = run(&["run", "--json"]);
    assert!(ok);
    assert!(
        statuses(&again).iter().all(|(_, s)| s == "up_to_date"),
        "{again}"
    );

    // The schedule fires at 02:00 in Tokyo: 17:00 UTC.
    let (ok, schedules) = run(&["schedules", "--json"]);
    assert!(ok, "{schedules}");
    let text = schedules.to_string();
    assert!(
        text.contains("nightly") && text.contains("Asia/Tokyo"),
        "{text}"
    );
    assert!(text.contains("T17:00:00Z"), "{text}");
}
