//! The scheduler on a real warehouse, driven by a set clock: every test says
//! what "now" is, and none waits for time to pass.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sluice_core::Clock;
use sluice_project::{Cadence, Catchup, ScheduleDef};
use sluice_store::{RunState, TickState};

use super::{Scheduler, schedule_list, targets};
use crate::Workspace;

/// A schedule that fires at `cadence` (`"cron 30 2 * * *"`, `"every 15m"`) in
/// `tz`, refreshing every asset, with the defaults.
pub(crate) fn schedule(cadence: &str, tz: Tz) -> ScheduleDef {
    let cadence = match cadence.split_once(' ') {
        Some(("cron", text)) => Cadence::Cron {
            text: text.to_string(),
            pattern: Box::new(
                croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Optional)
                    .build()
                    .parse(text)
                    .expect("a cron pattern"),
            ),
        },
        Some(("every", text)) => Cadence::Every {
            text: text.to_string(),
            value: sluice_core::parse_duration(text).expect("a duration"),
        },
        _ => panic!("write `cron ...` or `every ...`"),
    };
    ScheduleDef {
        name: "s".into(),
        location: sluice_core::Location::new(std::path::Path::new("sluice.toml"), 1, 1),
        cadence,
        timezone: tz,
        assets: vec![],
        catchup: Catchup::Latest,
        max_catchup: 10,
        enabled: true,
        description: None,
    }
}

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

pub(crate) fn micros(s: &str) -> i64 {
    at(s).timestamp_micros()
}

/// The workspace of the project `files` (`sluice.toml` among them) written
/// into `dir`, on `clock`.
pub(crate) fn open(dir: &std::path::Path, files: &[(&str, &str)], clock: &Clock) -> Arc<Workspace> {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let project = sluice_project::load(dir, None).expect("the project compiles");
    let mut ws = Workspace::open(project).expect("the warehouse opens");
    ws.clock = clock.clone();
    Arc::new(ws)
}

/// A project of one small source, a table over it and a table over that, with
/// `schedules` appended; its workspace's clock is `clock`.
fn workspace(dir: &std::path::Path, schedules: &str, clock: &Clock) -> Arc<Workspace> {
    let toml = format!(
        "[project]\nname = \"t\"\n\n[sources.events]\npath = \"events.csv\"\n\n\
         [tables.big]\nsql = \"SELECT * FROM events WHERE amount > 6\"\n\n\
         [tables.total]\nsql = \"SELECT sum(amount) AS total FROM big\"\n\n\
         [tables.other]\nsql = \"SELECT count(*) AS n FROM events\"\n\n{schedules}"
    );
    open(
        dir,
        &[
            ("events.csv", "id,amount\n1,10\n2,20\n3,5\n"),
            ("sluice.toml", &toml),
        ],
        clock,
    )
}

fn ticks(ws: &Workspace, schedule: &str) -> Vec<(String, TickState, Option<i64>)> {
    let mut out: Vec<_> = ws
        .metadata
        .ticks(schedule, 10_000)
        .expect("ticks")
        .into_iter()
        .map(|t| (t.due_at.format("%d %H:%M").to_string(), t.state, t.run_id))
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn a_due_tick_is_recorded_then_run_and_never_returned_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:30:00Z"));
    let ws = workspace(
        dir.path(),
        "[schedules.hourly]\ncron = \"0 * * * *\"\n",
        &clock,
    );
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    assert_eq!(scheduler.len(), 1);
    // Enabled at 10:30: the 10:00 tick is older, so nothing is due.
    assert_eq!(
        scheduler.step().expect("step"),
        Some(at("2026-05-04T11:00:00Z"))
    );
    assert!(ticks(&ws, "hourly").is_empty());

    clock.set(micros("2026-05-04T11:00:01Z"));
    scheduler.step().expect("step");
    // Recorded before its run started.
    assert_eq!(
        ticks(&ws, "hourly")[0].1,
        TickState::Started,
        "the tick is recorded before its run"
    );
    let done = scheduler.finished().await.expect("a tick ran");
    assert_eq!(done.due_at, at("2026-05-04T11:00:00Z"));
    assert_eq!(done.state, TickState::Succeeded);
    let run_id = done.run_id.expect("a run");
    assert_eq!(
        ticks(&ws, "hourly"),
        [("04 11:00".to_string(), TickState::Succeeded, Some(run_id))]
    );
    assert_eq!(
        ws.metadata.run(run_id).expect("run").map(|r| r.state),
        Some(RunState::Succeeded)
    );

    // The same moment again, and a restarted scheduler: nothing runs twice.
    assert_eq!(
        scheduler.step().expect("step"),
        Some(at("2026-05-04T12:00:00Z"))
    );
    let mut restarted = Scheduler::new(ws.clone()).expect("scheduler");
    restarted.step().expect("step");
    assert!(scheduler.finished().await.is_none());
    assert!(restarted.finished().await.is_none());
    assert_eq!(ws.metadata.runs(10).expect("runs").len(), 1);

    let list = schedule_list(&ws).expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].last_run_state, Some(RunState::Succeeded));
    assert_eq!(list[0].next_tick, Some(at("2026-05-04T12:00:00Z")));
    assert_eq!(list[0].enabled_since, Some(at("2026-05-04T10:30:00Z")));
}

#[tokio::test]
async fn two_schedulers_on_one_database_run_a_tick_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:30:00Z"));
    let ws = workspace(
        dir.path(),
        "[schedules.hourly]\ncron = \"0 * * * *\"\n",
        &clock,
    );
    // A second process: its own connection to the same database.
    let other = {
        let project = sluice_project::load(dir.path(), None).expect("compiles");
        let mut ws = Workspace::open(project).expect("opens");
        ws.clock = clock.clone();
        Arc::new(ws)
    };
    let mut one = Scheduler::new(ws.clone()).expect("scheduler");
    let mut two = Scheduler::new(other).expect("scheduler");
    clock.set(micros("2026-05-04T11:00:00Z"));
    one.step().expect("step");
    two.step().expect("step");
    let a = one.finished().await;
    let b = two.finished().await;
    assert_eq!(
        usize::from(a.is_some()) + usize::from(b.is_some()),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(ticks(&ws, "hourly").len(), 1);
    assert_eq!(ws.metadata.runs(10).expect("runs").len(), 1);
}

/// The newest tick recorded is 10:00 (run, ended 10:01); the scheduler comes
/// back at 15:20.
async fn after_downtime(catchup: &str) -> (tempfile::TempDir, Arc<Workspace>, Vec<DateTime<Utc>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T09:30:00Z"));
    let ws = workspace(
        dir.path(),
        &format!("[schedules.hourly]\ncron = \"0 * * * *\"\n{catchup}\nassets = [\"other\"]\n"),
        &clock,
    );
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    clock.set(micros("2026-05-04T10:00:00Z"));
    scheduler.step().expect("step");
    scheduler.finished().await.expect("the 10:00 tick ran");
    drop(scheduler);

    clock.set(micros("2026-05-04T15:20:00Z"));
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    let mut ran = vec![];
    loop {
        scheduler.step().expect("step");
        match scheduler.finished().await {
            Some(done) => ran.push(done.due_at),
            None => break,
        }
    }
    (dir, ws, ran)
}

#[tokio::test]
async fn after_downtime_skip_runs_no_missed_tick_and_records_them_skipped() {
    let (_dir, ws, ran) = after_downtime("catchup = \"skip\"").await;
    assert!(ran.is_empty());
    let states: Vec<_> = ticks(&ws, "hourly")
        .into_iter()
        .map(|t| (t.0, t.1))
        .collect();
    let skipped = |h: &str| (format!("04 {h}:00"), TickState::Skipped);
    assert_eq!(
        states,
        [
            ("04 10:00".to_string(), TickState::Succeeded),
            skipped("11"),
            skipped("12"),
            skipped("13"),
            skipped("14"),
            skipped("15")
        ]
    );
}

#[tokio::test]
async fn after_downtime_latest_runs_the_newest_missed_tick() {
    let (_dir, ws, ran) = after_downtime("").await;
    assert_eq!(ran, [at("2026-05-04T15:00:00Z")]);
    let t = ticks(&ws, "hourly");
    assert_eq!(t.len(), 6);
    assert!(t[1..5].iter().all(|t| t.1 == TickState::Skipped), "{t:?}");
    assert_eq!(t[5].1, TickState::Succeeded);
    // The schedule refreshed `other` only (and its upstream).
    let run = ws
        .metadata
        .attempts(t[5].2.expect("a run"))
        .expect("attempts");
    let assets: Vec<_> = run.iter().map(|a| a.asset.as_str()).collect();
    assert_eq!(assets.len(), 2, "{assets:?}");
    assert!(assets.contains(&"other") && assets.contains(&"events"));
}

#[tokio::test]
async fn after_downtime_all_runs_the_newest_missed_ticks_up_to_the_cap_oldest_first() {
    let (_dir, ws, ran) = after_downtime("catchup = \"all\"\nmax_catchup = 3").await;
    assert_eq!(
        ran,
        [
            at("2026-05-04T13:00:00Z"),
            at("2026-05-04T14:00:00Z"),
            at("2026-05-04T15:00:00Z")
        ]
    );
    let t = ticks(&ws, "hourly");
    let states: Vec<_> = t.iter().map(|t| t.1).collect();
    use TickState::{Skipped, Succeeded};
    assert_eq!(
        states,
        [Succeeded, Skipped, Skipped, Succeeded, Succeeded, Succeeded]
    );
}

#[tokio::test]
async fn a_disabled_schedule_does_not_run_and_starts_afresh_when_enabled_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:30:00Z"));
    let ws = workspace(
        dir.path(),
        "[schedules.hourly]\ncron = \"0 * * * *\"\n",
        &clock,
    );
    Scheduler::new(ws.clone()).expect("scheduler");
    assert_eq!(
        ws.metadata.schedule_enabled_since("hourly").expect("since"),
        Some(at("2026-05-04T10:30:00Z"))
    );
    let off = workspace(
        dir.path(),
        "[schedules.hourly]\ncron = \"0 * * * *\"\nenabled = false\n",
        &clock,
    );
    clock.set(micros("2026-05-04T12:00:00Z"));
    let mut scheduler = Scheduler::new(off.clone()).expect("scheduler");
    assert!(scheduler.is_empty());
    assert_eq!(scheduler.step().expect("step"), None);
    let list = schedule_list(&off).expect("list");
    assert_eq!((list[0].enabled_since, list[0].next_tick), (None, None));
    // Enabled again at 13:30: the ticks of 11:00 to 13:00 were never its own.
    clock.set(micros("2026-05-04T13:30:00Z"));
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    scheduler.step().expect("step");
    assert!(scheduler.finished().await.is_none());
    assert!(ticks(&ws, "hourly").is_empty());
}

#[tokio::test]
async fn a_tick_whose_run_cannot_start_yet_waits_and_is_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:30:00Z"));
    let ws = workspace(
        dir.path(),
        "[schedules.hourly]\ncron = \"0 * * * *\"\n",
        &clock,
    );
    let mut scheduler = Scheduler::new(ws.clone())
        .expect("scheduler")
        .with_retry(std::time::Duration::from_millis(1));
    // Another process holds the warehouse.
    let held = ws.run_lock.acquire().expect("free");
    clock.set(micros("2026-05-04T11:00:00Z"));
    scheduler.step().expect("step");
    // The tick's task tries (and is refused) before this test goes on: one thread.
    tokio::task::yield_now().await;
    assert!(ws.metadata.runs(10).expect("runs").is_empty());
    assert_eq!(ticks(&ws, "hourly")[0].1, TickState::Started);
    drop(held);
    let done = scheduler.finished().await.expect("the tick ran");
    assert_eq!(done.state, TickState::Succeeded);
    assert_eq!(ws.metadata.runs(10).expect("runs").len(), 1);
}

#[test]
fn a_schedule_refreshes_its_assets_and_with_a_plus_their_downstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(0);
    let ws = workspace(
        dir.path(),
        "[schedules.a]\nevery = \"1h\"\nassets = [\"big+\"]\n\n[schedules.b]\nevery = \"1h\"\nassets = [\"+total\", \"other\"]\n\n[schedules.c]\nevery = \"1h\"\n",
        &clock,
    );
    let p = &ws.project;
    assert_eq!(targets(p, &p.schedules["a"]), ["big", "total"]);
    let mut b = targets(p, &p.schedules["b"]);
    b.sort();
    assert_eq!(b, ["other", "total"]);
    assert!(targets(p, &p.schedules["c"]).is_empty());
}

#[tokio::test]
async fn a_spawned_scheduler_stops_when_asked_and_when_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:30:00Z"));
    let ws = workspace(
        dir.path(),
        "[schedules.hourly]\ncron = \"0 * * * *\"\n",
        &clock,
    );
    let handle = super::spawn(ws.clone()).expect("spawn");
    assert_eq!(handle.schedules(), 1);
    // Nothing is due at 10:30: it sleeps, and stopping ends its loop.
    handle.stop().await;
    let handle = super::spawn(ws.clone()).expect("spawn");
    drop(handle);
    assert!(ticks(&ws, "hourly").is_empty());
}

#[test]
fn a_schedule_lags_by_the_wait_of_its_oldest_unrecorded_due_tick() {
    let def = schedule("every 15m", Tz::UTC);
    let since = at("2026-03-01T00:00:00Z");
    let tick = |due: &str| sluice_store::TickRecord {
        schedule: "s".into(),
        due_at: at(due),
        state: TickState::Succeeded,
        run_id: Some(1),
        recorded_at: at(due),
        finished_at: Some(at(due)),
    };
    let lag = |last: Option<&sluice_store::TickRecord>, now: &str| {
        super::lag(&def, Some(since), last, at(now)).as_secs()
    };
    // Recorded up to 00:15; 00:30 is due 40 minutes later and still not recorded.
    assert_eq!(
        lag(Some(&tick("2026-03-01T00:15:00Z")), "2026-03-01T01:10:00Z"),
        40 * 60
    );
    // The next tick is not due yet: no lag.
    assert_eq!(
        lag(Some(&tick("2026-03-01T00:15:00Z")), "2026-03-01T00:29:00Z"),
        0
    );
    // Nothing recorded yet: measured from its first tick once enabled (00:00).
    assert_eq!(lag(None, "2026-03-01T00:20:00Z"), 20 * 60);
    // Never seen enabled by a scheduler, or disabled: no lag.
    assert_eq!(
        super::lag(&def, None, None, at("2026-03-01T05:00:00Z")),
        std::time::Duration::ZERO
    );
    let off = ScheduleDef {
        enabled: false,
        ..def.clone()
    };
    assert_eq!(
        super::lag(&off, Some(since), None, at("2026-03-01T05:00:00Z")),
        std::time::Duration::ZERO
    );
}
