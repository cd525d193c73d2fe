//! `[alerts.NAME]`: after each run (from the CLI, the scheduler or the API
//! alike), each alert looks at the outcomes of the assets it watches and opens,
//! reminds or closes incidents — one message per incident, not per attempt or
//! per run: the first failure after a success, a reminder once `repeat` has
//! passed while it still fails, and a recovery message when it succeeds again.
//! Incidents live in the run log (`sluice_store`'s `alert_incidents`), so a
//! restart or another process sharing the database sends nothing twice.
//!
//! Messages are delivered in the background (`send.rs`): a receiver that is
//! down costs the run nothing. What needs no run — a reminder due, an asset
//! older than its `max_age` — is judged by `sluice serve`'s scheduler on a
//! timer (`watch.rs`); deliveries left pending by a process that died are
//! resumed by the next one (`resume.rs`).

mod message;
mod resume;
mod send;
mod smtp;
#[cfg(test)]
mod smtp_tls_tests;
#[cfg(test)]
mod tests;
mod watch;
#[cfg(test)]
mod watch_tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sluice_core::AssetStatus;
use sluice_project::{AlertDef, AlertEvent, Project, ScheduleDef};
use sluice_validate::ValidationReport;

pub use message::{CheckNote, Event, Message};
pub use resume::resume;
pub use send::{Outbox, RetryPolicy, SendError};
pub use watch::watch;

use message::{About, CheckKind, failed_checks};

use crate::{RunSummary, Workspace};

/// The incident kinds besides failure, with the event each is and the checks
/// it is about.
const CHECK_INCIDENTS: [(AlertEvent, Event, CheckKind); 3] = [
    (AlertEvent::Quality, Event::Quality, CheckKind::Quality),
    (AlertEvent::Drift, Event::Drift, CheckKind::Drift),
    (
        AlertEvent::Freshness,
        Event::Freshness,
        CheckKind::Freshness,
    ),
];

/// Looks at a finished run for every enabled alert and queues the messages it
/// owes. Never fails the run: a problem reading or recording is logged.
pub(crate) fn after_run(ws: &Arc<Workspace>, summary: &RunSummary) {
    for alert in ws.project.alerts.values().filter(|a| a.enabled) {
        let watched = watched(&ws.project, alert);
        for outcome in &summary.assets {
            if watched.as_ref().is_some_and(|w| !w.contains(&outcome.name)) {
                continue;
            }
            if let Err(e) = judge(ws, alert, summary.run_id, outcome) {
                tracing::warn!(alert = %alert.name, asset = %outcome.name, "could not evaluate the alert: {e}");
            }
        }
    }
}

/// The assets an alert watches (`None`: every asset).
fn watched(project: &Project, alert: &AlertDef) -> Option<BTreeSet<String>> {
    if alert.assets.is_empty() {
        return None;
    }
    Some(crate::schedule::selection(project, &alert.assets))
}

/// What one asset's outcome means for one alert's incidents.
fn judge(
    ws: &Arc<Workspace>,
    alert: &AlertDef,
    run_id: i64,
    outcome: &crate::AssetOutcome,
) -> crate::Result<()> {
    let now = ws.now();
    let asset = outcome.name.as_str();
    let report: Option<ValidationReport> = ws
        .metadata
        .report(asset, Some(run_id))?
        .and_then(|(_, json)| serde_json::from_str(&json).ok());
    let about = |event: Event, incident_run_id: Option<i64>, checks| About {
        alert: &alert.name,
        event,
        project: &ws.project.name,
        public_url: ws.project.public_url.as_deref(),
        asset: Some(asset),
        schedule: None,
        run_id: Some(run_id),
        incident_run_id,
        status: Some(outcome.status.as_str()),
        error: outcome.error.as_deref(),
        checks,
        at: now,
    };
    let failed = outcome.status == AssetStatus::Failed;
    // One recovery message per asset and run, however many incidents closed.
    let mut recovered = false;
    let tracks_failure = alert.wants(AlertEvent::Failure) || alert.wants(AlertEvent::Recovered);
    if tracks_failure {
        match outcome.status {
            AssetStatus::Failed => {
                let checks = report
                    .as_ref()
                    .map(|r| failed_checks(r, None))
                    .unwrap_or_default();
                if ws
                    .metadata
                    .open_incident(&alert.name, asset, "failure", run_id, now)?
                {
                    if alert.wants(AlertEvent::Failure) {
                        send(ws, alert, Message::new(about(Event::Failure, None, checks)));
                    }
                } else if let Some(repeat) = alert.repeat {
                    remind(ws, alert, asset, "failure", repeat, |opened| {
                        Message::new(about(Event::Reminder, Some(opened), checks.clone()))
                    })?;
                }
            }
            AssetStatus::Built | AssetStatus::UpToDate => {
                if let Some(closed) = ws.metadata.close_incident(&alert.name, asset, "failure")?
                    && alert.wants(AlertEvent::Recovered)
                {
                    recovered = true;
                    send(
                        ws,
                        alert,
                        Message::new(about(Event::Recovered, Some(closed.opened_run), vec![])),
                    );
                }
            }
            // A blocked asset is its failed upstream's incident.
            AssetStatus::Blocked => {}
        }
    }
    // Checks are judged only where this run made a report.
    let Some(report) = &report else {
        return Ok(());
    };
    for (word, event, kind) in CHECK_INCIDENTS {
        if !alert.wants(word) {
            continue;
        }
        let checks = failed_checks(report, Some(kind));
        let name = word.as_str();
        if checks.is_empty() {
            if let Some(closed) = ws.metadata.close_incident(&alert.name, asset, name)?
                && alert.wants(AlertEvent::Recovered)
                && !recovered
            {
                recovered = true;
                send(
                    ws,
                    alert,
                    Message::new(about(Event::Recovered, Some(closed.opened_run), vec![])),
                );
            }
            continue;
        }
        // A failed asset's message already names its failed checks.
        let told = failed && alert.wants(AlertEvent::Failure);
        if ws
            .metadata
            .open_incident(&alert.name, asset, name, run_id, now)?
        {
            if !told {
                send(ws, alert, Message::new(about(event, None, checks)));
            }
        } else if let (Some(repeat), false) = (alert.repeat, told) {
            remind(ws, alert, asset, name, repeat, |opened| {
                Message::new(about(Event::Reminder, Some(opened), checks.clone()))
            })?;
        }
    }
    Ok(())
}

/// Sends a reminder of an open incident if `repeat` has passed since its last
/// message (claimed in the run log, so it is sent once).
fn remind(
    ws: &Arc<Workspace>,
    alert: &AlertDef,
    asset: &str,
    kind: &str,
    repeat: std::time::Duration,
    message: impl FnOnce(i64) -> Message,
) -> crate::Result<()> {
    let now = ws.now();
    let due = now - chrono::Duration::from_std(repeat).unwrap_or(chrono::Duration::MAX);
    if ws
        .metadata
        .claim_reminder(&alert.name, asset, kind, due, now)?
    {
        let opened = ws
            .metadata
            .incidents()?
            .into_iter()
            .find(|i| i.alert == alert.name && i.asset == asset && i.kind == kind)
            .map_or(0, |i| i.opened_run);
        send(ws, alert, message(opened));
    }
    Ok(())
}

/// Queues a message on every channel of the alert.
fn send(ws: &Arc<Workspace>, alert: &AlertDef, message: Message) {
    let message = Arc::new(message);
    for channel in &alert.channels {
        Outbox::post(ws, channel, &message);
    }
}

/// Ticks of `schedule` the scheduler found missed and recorded skipped (only
/// those this call recorded, so they are told once): one message to each
/// alert about `schedule_missed` that watches an asset the schedule refreshes.
pub(crate) fn schedule_missed(
    ws: &Arc<Workspace>,
    schedule: &ScheduleDef,
    missed: &[DateTime<Utc>],
) {
    let (Some(first), Some(last)) = (missed.first(), missed.last()) else {
        return;
    };
    let refreshed: BTreeSet<String> = crate::schedule::targets(&ws.project, schedule)
        .into_iter()
        .collect();
    for alert in ws.project.alerts.values().filter(|a| a.enabled) {
        if !alert.wants(AlertEvent::ScheduleMissed) {
            continue;
        }
        // A schedule of every asset, or an alert on every asset, concerns it.
        if let Some(watched) = watched(&ws.project, alert)
            && !refreshed.is_empty()
            && watched.is_disjoint(&refreshed)
        {
            continue;
        }
        let what = format!(
            "{} tick{} missed while no scheduler ran, due from {} to {}; not run (catchup = \"{}\")",
            missed.len(),
            if missed.len() == 1 { "" } else { "s" },
            sluice_core::render::instant(*first),
            sluice_core::render::instant(*last),
            schedule.catchup.as_str()
        );
        send(
            ws,
            alert,
            Message::new(About {
                schedule: Some(&schedule.name),
                error: Some(&what),
                ..About::of(&alert.name, Event::ScheduleMissed, &ws.project, ws.now())
            }),
        );
    }
}

/// One channel's answer to a test message.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// `webhook` or `email`.
    pub channel: &'static str,
    /// Whether the channel accepted it (after retries); why not.
    pub result: Result<(), SendError>,
}

/// `sluice alerts test NAME`: sends a test message on every channel of the
/// alert, now (retried as any delivery, and recorded), and says how each went.
pub async fn test_alert(ws: &Workspace, name: &str) -> crate::Result<Vec<TestOutcome>> {
    let Some(alert) = ws.project.alerts.get(name) else {
        return Err(crate::Error::UnknownAlert {
            name: name.to_string(),
            known: ws.project.alerts.keys().cloned().collect(),
        });
    };
    let message = Message::new(About::of(&alert.name, Event::Test, &ws.project, ws.now()));
    let mut out = vec![];
    for channel in &alert.channels {
        let result = send::deliver(ws, channel, &message).await;
        out.push(TestOutcome {
            channel: channel.kind(),
            result,
        });
    }
    Ok(out)
}
