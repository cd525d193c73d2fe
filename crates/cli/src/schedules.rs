//! `sluice schedules` (each schedule, its last tick and its next) and the
//! scheduler `sluice serve` starts.

use std::process::ExitCode;
use std::sync::Arc;

use sluice_core::render::instant;
use sluice_project::Cadence;
use sluice_runner::Workspace;
use sluice_runner::schedule::{ScheduleInfo, SchedulerHandle};

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
    eprintln!(
        "sluice serve: scheduler on, {on} schedule{}{}",
        if on == 1 { "" } else { "s" },
        if disabled > 0 {
            format!(" ({disabled} disabled)")
        } else {
            String::new()
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

/// `sluice schedules [--json]`.
pub fn list(ws: &Workspace, json: bool) -> anyhow::Result<ExitCode> {
    let infos = sluice_runner::schedule::schedule_list(ws)?;
    if json {
        let out: Vec<_> = infos
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
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if infos.is_empty() {
        println!("the project has no schedules (add `[schedules.NAME]` to sluice.toml)");
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
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
