//! `sluice alerts` (each alert, the open incidents, the recent deliveries) and
//! `sluice alerts test NAME`. Channels are shown by kind and server, never by a
//! webhook's URL or a password.

use std::process::ExitCode;
use std::time::Duration;

use sluice_core::render::instant;
use sluice_project::{AlertDef, Channel};
use sluice_runner::Workspace;

use crate::output::{opt, table};

/// How a channel is shown: `webhook (slack)`, `email smtp.example.com:587 (2 recipients)`.
fn channel(c: &Channel) -> String {
    match c {
        Channel::Webhook { format, .. } => format!("webhook ({})", format.as_str()),
        Channel::Email(e) => format!(
            "email {}:{} ({} recipient{})",
            e.host,
            e.port,
            e.to.len(),
            if e.to.len() == 1 { "" } else { "s" }
        ),
    }
}

fn events(a: &AlertDef) -> Vec<&'static str> {
    a.events.iter().map(|e| e.as_str()).collect()
}

fn assets(a: &AlertDef) -> Vec<String> {
    a.assets
        .iter()
        .map(|t| format!("{}{}", t.asset, if t.downstream { "+" } else { "" }))
        .collect()
}

/// `sluice alerts [--json] [--limit N]`.
pub fn list(ws: &Workspace, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let incidents = ws.metadata.incidents()?;
    let deliveries = ws.metadata.deliveries(limit)?;
    if json {
        let alerts: Vec<_> = ws
            .project
            .alerts
            .values()
            .map(|a| {
                serde_json::json!({
                    "name": a.name,
                    "on": events(a),
                    "assets": assets(a),
                    "repeat": a.repeat.map(|r| humantime::format_duration(r).to_string()),
                    "channels": a.channels.iter().map(channel).collect::<Vec<_>>(),
                    "enabled": a.enabled,
                    "description": a.description,
                })
            })
            .collect();
        let incidents: Vec<_> = incidents
            .iter()
            .map(|i| {
                serde_json::json!({
                    "alert": i.alert, "asset": i.asset, "kind": i.kind,
                    "opened_run": i.opened_run, "opened_at": instant(i.opened_at),
                    "last_run": i.last_run, "last_sent_at": instant(i.last_sent_at),
                })
            })
            .collect();
        let deliveries: Vec<_> = deliveries
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id, "alert": d.alert, "event": d.event, "asset": d.asset,
                    "run_id": d.run_id, "channel": d.channel, "state": d.state.as_str(),
                    "attempts": d.attempts, "error": d.error,
                    "created_at": instant(d.created_at), "finished_at": d.finished_at.map(instant),
                })
            })
            .collect();
        let out = serde_json::json!({ "alerts": alerts, "incidents": incidents, "deliveries": deliveries });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if ws.project.alerts.is_empty() {
        println!(
            "no alerts: add `[alerts.NAME]` to the project file (see the README's \"Alerts\")"
        );
    } else {
        let mut t = table(&["alert", "on", "assets", "repeat", "channels", "enabled"]);
        for a in ws.project.alerts.values() {
            let watched = assets(a);
            t.add_row(vec![
                a.name.clone(),
                events(a).join(", "),
                if watched.is_empty() {
                    "all".to_string()
                } else {
                    watched.join(", ")
                },
                opt(a.repeat.map(|r| humantime::format_duration(r).to_string())),
                a.channels
                    .iter()
                    .map(channel)
                    .collect::<Vec<_>>()
                    .join(", "),
                a.enabled.to_string(),
            ]);
        }
        println!("{t}");
    }
    if !incidents.is_empty() {
        let mut t = table(&[
            "alert",
            "asset",
            "open",
            "since run",
            "last run",
            "last sent",
        ]);
        for i in &incidents {
            t.add_row(vec![
                i.alert.clone(),
                i.asset.clone(),
                i.kind.clone(),
                i.opened_run.to_string(),
                i.last_run.to_string(),
                instant(i.last_sent_at),
            ]);
        }
        println!("{t}");
    }
    if !deliveries.is_empty() {
        let mut t = table(&[
            "id", "alert", "event", "asset", "run", "channel", "state", "attempts", "error",
        ]);
        for d in &deliveries {
            t.add_row(vec![
                d.id.to_string(),
                d.alert.clone(),
                d.event.clone(),
                opt(d.asset.as_ref()),
                opt(d.run_id),
                d.channel.clone(),
                d.state.as_str().to_string(),
                d.attempts.to_string(),
                opt(d.error.as_ref()),
            ]);
        }
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice alerts test NAME`: one line per channel; exit 1 when one failed.
pub async fn test(ws: &Workspace, name: &str) -> anyhow::Result<ExitCode> {
    let outcomes = sluice_runner::alerts::test_alert(ws, name).await?;
    let mut ok = true;
    for o in &outcomes {
        match &o.result {
            Ok(()) => println!("{}: delivered", o.channel),
            Err(e) => {
                ok = false;
                println!("{}: not delivered: {e}", o.channel);
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Before the process exits: waits for the alert deliveries still pending,
/// at most as long as one delivery may take.
pub async fn settle(ws: &Workspace) {
    let bound = ws.outbox.retry.bound() + Duration::from_secs(1);
    if !ws.outbox.wait(bound).await {
        eprintln!(
            "warning: some alert deliveries were still pending after {}s; `sluice alerts` shows them",
            bound.as_secs()
        );
    }
}
