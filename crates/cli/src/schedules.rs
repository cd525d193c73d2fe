//! `sluice schedules` (each schedule, its last tick and its next; each asset
//! with a trigger, its age and next due) and the scheduler `sluice serve`
//! starts.

use std::process::ExitCode;
use std::sync::Arc;

use sluice_core::render::instant;
use sluice_project::Cadence;
use sluice_runner::Workspace;
use sluice_runner::schedule::{ScheduleInfo, SchedulerHandle, TriggerInfo};

use crate::output::{opt, table};

/// Starts the scheduler of `sluice serve` unless `--no-scheduler`, and says so.
pub fn start(ws: Arc<Workspace>, off: bool) -> anyhow::Result<Option<SchedulerHandle>> {
    let all = ws.project.schedules.len();
    if off {
        eprintln!("sluice serve: scheduler off (--no-scheduler)");
        return Ok(None);
    }
    let handle = sluice_runner::schedule::spawn(ws)?;
    let on = handle.schedules();
    let disabled = all - on;
    let triggered = handle.triggers();
    eprintln!(
        "sluice serve: scheduler on, {on} schedule{}{}{}",
        if on == 1 { "" } else { "s" },
        if disabled > 0 {
            format!(" ({disabled} disabled)")
        } else {
            String::new()
        },
        match triggered {
            0 => String::new(),
            1 => ", 1 asset with a trigger".to_string(),
            n => format!(", {n} assets with triggers"),
        }
    );
    Ok(Some(handle))
}

/// The words of a schedule's `assets` as written (`all` when empty).
fn assets(info: &ScheduleInfo) -> Vec<String> {
    info.def
        .assets
        .iter()
        .map(|t| format!("{}{}", t.asset, if t.downstream { "+" } else { "" }))
        .collect()
}

/// What starts an asset: `on upstream`, `freshness 1h`, or both.
fn trigger_words(t: &TriggerInfo) -> String {
    let mut words = Vec::new();
    if t.on_upstream {
        words.push("on upstream".to_string());
    }
    if let Some(m) = t.max_age {
        words.push(format!("freshness {}", humantime::format_duration(m)));
    }
    words.join(", ")
}

/// An age in whole seconds, as `1h 2m 3s`.
fn age(d: std::time::Duration) -> String {
    humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
}

/// `sluice schedules [--json]`.
pub fn list(ws: &Workspace, json: bool) -> anyhow::Result<ExitCode> {
    let infos = sluice_runner::schedule::schedule_list(ws)?;
    let triggers = sluice_runner::schedule::trigger_list(ws)?;
    if json {
        let triggers: Vec<_> = triggers
            .iter()
            .map(|t| {
                serde_json::json!({
                    "asset": t.asset,
                    "on": t.on_upstream.then_some("upstream"),
                    "max_age": t.max_age.map(|m| humantime::format_duration(m).to_string()),
                    "last_fresh": t.last_fresh.map(instant),
                    "age_seconds": t.age.map(|a| a.as_secs()),
                    "next_due": t.next_due.map(instant),
                })
            })
            .collect();
        let schedules: Vec<_> = infos
            .iter()
            .map(|i| {
                let (cron, every) = match &i.def.cadence {
                    Cadence::Cron { text, .. } => (Some(text.clone()), None),
                    Cadence::Every { text, .. } => (None, Some(text.clone())),
                };
                serde_json::json!({
                    "name": i.def.name,
                    "cron": cron,
                    "every": every,
                    "timezone": i.def.timezone.name(),
                    "enabled": i.def.enabled,
                    "catchup": i.def.catchup.as_str(),
                    "max_catchup": i.def.max_catchup,
                    "assets": assets(i),
                    "description": i.def.description,
                    "enabled_since": i.enabled_since.map(instant),
                    "last_tick": i.last_tick.as_ref().map(|t| serde_json::json!({
                        "due_at": instant(t.due_at),
                        "state": t.state.as_str(),
                        "run_id": t.run_id,
                        "run_state": i.last_run_state.map(|s| s.as_str()),
                        "recorded_at": instant(t.recorded_at),
                        "finished_at": t.finished_at.map(instant),
                    })),
                    "next_tick": i.next_tick.map(instant),
                })
            })
            .collect();
        let out = serde_json::json!({ "schedules": schedules, "triggers": triggers });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if infos.is_empty() && triggers.is_empty() {
        println!(
            "the project has no schedules (add `[schedules.NAME]` to sluice.toml) \
             and no asset with a trigger (`on = \"upstream\"`, `freshness = {{ max_age = \"1h\" }}`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut t = table(&[
        "schedule",
        "when",
        "time zone",
        "enabled",
        "assets",
        "last tick",
        "state",
        "run",
        "next tick",
    ]);
    for i in &infos {
        let a = assets(i);
        let run = i
            .last_tick
            .as_ref()
            .and_then(|t| t.run_id)
            .map(|id| match i.last_run_state {
                Some(s) if s != sluice_store::RunState::Succeeded => {
                    format!("{id} ({})", s.as_str())
                }
                _ => id.to_string(),
            });
        t.add_row(vec![
            i.def.name.clone(),
            i.def.cadence.describe(),
            i.def.timezone.name().to_string(),
            if i.def.enabled { "yes" } else { "no" }.to_string(),
            if a.is_empty() {
                "all".to_string()
            } else {
                a.join(", ")
            },
            opt(i.last_tick.as_ref().map(|t| when(t.due_at))),
            opt(i.last_tick.as_ref().map(|t| t.state.as_str())),
            opt(run),
            opt(i.next_tick.map(when)),
        ]);
    }
    if !infos.is_empty() {
        println!("{t}");
    }
    if !triggers.is_empty() {
        let mut t = table(&["asset", "trigger", "last fresh", "age", "next due"]);
        for i in &triggers {
            t.add_row(vec![
                i.asset.clone(),
                trigger_words(i),
                opt(i.last_fresh.map(when)),
                opt(i.age.map(age)),
                match (i.max_age, i.next_due) {
                    (Some(_), Some(due)) => when(due),
                    _ => "on change".to_string(),
                },
            ]);
        }
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}
