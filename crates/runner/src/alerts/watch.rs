//! The periodic judge of `sluice serve`'s scheduler: what needs no run to be
//! told. After each run is too late when nothing runs — a failing asset whose
//! schedule is weekly, a feed that stopped — so every `trigger_interval` the
//! scheduler also:
//!
//! - sends the reminder of each open incident whose `repeat` has passed since
//!   its last message (claimed in the run log as after a run, so a run and the
//!   timer never both send it);
//! - opens a `stale` incident (a `freshness` message) for each watched asset
//!   with `freshness = { max_age }` that is older than it — time since it was
//!   last built or found up to date, what `sluice_asset_age_seconds` shows —
//!   and closes it (a recovery message) once the asset is younger again;
//! - resumes the deliveries of processes that are gone (`resume.rs`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sluice_project::{AlertDef, AlertEvent};
use sluice_store::Incident;
use sluice_validate::ValidationReport;

use super::message::{About, CheckKind, CheckNote, Event, Message, failed_checks};
use super::{send, watched};
use crate::Workspace;

/// The incident kind of an asset older than its `freshness.max_age`.
pub(crate) const STALE: &str = "stale";

/// One look at the clock: reminders due, assets gone stale or fresh again,
/// deliveries left by processes that are gone. Never fails the scheduler: a
/// problem is logged, and the next look tries again.
pub fn watch(ws: &Arc<Workspace>) {
    super::resume(ws);
    let now = ws.now();
    if let Err(e) = reminders(ws, now) {
        tracing::warn!("could not look for alert reminders: {e}");
    }
    for alert in ws.project.alerts.values().filter(|a| a.enabled) {
        if alert.wants(AlertEvent::Freshness)
            && let Err(e) = ages(ws, alert, now)
        {
            tracing::warn!(alert = %alert.name, "could not judge the assets' ages: {e}");
        }
    }
}

/// The event an open incident of `kind` is about, for whether the alert
/// still wants it.
fn event_of(kind: &str) -> Option<AlertEvent> {
    match kind {
        "failure" => Some(AlertEvent::Failure),
        "quality" => Some(AlertEvent::Quality),
        "drift" => Some(AlertEvent::Drift),
        "freshness" | STALE => Some(AlertEvent::Freshness),
        _ => None,
    }
}

/// Sends the reminders due at `now`.
fn reminders(ws: &Arc<Workspace>, now: DateTime<Utc>) -> crate::Result<()> {
    for incident in ws.metadata.incidents()? {
        let Some(alert) = ws.project.alerts.get(&incident.alert) else {
            continue;
        };
        let (Some(repeat), Some(event)) = (alert.repeat, event_of(&incident.kind)) else {
            continue;
        };
        if !alert.enabled || !alert.wants(event) {
            continue;
        }
        let due = now - chrono::Duration::from_std(repeat).unwrap_or(chrono::Duration::MAX);
        if incident.last_sent_at > due
            || !ws.metadata.claim_reminder(
                &incident.alert,
                &incident.asset,
                &incident.kind,
                due,
                now,
            )?
        {
            continue;
        }
        let message = reminder(ws, alert, &incident, now)?;
        send(ws, alert, message);
    }
    Ok(())
}

/// The reminder of `incident`: the error or the failed checks of its newest
/// run, or the asset's age.
fn reminder(
    ws: &Workspace,
    alert: &AlertDef,
    incident: &Incident,
    now: DateTime<Utc>,
) -> crate::Result<Message> {
    let asset = incident.asset.as_str();
    let mut error = None;
    let mut status = None;
    let mut checks = Vec::new();
    if incident.kind == STALE {
        checks = stale_check(ws, asset, now)?.into_iter().collect();
    } else {
        let attempt = ws
            .metadata
            .attempts(incident.last_run)?
            .into_iter()
            .rfind(|a| a.asset == asset);
        if let Some(a) = attempt {
            status = Some(a.status);
            error = a.error;
        }
        let report: Option<ValidationReport> = ws
            .metadata
            .report(asset, Some(incident.last_run))?
            .and_then(|(_, json)| serde_json::from_str(&json).ok());
        let kind = match incident.kind.as_str() {
            "quality" => Some(CheckKind::Quality),
            "drift" => Some(CheckKind::Drift),
            "freshness" => Some(CheckKind::Freshness),
            _ => None,
        };
        if let Some(r) = &report {
            checks = failed_checks(r, kind);
        }
    }
    Ok(Message::new(About {
        asset: Some(asset),
        // A stale asset's incident is about no run of its own.
        run_id: (incident.kind != STALE).then_some(incident.last_run),
        incident_run_id: Some(incident.opened_run),
        status: status.as_deref(),
        error: error.as_deref(),
        checks,
        ..About::of(&alert.name, Event::Reminder, &ws.project, now)
    }))
}

/// An asset's age against its `freshness.max_age`, as a failed check when it
/// is older (`None`: younger, or never fresh, or no `max_age`).
fn stale_check(
    ws: &Workspace,
    asset: &str,
    now: DateTime<Utc>,
) -> crate::Result<Option<CheckNote>> {
    let Some(max_age) = ws.project.asset(asset).and_then(|a| a.policy.max_age) else {
        return Ok(None);
    };
    let Some(fresh) = ws.metadata.last_fresh(asset)? else {
        return Ok(None);
    };
    let age = (now - fresh.ended_at).to_std().unwrap_or_default();
    if age <= max_age {
        return Ok(None);
    }
    let whole = |d: std::time::Duration| std::time::Duration::from_secs(d.as_secs());
    Ok(Some(CheckNote {
        name: "max_age".into(),
        rule: "freshness".into(),
        column: None,
        severity: "warn".into(),
        verdict: "fail".into(),
        observed: Some(age.as_secs() as f64),
        threshold: format!(
            "{} s (freshness = {{ max_age = \"{}\" }})",
            max_age.as_secs(),
            humantime::format_duration(whole(max_age))
        ),
        detail: format!(
            "last built or found up to date {} ago, in run {}",
            humantime::format_duration(whole(age)),
            fresh.run_id
        ),
    }))
}

/// Opens a `stale` incident for each asset the alert watches that is older
/// than its `max_age`, and closes the one of each that is younger again.
fn ages(ws: &Arc<Workspace>, alert: &AlertDef, now: DateTime<Utc>) -> crate::Result<()> {
    let watched = watched(&ws.project, alert);
    for name in &ws.project.order {
        let asset = name.as_str();
        if ws.project.assets[name].policy.max_age.is_none()
            || watched.as_ref().is_some_and(|w| !w.contains(asset))
        {
            continue;
        }
        let about = |event, incident_run_id, checks| {
            Message::new(About {
                asset: Some(asset),
                incident_run_id,
                checks,
                ..About::of(&alert.name, event, &ws.project, now)
            })
        };
        match stale_check(ws, asset, now)? {
            Some(check) => {
                let since = ws.metadata.last_fresh(asset)?.map_or(0, |f| f.run_id);
                if ws
                    .metadata
                    .open_incident(&alert.name, asset, STALE, since, now)?
                {
                    send(ws, alert, about(Event::Freshness, None, vec![check]));
                }
            }
            None => {
                if let Some(closed) = ws.metadata.close_incident(&alert.name, asset, STALE)?
                    && alert.wants(AlertEvent::Recovered)
                {
                    send(
                        ws,
                        alert,
                        about(Event::Recovered, Some(closed.opened_run), vec![]),
                    );
                }
            }
        }
    }
    Ok(())
}
