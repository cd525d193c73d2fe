//! What `/metrics` reports of the warehouse, read at each scrape from the
//! metadata database so that the runs of every process count: each asset's run
//! totals, its newest validation report, how old it is, and each schedule's
//! ticks.

use std::time::Duration;

use sluice_store::PipelineTotals;
use sluice_validate::ValidationReport;

use super::{ReadError, latest_reports};
use crate::Workspace;
use crate::schedule::{ScheduleInfo, schedule_list};

/// The warehouse's state as monitoring sees it.
#[derive(Debug, Clone)]
pub struct Monitoring {
    /// Every asset with a recorded attempt, by name.
    pub pipelines: Vec<PipelineTotals>,
    /// The assets of the project, in dependency order (their series exist
    /// before their first run, so that a first failure is an increase).
    pub assets: Vec<String>,
    /// The newest validation report of every asset that has one.
    pub reports: Vec<(String, ValidationReport)>,
    /// Per asset that was ever fresh, the time since it last was: the end of
    /// its newest attempt that built it or found it up to date (what
    /// `freshness = { max_age }` measures).
    pub ages: Vec<(String, Duration)>,
    /// Every schedule with its last and next tick and its lag.
    pub schedules: Vec<ScheduleInfo>,
}

/// Reads [`Monitoring`] on the workspace's clock.
pub fn monitoring(ws: &Workspace) -> Result<Monitoring, ReadError> {
    let now = ws.now();
    let mut ages = Vec::new();
    for name in &ws.project.order {
        if let Some(fresh) = ws.metadata.last_fresh(name.as_str())? {
            ages.push((
                name.to_string(),
                (now - fresh.ended_at).to_std().unwrap_or_default(),
            ));
        }
    }
    Ok(Monitoring {
        pipelines: ws.metadata.pipeline_totals()?,
        assets: ws.project.order.iter().map(ToString::to_string).collect(),
        reports: latest_reports(ws)?,
        ages,
        schedules: schedule_list(ws)?,
    })
}
