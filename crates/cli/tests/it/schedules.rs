//! Schedules in a real `sluice serve`: a schedule that fires every second runs
//! its assets, and `sluice schedules` shows its last and next tick. Real time
//! is the point here, so the test waits (bounded) for the scheduler.

use std::time::{Duration, Instant};

use crate::common::{Lcg, Server, ok, project};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const PROJECT: &str = r#"[project]
name = "scheduled"

[sources.events]
path = "events.csv"

[tables.totals]
sql = "SELECT kind, sum(amount) AS amount FROM events GROUP BY kind"

[tables.unscheduled]
sql = "SELECT count(*) AS n FROM events"

[schedules.every_second]
every = "1s"
assets = ["totals"]
description = "keeps totals fresh"

[schedules.nightly]
cron = "0 30 2 * * *"
timezone = "Europe/Berlin"
enabled = false
"#;

/// The schedule called `name` in `sluice schedules --json`.
fn listed(dir: &std::path::Path, name: &str) -> serde_json::Value {
    let all = json(&ok(dir, &["schedules", "--json"]));
    all["schedules"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no schedule {name} in {all}"))
        .clone()
}

#[test]
fn serve_runs_a_schedule_and_schedules_lists_its_ticks() {
    let dir = project(&[
        ("sluice.toml", PROJECT.as_bytes()),
        ("events.csv", b"kind,amount\na,1\nb,2\na,3\n"),
    ]);
    let d = dir.path();

    // Before any scheduler ran: listed, never ticked.
    let table = ok(d, &["schedules"]);
    assert!(
        table.contains("every 1s") && table.contains("cron 0 30 2 * * *"),
        "{table}"
    );
    assert!(table.contains("Europe/Berlin"), "{table}");
    let nightly = listed(d, "nightly");
    assert_eq!(nightly["enabled"], false);
    assert!(nightly["next_tick"].is_null(), "{nightly}");
    assert!(listed(d, "every_second")["last_tick"].is_null());

    let server = Server::start(d);
    // A bounded wait for a tick's run to have succeeded.
    let deadline = Instant::now() + Duration::from_secs(120);
    let s = loop {
        let s = listed(d, "every_second");
        if s["last_tick"]["state"] == "succeeded" {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled run succeeded in time: {s}\n{}",
            server.log.lock().unwrap_or_else(|p| p.into_inner())
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(s["every"], "1s");
    assert!(s["cron"].is_null());
    assert_eq!(s["timezone"], "UTC");
    assert_eq!(s["enabled"], true);
    assert_eq!(s["catchup"], "latest");
    assert_eq!(s["max_catchup"], 10);
    assert_eq!(s["assets"], serde_json::json!(["totals"]));
    assert_eq!(s["description"], "keeps totals fresh");
    let tick = &s["last_tick"];
    assert_eq!(tick["run_state"], "succeeded");
    let due = tick["due_at"].as_str().expect("due_at");
    assert!(
        due.ends_with('Z') && !due.contains('.'),
        "a whole second: {due}"
    );
    let next = s["next_tick"].as_str().expect("next_tick");
    assert!(next > due, "{next} after {due}");
    assert!(s["enabled_since"].as_str().expect("enabled_since") <= due);
    let log = server.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        log.contains("scheduler on, 1 schedule (1 disabled)"),
        "{log}"
    );

    // The tick's run refreshed what the schedule names, and only that.
    let run_id = tick["run_id"].as_i64().expect("run_id");
    let runs = json(&ok(d, &["runs", "--json", "--limit", "1000"]));
    let run = runs
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["id"] == run_id)
        .unwrap_or_else(|| panic!("run {run_id} not in {runs}"));
    assert_eq!(run["state"], "succeeded");
    assert_eq!(run["targets"], serde_json::json!(["totals"]));
    let assets: Vec<&str> = run["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| a["asset"].as_str().expect("asset"))
        .collect();
    assert!(!assets.contains(&"unscheduled"), "{assets:?}");
    drop(server);

    let server = Server::start_with(d, &["--no-scheduler"]);
    let (status, _) = server.request("GET", "/healthz", None, None);
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = server.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if log.contains("scheduler off") {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `rows` events whose amounts sum to `rows * (rows + 1) / 2`.
fn events(rows: u64) -> String {
    let mut s = String::with_capacity(rows as usize * 12);
    s.push_str("kind,amount\n");
    for i in 1..=rows {
        s.push_str(if i % 3 == 0 { "a," } else { "b," });
        s.push_str(&i.to_string());
        s.push('\n');
    }
    s
}

fn scalar(d: &std::path::Path, sql: &str) -> i64 {
    crate::common::scalar(d, sql)
}

#[test]
fn serve_killed_at_random_moments_runs_each_tick_at_most_once() {
    let dir = project(&[(
        "sluice.toml",
        b"[project]\nname = \"killed\"\n\n[sources.events]\npath = \"events.csv\"\n\n\
          [tables.totals]\nsql = \"SELECT kind, sum(amount) AS amount, count(*) AS n FROM events GROUP BY kind\"\n\n\
          [schedules.often]\nevery = \"1s\"\nassets = [\"events+\"]\n",
    )]);
    let d = dir.path();
    let mut rng = Lcg::seeded("scheduled crash test");
    let seed = rng.0;
    let trials = 24;
    // Runs long enough beside a server's start-up for kills to land in them:
    // with 300,000 rows, once sources were written by a writer per core, a
    // seed could land none.
    let sizes: Vec<u64> = (0..=trials).map(|t| 1_000_000 + t).collect();
    // Kills land within twice the time a run of both assets takes: the tick a
    // restarted server runs at once starts after the server's start-up, and a
    // run takes about as long (with one window, most kills came before the
    // run or after it, and a seed could land none during one).
    std::fs::write(d.join("events.csv"), events(sizes[0])).expect("write");
    let started = Instant::now();
    ok(d, &["run"]);
    let window = (2 * started.elapsed().as_millis() as u64).max(400);
    for (trial, rows) in sizes.iter().enumerate().skip(1) {
        // New rows each trial: the tick after the restart rebuilds both assets.
        std::fs::write(d.join("events.csv"), events(*rows)).expect("write");
        let server = Server::start(d);
        std::thread::sleep(Duration::from_millis(rng.next() % window));
        drop(server); // SIGKILL
        // Every published version is whole: one of the files, all of it.
        let history = json(&ok(d, &["history", "events", "--json"]));
        for v in history.as_array().map_or(&[][..], |a| a.as_slice()) {
            let n = v["rows"].as_u64().expect("rows");
            assert!(sizes.contains(&n), "trial {trial}: a version of {n} rows");
        }
    }

    // The next run succeeds and publishes the newest file, whole.
    let last = sizes[trials as usize];
    ok(d, &["run"]);
    assert_eq!(scalar(d, "SELECT count(*) FROM events"), last as i64);
    assert_eq!(scalar(d, "SELECT sum(n) FROM totals"), last as i64);
    assert_eq!(
        scalar(d, "SELECT sum(amount) FROM totals"),
        (last * (last + 1) / 2) as i64
    );
    // Versions are consecutive: none lost, none doubled.
    for asset in ["events", "totals"] {
        let history = json(&ok(d, &["history", asset, "--json"]));
        let versions: Vec<u64> = history
            .as_array()
            .expect("history")
            .iter()
            .map(|v| v["version"].as_u64().expect("version"))
            .collect();
        let expected: Vec<u64> = (0..versions.len() as u64).rev().collect();
        assert_eq!(versions, expected, "{asset}");
    }

    // Killed runs are abandoned; the others succeeded.
    let runs = json(&ok(d, &["runs", "--json", "--limit", "10000"]));
    let runs = runs.as_array().expect("runs");
    let state = |id: i64| {
        runs.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["state"].as_str().expect("state").to_string())
    };
    assert!(
        runs.iter()
            .all(|r| r["state"] == "succeeded" || r["state"] == "abandoned"),
        "{runs:?}"
    );

    // Each tick is recorded once and started at most one run; a tick whose run
    // was killed stays `started` and its run is abandoned.
    let db = rusqlite::Connection::open(d.join(".sluice/sluice.db")).expect("open");
    let mut stmt = db
        .prepare("SELECT due_at, state, run_id FROM schedule_ticks WHERE schedule = 'often' ORDER BY due_at")
        .expect("prepare");
    let ticks: Vec<(String, String, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert!(!ticks.is_empty());
    let mut run_ids: Vec<i64> = ticks.iter().filter_map(|t| t.2).collect();
    let named = run_ids.len();
    run_ids.sort_unstable();
    run_ids.dedup();
    assert_eq!(
        run_ids.len(),
        named,
        "a run started by two ticks: {ticks:?}"
    );
    let mut killed = 0;
    for (due, tick_state, run_id) in &ticks {
        match (tick_state.as_str(), run_id) {
            ("succeeded", Some(id)) => {
                assert_eq!(state(*id).as_deref(), Some("succeeded"), "{due}")
            }
            // Killed during its run, or after the run ended but before the
            // tick heard of it.
            ("started", Some(id)) => {
                let s = state(*id);
                assert!(
                    matches!(s.as_deref(), Some("abandoned" | "succeeded")),
                    "{due}: {s:?}"
                );
                killed += usize::from(s.as_deref() == Some("abandoned"));
            }
            ("started", None) | ("skipped", None) => {}
            other => panic!("tick {due}: {other:?}"),
        }
    }
    // Every run the scheduler started belongs to one tick, but for at most one
    // per kill (killed after its run began, before the tick named it).
    let scheduled = runs
        .iter()
        .filter(|r| r["targets"] == serde_json::json!(["events", "totals"]))
        .count();
    assert!(
        scheduled >= named && scheduled - named <= trials as usize,
        "{scheduled} runs, {named} named by ticks"
    );
    eprintln!(
        "{} ticks, {named} runs, {killed} killed mid-run over {trials} kills",
        ticks.len()
    );
    assert!(
        killed >= 1,
        "no kill landed during a scheduled run (seed {seed})"
    );
}

/// A polled source and its downstream, both `on = "upstream"`, and a sibling
/// without a trigger.
const TRIGGERED: &str = r#"[project]
name = "triggered"
trigger_interval = "200ms"

[sources.events]
path = "events.csv"
on = "upstream"

[tables.totals]
sql = "SELECT sum(amount) AS amount FROM events"
on = "upstream"

[tables.counted]
sql = "SELECT count(*) AS n FROM events"
"#;

#[test]
fn serve_rebuilds_a_changed_source_and_its_downstream_on_upstream() {
    let dir = project(&[
        ("sluice.toml", TRIGGERED.as_bytes()),
        ("events.csv", b"kind,amount\na,1\nb,2\n"),
    ]);
    let d = dir.path();
    ok(d, &["run"]);
    assert_eq!(scalar(d, "SELECT amount FROM totals"), 3);
    let listed = json(&ok(d, &["schedules", "--json"]));
    let triggers = listed["triggers"].as_array().expect("triggers");
    let names: Vec<&str> = triggers
        .iter()
        .map(|t| t["asset"].as_str().expect("asset"))
        .collect();
    assert_eq!(names, ["events", "totals"], "{listed}");
    assert_eq!(triggers[0]["on"], "upstream");

    let server = Server::start(d);
    // The scheduler's first poll finds both up to date; then the file changes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains("2 assets with triggers")
    {
        assert!(Instant::now() < deadline, "the scheduler did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(d.join("events.csv"), "kind,amount\na,1\nb,2\nc,40\n").expect("write");
    let deadline = Instant::now() + Duration::from_secs(120);
    while scalar(d, "SELECT amount FROM totals") != 43 {
        assert!(
            Instant::now() < deadline,
            "totals was not rebuilt in time:\n{}",
            server.log.lock().unwrap_or_else(|p| p.into_inner())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(scalar(d, "SELECT count(*) FROM events"), 3);
    drop(server);
    // The sibling without a trigger was not rebuilt: still the old count.
    assert_eq!(scalar(d, "SELECT n FROM counted"), 2);
}
