//! What `/metrics` reports of the warehouse, read at each scrape from the
//! metadata database so that the runs of every process count: each asset's run
//! totals, its newest validation report, how old it is, each schedule's
//! ticks, and the alert deliveries by alert, channel and state.

use std::time::Duration;

use sluice_store::{DeliveryTotals, PipelineTotals};
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
    /// The recorded alert deliveries, counted by alert, channel kind and state.
    pub deliveries: Vec<DeliveryTotals>,
    /// Each alert's channels by kind (`webhook`, `email`): their series exist
    /// before a first delivery, so that a first failure is an increase.
    pub channels: Vec<(String, &'static str)>,
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
        deliveries: ws.metadata.delivery_totals()?,
        channels: ws
            .project
            .alerts
            .values()
            .flat_map(|a| a.channels.iter().map(|c| (a.name.clone(), c.kind())))
            .collect(),
    })
}
