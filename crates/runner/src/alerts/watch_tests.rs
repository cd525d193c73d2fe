//! The alerts' timer and resumed deliveries, on the workspace's clock and a
//! webhook receiver on loopback: a reminder is sent once `repeat` has passed
//! with no run to find it, once however often the timer and runs look; an
//! asset older than its `max_age` is told once and recovers once; a delivery
//! left pending by an outbox that is gone is sent by the next, once, and one
//! whose outbox lives is left to it.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::AssetStatus;
use sluice_store::{DeliveryState, NewDelivery, OutboxLock};

use super::tests::{Hook, Sink, run_and_settle, status, workspace, write_flights};
use super::{resume, watch};
use crate::Workspace;

const HOUR: i64 = 3_600_000_000;

async fn settle(ws: &Workspace) {
    assert!(
        ws.outbox.wait(Duration::from_secs(60)).await,
        "deliveries end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_sends_a_due_reminder_once_with_no_run_to_find_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (_sink, port) = Sink::start().await;
    let ws = Arc::new(workspace(dir.path(), &url, port, ""));
    let t0 = ws.clock.now_micros();
    let first = run_and_settle(&ws).await;
    assert_eq!(status(&first, "delays"), AssetStatus::Failed);
    assert_eq!(hook.events(), ["failure"]);

    // Within `repeat`: nothing.
    ws.clock.set(t0 + HOUR / 2);
    watch(&ws);
    settle(&ws).await;
    assert_eq!(hook.events(), ["failure"]);

    // Past it, and no run: the scheduler's timer reminds, with the newest
    // run's error, and looks again a `trigger_interval` later.
    ws.clock.set(t0 + 2 * HOUR);
    let mut scheduler = crate::schedule::Scheduler::new(ws.clone()).expect("scheduler");
    let wake = scheduler.step().expect("a step");
    assert!(wake.is_some_and(|w| w > ws.now()), "{wake:?}");
    settle(&ws).await;
    assert_eq!(hook.events(), ["failure", "reminder"]);
    let reminder = hook.bodies.lock().expect("lock")[1].clone();
    assert_eq!(reminder["incident_run_id"], first.run_id);
    assert_eq!(reminder["run_id"], first.run_id);
    assert!(
        reminder["error"]
            .as_str()
            .is_some_and(|e| e.contains("Cannot cast")),
        "{reminder}"
    );
    // Told: neither the timer again nor a run at the same time repeats it.
    watch(&ws);
    run_and_settle(&ws).await;
    assert_eq!(hook.events(), ["failure", "reminder"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_older_than_its_max_age_is_told_once_and_recovers_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (_sink, port) = Sink::start().await;
    let extra = format!(
        "[tables.recent]\nsql = \"SELECT carrier FROM flights\"\nfreshness = {{ max_age = \"1h\" }}\n\n\
         [alerts.stale]\non = [\"freshness\", \"recovered\"]\nassets = [\"recent\"]\n\
         webhook = {{ url = \"{url}\", format = \"json\" }}\n"
    );
    let ws = Arc::new(workspace(dir.path(), &url, port, &extra));
    write_flights(dir.path(), false);
    let t0 = ws.clock.now_micros();
    let built = run_and_settle(&ws).await;
    assert_eq!(status(&built, "recent"), AssetStatus::Built);
    let stale = || -> Vec<serde_json::Value> {
        hook.bodies
            .lock()
            .expect("lock")
            .iter()
            .filter(|b| b["alert"] == "stale")
            .cloned()
            .collect()
    };

    ws.clock.set(t0 + HOUR / 2);
    watch(&ws);
    settle(&ws).await;
    assert!(stale().is_empty());

    // Two hours and nothing ran: one `freshness` message with the age against
    // `max_age`, however often the timer looks.
    ws.clock.set(t0 + 2 * HOUR);
    watch(&ws);
    settle(&ws).await;
    ws.clock.set(t0 + 2 * HOUR + 1);
    watch(&ws);
    settle(&ws).await;
    let told = stale();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["event"], "freshness");
    assert_eq!(told[0]["asset"], "recent");
    let check = &told[0]["checks"][0];
    assert_eq!(check["rule"], "freshness");
    assert!(
        check["observed"].as_f64().is_some_and(|s| s > 3600.0),
        "{check}"
    );
    assert!(
        check["threshold"]
            .as_str()
            .is_some_and(|t| t.starts_with("3600 s")),
        "{check}"
    );

    // A run finds it up to date: the next look closes the incident, once.
    run_and_settle(&ws).await;
    watch(&ws);
    settle(&ws).await;
    watch(&ws);
    settle(&ws).await;
    let events: Vec<_> = stale().iter().map(|b| b["event"].clone()).collect();
    assert_eq!(events, ["freshness", "recovered"]);
    assert!(
        ws.metadata
            .incidents()
            .expect("incidents")
            .iter()
            .all(|i| i.alert != "stale")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_left_by_a_gone_outbox_is_resumed_once_and_a_live_ones_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (_sink, port) = Sink::start().await;
    let ws = Arc::new(workspace(dir.path(), &url, port, ""));
    let message = super::Message::new(super::message::About {
        asset: Some("delays"),
        run_id: Some(7),
        status: Some("failed"),
        error: Some("boom"),
        ..super::message::About::of("oncall", super::Event::Failure, &ws.project, ws.now())
    });
    let stored = serde_json::to_string(&message).expect("JSON");
    let live = OutboxLock::take(&ws.warehouse.outbox_dir()).expect("a live outbox");
    let pending = |owner: &str| {
        let id = ws
            .metadata
            .begin_delivery(
                NewDelivery {
                    alert: "oncall",
                    asset: Some("delays"),
                    run_id: Some(7),
                    event: "failure",
                    channel: "webhook",
                    owner,
                    message: &stored,
                },
                ws.now(),
            )
            .expect("recorded");
        ws.metadata
            .update_delivery(id, DeliveryState::Pending, 1, Some("timed out"), ws.now())
            .expect("an attempt");
        id
    };
    let gone = pending("4242-1");
    let alive = pending(live.token());

    assert_eq!(resume(&ws), 1);
    settle(&ws).await;
    assert_eq!(resume(&ws), 0);
    settle(&ws).await;
    let bodies = hook.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["error"], "boom");
    assert_eq!(bodies[0]["run_id"], 7);
    let state = |id: i64| {
        ws.metadata
            .deliveries(10)
            .expect("deliveries")
            .into_iter()
            .find(|d| d.id == id)
            .map(|d| (d.state, d.attempts))
            .expect("recorded")
    };
    assert_eq!(state(gone), (DeliveryState::Delivered, 2));
    assert_eq!(state(alive), (DeliveryState::Pending, 1));

    // Once its outbox is gone too, the other is resumed.
    drop(live);
    assert_eq!(resume(&ws), 1);
    settle(&ws).await;
    assert_eq!(state(alive), (DeliveryState::Delivered, 2));
    assert_eq!(hook.bodies.lock().expect("lock").len(), 2);
}
