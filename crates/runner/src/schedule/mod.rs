//! Schedules: `[schedules.NAME]` fired by the scheduler inside `sluice serve`.
//!
//! `times.rs` says when a schedule's ticks fall (cron in a time zone, with the
//! daylight-saving rule, or `every`); `plan.rs` decides, with no IO, which ticks
//! are due at a moment and which of them run or are skipped (catch-up after
//! downtime); `scheduler.rs` records each tick in the metadata database before
//! it starts its run, and runs it through [`crate::run()`]. `triggers.rs`
//! starts assets by data rather than time: `on = "upstream"` (a new input
//! version, a source's changed files) and `freshness = { max_age }`.
//!
//! Architecture invariant: a tick is recorded before its run starts and runs at
//! most once — a tick whose row exists is never run again, by this process or
//! another scheduler on the same database.

mod plan;
mod scheduler;
mod times;
mod triggers;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod trigger_tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sluice_project::{Project, ScheduleDef, ScheduleTarget};
use sluice_store::{RunState, TickRecord};

pub use plan::{GRACE, History, Plan, plan};
pub use scheduler::{Scheduler, SchedulerHandle, TickDone, spawn};
pub use triggers::{TriggerDone, TriggerInfo, freshness_due, lead, trigger_list};

use crate::{Result, Workspace};

/// The first tick of `def` strictly after `t` (`None`: it never fires again).
pub fn next_tick(def: &ScheduleDef, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    times::next_after(def, t)
}

/// The assets a schedule asks `run` for: each named asset, and with `NAME+`
/// everything downstream of it (`run` adds their stale upstream); empty for
/// every asset.
pub fn targets(project: &Project, def: &ScheduleDef) -> Vec<String> {
    selected(project, &def.assets)
}

/// The assets of a selection (a schedule's, an action's) in run order, as a
/// run's targets; empty (every asset) for an empty selection.
pub fn selected(project: &Project, targets: &[ScheduleTarget]) -> Vec<String> {
    if targets.is_empty() {
        return Vec::new();
    }
    let wanted = selection(project, targets);
    project
        .order
        .iter()
        .filter(|n| wanted.contains(n.as_str()))
        .map(ToString::to_string)
        .collect()
}

/// The assets a selection names (of a schedule or an alert): each named
/// asset, and with `NAME+` everything downstream of it.
pub fn selection(project: &Project, targets: &[ScheduleTarget]) -> BTreeSet<String> {
    let mut wanted: BTreeSet<&str> = targets.iter().map(|t| t.asset.as_str()).collect();
    let mut downstream: BTreeSet<&str> = targets
        .iter()
        .filter(|t| t.downstream)
        .map(|t| t.asset.as_str())
        .collect();
    // Each asset comes after its inputs in `order`.
    for name in &project.order {
        let asset = &project.assets[name];
        if asset.inputs.iter().any(|i| downstream.contains(i.as_str())) {
            downstream.insert(name.as_str());
            wanted.insert(name.as_str());
        }
    }
    wanted.into_iter().map(str::to_string).collect()
}

/// A schedule as `sluice schedules` shows it.
#[derive(Debug, Clone)]
pub struct ScheduleInfo {
    /// The schedule as compiled.
    pub def: ScheduleDef,
    /// When the scheduler first saw it enabled (none: never, or disabled since).
    pub enabled_since: Option<DateTime<Utc>>,
    /// Its newest recorded tick.
    pub last_tick: Option<TickRecord>,
    /// The state of that tick's run (an `abandoned` run was killed).
    pub last_run_state: Option<RunState>,
    /// Its next tick after now, when enabled.
    pub next_tick: Option<DateTime<Utc>>,
    /// How long its oldest tick that is due but not yet recorded has waited
    /// (zero when none is, or while the scheduler has never seen it enabled):
    /// a scheduler that keeps up records each tick within [`GRACE`] of its
    /// time, or as soon as the previous tick's run ends.
    pub lag: std::time::Duration,
}

/// Every schedule of the workspace with its last and next tick.
pub fn schedule_list(ws: &Workspace) -> Result<Vec<ScheduleInfo>> {
    let now = DateTime::from_timestamp_micros(ws.clock.now_micros()).unwrap_or_default();
    let mut out = Vec::new();
    for def in ws.project.schedules.values() {
        let last_tick = ws.metadata.last_tick(&def.name)?;
        let last_run_state = match last_tick.as_ref().and_then(|t| t.run_id) {
            Some(id) => ws.metadata.run(id)?.map(|r| r.state),
            None => None,
        };
        let after = last_tick.as_ref().map_or(now, |t| t.due_at.max(now));
        let enabled_since = ws.metadata.schedule_enabled_since(&def.name)?;
        out.push(ScheduleInfo {
            lag: lag(def, enabled_since, last_tick.as_ref(), now),
            enabled_since,
            next_tick: def.enabled.then(|| next_tick(def, after)).flatten(),
            def: def.clone(),
            last_tick,
            last_run_state,
        });
    }
    Ok(out)
}

/// How late the oldest unrecorded tick of `def` is at `now`: the first tick
/// after its newest recorded one (or after it was first seen enabled; ticks
/// before then never run), if that is due.
fn lag(
    def: &ScheduleDef,
    enabled_since: Option<DateTime<Utc>>,
    last_tick: Option<&TickRecord>,
    now: DateTime<Utc>,
) -> std::time::Duration {
    let Some(since) = enabled_since.filter(|_| def.enabled) else {
        return std::time::Duration::ZERO;
    };
    let not_before = since - chrono::Duration::microseconds(1);
    let after = last_tick.map_or(not_before, |t| t.due_at.max(not_before));
    match next_tick(def, after) {
        Some(due) if due <= now => (now - due).to_std().unwrap_or_default(),
        _ => std::time::Duration::ZERO,
    }
}
