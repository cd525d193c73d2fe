//! Triggers on a real warehouse, driven by a set clock: `on = "upstream"` and
//! `freshness` start exactly the assets they should, and nothing waits for
//! time to pass.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use sluice_core::Clock;

use super::tests::{micros, open};
use super::{Scheduler, TriggerDone, trigger_list};
use crate::{Observer, Workspace};

struct Quiet;
impl Observer for Quiet {}

async fn run(ws: &Arc<Workspace>, targets: &[&str]) {
    let targets: Vec<String> = targets.iter().map(ToString::to_string).collect();
    let summary = crate::run(ws.clone(), &targets, Arc::new(Quiet))
        .await
        .expect("runs");
    assert!(summary.ok, "{:?}", summary.assets);
}

/// Moves the clock by `by` and takes one step; the poll's (and its run's)
/// outcome, or `None` when no poll started.
async fn step_after(
    scheduler: &mut Scheduler,
    clock: &Clock,
    by: chrono::Duration,
) -> Option<TriggerDone> {
    clock.set(clock.now_micros() + by.num_microseconds().expect("micros"));
    scheduler.step().expect("step");
    scheduler.triggered().await
}

fn started(done: &TriggerDone) -> Vec<&str> {
    done.started.iter().map(|(n, _)| n.as_str()).collect()
}

/// The assets a run attempted.
fn attempted(ws: &Workspace, run_id: i64) -> Vec<(String, String)> {
    let mut out: Vec<_> = ws
        .metadata
        .attempts(run_id)
        .expect("attempts")
        .into_iter()
        .map(|a| (a.asset, a.status))
        .collect();
    out.sort();
    out
}

fn poll() -> chrono::Duration {
    chrono::Duration::seconds(30)
}

#[tokio::test]
async fn on_upstream_starts_the_assets_whose_input_has_a_new_version_and_then_their_downstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:00:00Z"));
    let toml = "[project]\nname = \"t\"\n\n\
        [sources.events]\npath = \"events.csv\"\n\n\
        [sources.users]\npath = \"users.csv\"\n\n\
        [tables.big]\nsql = \"SELECT * FROM events WHERE amount > 6\"\non = \"upstream\"\n\n\
        [tables.total]\nsql = \"SELECT sum(amount) AS total FROM big\"\non = \"upstream\"\n\n\
        [tables.names]\nsql = \"SELECT * FROM users\"\non = \"upstream\"\n\n\
        [tables.other]\nsql = \"SELECT count(*) AS n FROM events\"\n";
    let ws = open(
        dir.path(),
        &[
            ("sluice.toml", toml),
            ("events.csv", "id,amount\n1,10\n2,20\n3,5\n"),
            ("users.csv", "id,name\n1,a\n"),
        ],
        &clock,
    );
    run(&ws, &[]).await;
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    assert_eq!((scheduler.len(), scheduler.triggers()), (0, 3));

    // Everything is up to date: the first poll starts nothing.
    let first = step_after(&mut scheduler, &clock, chrono::Duration::zero())
        .await
        .expect("a poll");
    assert!(first.started.is_empty(), "{first:?}");
    assert_eq!(first.run_id, None);
    // Before the next poll is due nothing is looked at.
    let wake = scheduler.step().expect("step");
    assert_eq!(
        wake.map(|w| w.timestamp_micros()),
        Some(clock.now_micros() + poll().num_microseconds().expect("micros"))
    );
    assert!(scheduler.triggered().await.is_none());

    // A new version of `events` (built by hand, as another run would).
    std::fs::write(
        dir.path().join("events.csv"),
        "id,amount\n1,10\n2,20\n3,5\n4,30\n",
    )
    .expect("write");
    run(&ws, &["events"]).await;
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    // `big` reads `events`; not `names` (its input did not change), not
    // `other` (no trigger), not yet `total` (`big` has no new version yet).
    assert_eq!(started(&done), ["big"], "{done:?}");
    assert!(done.started[0].1.starts_with("on upstream:"), "{done:?}");
    assert!(done.ok);
    let run_id = done.run_id.expect("a run");
    assert_eq!(
        attempted(&ws, run_id),
        [
            ("big".to_string(), "built".to_string()),
            ("events".to_string(), "up_to_date".to_string())
        ]
    );
    // The cascade: at the next poll `big` has a new version, so `total` runs.
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["total"], "{done:?}");
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert!(done.started.is_empty(), "{done:?}");
}

#[tokio::test]
async fn a_watched_source_runs_when_its_files_change_and_not_when_only_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:00:00Z"));
    let toml = "[project]\nname = \"t\"\n\n\
        [sources.events]\npath = \"data/*.csv\"\non = \"upstream\"\n\n\
        [tables.big]\nsql = \"SELECT * FROM events WHERE amount > 6\"\n";
    let ws = open(
        dir.path(),
        &[
            ("sluice.toml", toml),
            ("data/a.csv", "id,amount\n1,10\n2,20\n"),
        ],
        &clock,
    );
    run(&ws, &[]).await;
    let runs = |ws: &Workspace| ws.metadata.runs(100).expect("runs").len();
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    // The first poll has no listing to compare with: it checks, and finds
    // the source up to date.
    let done = step_after(&mut scheduler, &clock, chrono::Duration::zero())
        .await
        .expect("a poll");
    assert_eq!(
        (done.checked.as_slice(), done.started.len()),
        (&["events".to_string()][..], 0)
    );
    // The same listing: not even checked.
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert!(
        done.checked.is_empty() && done.started.is_empty(),
        "{done:?}"
    );

    // Touched: a new modification time, the same content. Checked (its
    // content hashed), found up to date, nothing run.
    let file = std::fs::File::options()
        .write(true)
        .open(dir.path().join("data/a.csv"))
        .expect("open");
    file.set_modified(SystemTime::now() + Duration::from_secs(3600))
        .expect("touch");
    drop(file);
    let before = runs(&ws);
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert_eq!(done.checked, ["events"], "{done:?}");
    assert!(done.started.is_empty(), "{done:?}");
    assert_eq!(runs(&ws), before, "nothing ran");

    // A file added: the source runs, and only the source.
    std::fs::write(dir.path().join("data/b.csv"), "id,amount\n3,30\n").expect("write");
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["events"], "{done:?}");
    assert_eq!(
        attempted(&ws, done.run_id.expect("a run")),
        [("events".to_string(), "built".to_string())]
    );
    // A file changed: it runs again.
    std::fs::write(dir.path().join("data/a.csv"), "id,amount\n1,11\n2,20\n").expect("write");
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["events"], "{done:?}");
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert!(done.started.is_empty(), "{done:?}");
}

#[tokio::test]
async fn freshness_runs_an_asset_when_its_age_passes_max_age_less_the_lead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:00:00Z"));
    let toml = "[project]\nname = \"t\"\n\n\
        [sources.events]\npath = \"events.csv\"\n\n\
        [tables.big]\nsql = \"SELECT * FROM events WHERE amount > 6\"\n\
        freshness = { max_age = \"1h\" }\n\n\
        [tables.other]\nsql = \"SELECT count(*) AS n FROM events\"\n";
    let ws = open(
        dir.path(),
        &[
            ("sluice.toml", toml),
            ("events.csv", "id,amount\n1,10\n2,20\n"),
        ],
        &clock,
    );
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    assert_eq!(scheduler.triggers(), 1);
    let last_fresh = |ws: &Workspace| -> DateTime<Utc> {
        ws.metadata
            .last_fresh("big")
            .expect("read")
            .expect("fresh once")
            .ended_at
    };
    let until = |t: DateTime<Utc>, clock: &Clock| {
        chrono::Duration::microseconds(t.timestamp_micros() - clock.now_micros())
    };

    // Never built: due at once; its run builds it (and its upstream), not `other`.
    let done = step_after(&mut scheduler, &clock, chrono::Duration::zero())
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["big"], "{done:?}");
    assert!(done.started[0].1.contains("never built"), "{done:?}");
    assert_eq!(
        attempted(&ws, done.run_id.expect("a run")),
        [
            ("big".to_string(), "built".to_string()),
            ("events".to_string(), "built".to_string())
        ]
    );
    let built = last_fresh(&ws);
    // Due at 54 minutes of age (1h less a lead of 6m); the scheduler wakes then.
    let due = built + chrono::Duration::minutes(54);
    let wake = scheduler.step().expect("step");
    assert_eq!(wake, Some(due));
    let early = until(due, &clock) - chrono::Duration::seconds(1);
    assert!(step_after(&mut scheduler, &clock, early).await.is_none());
    let done = step_after(&mut scheduler, &clock, chrono::Duration::seconds(1))
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["big"], "{done:?}");
    assert!(done.started[0].1.starts_with("freshness: 54m"), "{done:?}");
    // Nothing changed: found up to date, which proves it fresh.
    assert_eq!(
        attempted(&ws, done.run_id.expect("a run")),
        [
            ("big".to_string(), "up_to_date".to_string()),
            ("events".to_string(), "up_to_date".to_string())
        ]
    );
    let checked = last_fresh(&ws);
    assert!(checked >= due, "the age starts again from the check");
    assert!(
        step_after(&mut scheduler, &clock, chrono::Duration::minutes(53))
            .await
            .is_none(),
        "53 minutes after the check it is not due"
    );
    let listed = trigger_list(&ws).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].asset, "big");
    assert_eq!(listed[0].last_fresh, Some(checked));
    assert_eq!(
        listed[0].next_due,
        Some(checked + chrono::Duration::minutes(54))
    );
    assert!(!listed[0].on_upstream);
}

#[tokio::test]
async fn a_failing_triggered_asset_is_not_started_again_until_something_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:00:00Z"));
    let toml = "[project]\nname = \"t\"\n\n\
        [sources.events]\npath = \"events.csv\"\non = \"upstream\"\n";
    let ws = open(
        dir.path(),
        &[("sluice.toml", toml), ("events.csv", "id,amount\n1,10\n")],
        &clock,
    );
    run(&ws, &[]).await;
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    step_after(&mut scheduler, &clock, chrono::Duration::zero())
        .await
        .expect("a poll");
    // A row with a field too many: the build fails.
    std::fs::write(dir.path().join("events.csv"), "id,amount\n1,10\n2,20,30\n").expect("write");
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["events"], "{done:?}");
    assert!(!done.ok, "{done:?}");
    // Same broken files: checked again only if they change.
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert!(done.started.is_empty(), "{done:?}");
    std::fs::write(dir.path().join("events.csv"), "id,amount\n1,10\n2,20\n").expect("write");
    let done = step_after(&mut scheduler, &clock, poll())
        .await
        .expect("a poll");
    assert_eq!(started(&done), ["events"], "{done:?}");
    assert!(done.ok, "{done:?}");
}

#[tokio::test]
async fn a_triggered_run_that_cannot_start_yet_waits_and_no_second_one_starts_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::at(micros("2026-05-04T10:00:00Z"));
    let toml = "[project]\nname = \"t\"\n\n\
        [sources.events]\npath = \"events.csv\"\nfreshness = { max_age = \"1h\" }\non = \"upstream\"\n";
    let ws = open(
        dir.path(),
        &[("sluice.toml", toml), ("events.csv", "id,amount\n1,10\n")],
        &clock,
    );
    let mut scheduler = Scheduler::new(ws.clone())
        .expect("scheduler")
        .with_retry(Duration::from_millis(1));
    // Another process holds the warehouse.
    let held = ws.run_lock.acquire().expect("free");
    scheduler.step().expect("step");
    // The poll's task tries (and is refused) before this test goes on: one thread.
    tokio::task::yield_now().await;
    assert!(ws.metadata.runs(10).expect("runs").is_empty());
    // A poll due meanwhile does not start a second triggered run.
    clock.set(clock.now_micros() + poll().num_microseconds().expect("micros"));
    scheduler.step().expect("step");
    drop(held);
    let done = scheduler.triggered().await.expect("the poll ended");
    assert_eq!(started(&done), ["events"], "{done:?}");
    assert!(done.ok, "{done:?}");
    assert!(scheduler.triggered().await.is_none(), "one poll in flight");
    assert_eq!(ws.metadata.runs(10).expect("runs").len(), 1);
}
