//! `sluice run`: materializes the assets asked for and everything upstream that is
//! stale, independent assets concurrently, and records the run.
//!
//! What an asset is and how it is built, kept and judged stale is its kind's
//! business (`crate::kinds`); this module only schedules, blocks and records.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::FutureExt;
use serde::Serialize;
use sluice_core::{AssetKind, AssetName, AssetStatus};
use sluice_store::{AttemptRecord, RunState};
use tokio::task::JoinSet;

use crate::outcome::{AssetOutcome, failed};
use crate::{Error, Result, Workspace};

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's number in the run log.
    pub run_id: i64,
    /// Whether every asset is built or up to date.
    pub ok: bool,
    /// Wall-clock time of the whole run.
    pub duration_ms: u64,
    /// One entry per asset, in dependency order.
    pub assets: Vec<AssetOutcome>,
}

/// Hears about a run's progress (progress bars, log lines).
pub trait Observer: Send + Sync {
    /// The run has its number in the run log (before any asset starts).
    fn run_started(&self, _run_id: i64) {}
    /// An asset starts being checked or built.
    fn started(&self, _asset: &AssetName, _kind: AssetKind) {}
    /// An asset is done.
    fn finished(&self, _outcome: &AssetOutcome) {}
}

/// Runs `targets` (all assets when empty) and everything upstream of them.
pub async fn run(
    ws: Arc<Workspace>,
    targets: &[String],
    observer: Arc<dyn Observer>,
) -> Result<RunSummary> {
    let project = &ws.project;
    let order = project
        .closure(targets)
        .map_err(|names| Error::unknown_assets(project, names))?;
    let _lock = ws.run_lock.acquire()?;
    let run_id = ws.metadata.begin_run(project.profile.as_deref(), targets)?;
    observer.run_started(run_id);
    let started = Instant::now();

    let wanted: BTreeSet<AssetName> = order.iter().cloned().collect();
    let mut outcomes: BTreeMap<AssetName, AssetOutcome> = BTreeMap::new();
    let mut launched: BTreeSet<AssetName> = BTreeSet::new();
    let mut running = JoinSet::new();
    loop {
        // Launch what is ready; block what has a failed input.
        let mut progress = true;
        while progress {
            progress = false;
            for name in &order {
                if launched.contains(name) || running.len() >= project.concurrency {
                    continue;
                }
                let asset = &project.assets[name];
                let inputs: Vec<&AssetName> = asset
                    .inputs
                    .iter()
                    .filter(|i| wanted.contains(*i))
                    .collect();
                if !inputs.iter().all(|i| outcomes.contains_key(*i)) {
                    continue;
                }
                launched.insert(name.clone());
                progress = true;
                if let Some(bad) = inputs.iter().find(|i| !outcomes[**i].status.is_ok()) {
                    let latest = ws.store.latest(name.as_str()).await.ok().flatten();
                    let version = latest.map(|l| l.version);
                    let outcome = AssetOutcome {
                        error: Some(blocked_reason(bad, &outcomes[*bad])),
                        duration_ms: 0,
                        ..AssetOutcome::new(asset, AssetStatus::Blocked, version, 0, Instant::now())
                    };
                    record(&ws, run_id, NOT_ATTEMPTED, &outcome, &BTreeMap::new());
                    observer.finished(&outcome);
                    outcomes.insert(name.clone(), outcome);
                    continue;
                }
                let input_versions: BTreeMap<String, u64> = asset
                    .inputs
                    .iter()
                    .filter_map(|i| {
                        outcomes
                            .get(i)
                            .and_then(|o| o.version)
                            .map(|v| (i.to_string(), v))
                    })
                    .collect();
                observer.started(name, asset.kind());
                let ws = ws.clone();
                let name = name.clone();
                running.spawn(async move {
                    let asset = &ws.project.assets[&name];
                    let started = Instant::now();
                    // A panic inside one asset fails that asset, not the run.
                    let outcome = AssertUnwindSafe(crate::kinds::materialize(
                        &ws,
                        asset,
                        run_id,
                        &input_versions,
                    ))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failed(
                            asset,
                            started,
                            format!("internal error (a bug in sluice): {message}"),
                            None,
                        )
                    });
                    record(&ws, run_id, FIRST_ATTEMPT, &outcome, &input_versions);
                    (name, outcome)
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        // Tasks catch their own panics and are never aborted.
        let (name, outcome) = joined.expect("asset tasks neither panic nor get cancelled");
        observer.finished(&outcome);
        outcomes.insert(name, outcome);
    }

    let assets: Vec<AssetOutcome> = order.iter().filter_map(|n| outcomes.remove(n)).collect();
    let ok = assets.iter().all(|a| a.status.is_ok());
    ws.metadata.finish_run(
        run_id,
        if ok {
            RunState::Succeeded
        } else {
            RunState::Failed
        },
    )?;
    Ok(RunSummary {
        run_id,
        ok,
        duration_ms: started.elapsed().as_millis() as u64,
        assets,
    })
}

/// The attempt number recorded for an asset blocked by its upstream: it was
/// never attempted.
const NOT_ATTEMPTED: u32 = 0;
/// The attempt number of an asset's first try in a run.
const FIRST_ATTEMPT: u32 = 1;

fn record(
    ws: &Workspace,
    run_id: i64,
    attempt: u32,
    o: &AssetOutcome,
    inputs: &BTreeMap<String, u64>,
) {
    let attempt = AttemptRecord {
        run_id,
        asset: o.name.clone(),
        attempt,
        status: o.status.as_str().to_string(),
        started_at: Some(Utc::now() - chrono::Duration::milliseconds(o.duration_ms as i64)),
        duration_ms: o.duration_ms,
        input_versions: serde_json::to_string(inputs).unwrap_or_default(),
        output_version: o.version,
        rows_in: o.rows_in,
        rows_out: o.rows_out,
        rows_quarantined: o.rows_quarantined,
        error: o.error.clone(),
    };
    if let Err(e) = ws.metadata.record_attempt(&attempt) {
        tracing::warn!(
            "could not record the attempt of `{}` in the run log: {e}",
            o.name
        );
    }
}

/// Why an asset is blocked: its failed or blocked input, and that input's reason.
fn blocked_reason(input: &AssetName, outcome: &AssetOutcome) -> String {
    let why = outcome
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .unwrap_or_default();
    if why.is_empty() {
        format!("upstream `{input}` {}", outcome.status)
    } else {
        format!("upstream `{input}` {}: {why}", outcome.status)
    }
}
