//! `sluice run`: materializes the assets asked for and everything upstream that is
//! stale, independent assets concurrently, and records the run.
//!
//! What an asset is and how it is built, kept and judged stale is its kind's
//! business (`crate::kinds`); this module only schedules, blocks and records.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use serde::Serialize;
use sluice_core::{AssetKind, AssetName, AssetStatus, ErrorClass};
use sluice_project::Asset;
use sluice_store::{AttemptRecord, RunState};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cancel::CancelWatch;
use crate::logs::TARGET;
use crate::outcome::{AssetOutcome, Failure, failed};
use crate::partitions::PartitionScope;
use crate::queue::Ended;
use crate::ready::Ready;
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
    /// A partition of a partitioned asset was built (`ok`) or failed: the
    /// `done`-th of the `total` the run builds of it.
    fn partition_done(
        &self,
        _asset: &str,
        _partition: &str,
        _ok: bool,
        _done: usize,
        _total: usize,
    ) {
    }
    /// A long step of an asset's build has done `done` of `total` units,
    /// named by `what` (a collection's `chunks embedded`).
    fn progress(&self, _asset: &str, _what: &str, _done: u64, _total: u64) {}
}

/// Runs `targets` (all assets when empty) and everything upstream of them.
///
/// A run asked for while another run of this process is in progress waits
/// for its turn, recorded as `queued` (its number reaches the observer at
/// once); a request identical to one already waiting joins that run and
/// returns its summary.
pub async fn run(
    ws: Arc<Workspace>,
    targets: &[String],
    observer: Arc<dyn Observer>,
) -> Result<RunSummary> {
    run_scoped(ws, targets, PartitionScope::All, observer).await
}

/// Runs `targets` as [`run()`] does, building of the partitioned assets the
/// partitions of `scope` (a backfill's range, a tick's partition).
pub async fn run_scoped(
    ws: Arc<Workspace>,
    targets: &[String],
    scope: PartitionScope,
    observer: Arc<dyn Observer>,
) -> Result<RunSummary> {
    let project = &ws.project;
    // Requests that differ in scope are different runs.
    let mut key = targets.to_vec();
    if scope != PartitionScope::All {
        key.push(format!("#{}", scope.key()));
    }
    let order = project
        .closure(targets)
        .map_err(|names| Error::unknown_assets(project, names))?;
    let (_turn, queued) = match ws.queue.turn.try_lock() {
        Ok(turn) => (turn, None),
        Err(_) => {
            if let Some((run_id, ended)) = ws.queue.join(&key) {
                observer.run_started(run_id);
                return joined(run_id, ended).await;
            }
            let run_id = ws.metadata.queue_run(project.profile.as_deref(), targets)?;
            let (tx, rx) = watch::channel(None);
            ws.queue.push(&key, run_id, rx);
            observer.run_started(run_id);
            let turn = ws.queue.turn.lock().await;
            ws.queue.remove(run_id);
            (turn, Some((run_id, tx)))
        }
    };
    let result = run_in_turn(
        &ws,
        &order,
        targets,
        scope,
        queued.as_ref().map(|q| q.0),
        &observer,
    )
    .await;
    if let Some((_, tx)) = queued {
        let _ = tx.send(Some(match &result {
            Ok(summary) => Ok(summary.clone()),
            Err(e) => Err(e.to_string()),
        }));
    }
    result
}

/// The summary of a queued run another request joined.
async fn joined(run_id: i64, mut ended: watch::Receiver<Ended>) -> Result<RunSummary> {
    let end = ended
        .wait_for(Option::is_some)
        .await
        .map(|e| e.clone())
        .ok()
        .flatten();
    match end {
        Some(Ok(summary)) => Ok(summary),
        Some(Err(message)) => Err(Error::Joined { run_id, message }),
        None => Err(Error::Joined {
            run_id,
            message: "the run was dropped before it ended".into(),
        }),
    }
}

/// Runs `order` once this process's turn has come: takes the run lock, starts
/// (or records) the run, and builds.
async fn run_in_turn(
    ws: &Arc<Workspace>,
    order: &[AssetName],
    targets: &[String],
    scope: PartitionScope,
    queued: Option<i64>,
    observer: &Arc<dyn Observer>,
) -> Result<RunSummary> {
    let project = &ws.project;
    let lock = ws.run_lock.acquire();
    let run_id = match (lock.is_ok(), queued) {
        (true, Some(id)) => {
            ws.metadata.start_run(id)?;
            id
        }
        (true, None) => {
            let id = ws.metadata.begin_run(project.profile.as_deref(), targets)?;
            observer.run_started(id);
            id
        }
        (false, Some(id)) => {
            ws.metadata.finish_run(id, RunState::Failed)?;
            id
        }
        (false, None) => 0,
    };
    let _lock = lock?;
    let started = Instant::now();
    let span = crate::logs::run_span(run_id);
    span.in_scope(|| {
        tracing::info!(
            target: TARGET,
            "run {run_id} started: {} assets{}",
            order.len(),
            if targets.is_empty() {
                String::new()
            } else {
                format!(" for {}", targets.join(", "))
            }
        )
    });
    crate::logs::keep(ws, run_id, None, None, &span);
    let cancel = CancelWatch::start(ws, run_id);
    let mut state = Building {
        ws,
        run_id,
        ready: Ready::new(order, |name| project.assets[name].inputs.as_slice()),
        scope,
        outcomes: BTreeMap::new(),
        running: JoinSet::new(),
        pools: project
            .pools
            .iter()
            .map(|(name, limit)| (name.clone(), Arc::new(Semaphore::new(*limit))))
            .collect(),
    };
    loop {
        // Launch what is ready, in the run's order, while there is room; an
        // asset that will not be attempted (a failed input, a cancelled run)
        // ends at once, which may make its downstream ready in turn.
        while state.running.len() < project.concurrency {
            let Some(name) = state.ready.next_ready() else {
                break;
            };
            if let Some(outcome) = state.launch(&name, &cancel, observer).await {
                state.done(name, outcome, observer);
            }
        }
        let Some(joined) = state.running.join_next().await else {
            break;
        };
        // Tasks catch their own panics and are never aborted.
        let (name, outcome) = joined.expect("asset tasks neither panic nor get cancelled");
        state.done(name, outcome, observer);
    }

    let mut outcomes = state.outcomes;
    let assets: Vec<AssetOutcome> = order.iter().filter_map(|n| outcomes.remove(n)).collect();
    let ok = assets.iter().all(|a| a.status.is_ok());
    let ended = if cancel.is_cancelled() {
        RunState::Cancelled
    } else if ok {
        RunState::Succeeded
    } else {
        RunState::Failed
    };
    span.in_scope(|| {
        let failed = assets.iter().filter(|a| !a.status.is_ok()).count();
        let ms = started.elapsed().as_millis();
        if failed == 0 {
            tracing::info!(target: TARGET, "run {run_id} {} in {ms} ms", ended.as_str());
        } else {
            tracing::warn!(
                target: TARGET,
                "run {run_id} {} in {ms} ms: {failed} of {} assets failed or were blocked",
                ended.as_str(),
                assets.len()
            );
        }
    });
    crate::logs::keep(ws, run_id, None, None, &span);
    ws.metadata.finish_run(run_id, ended)?;
    let summary = RunSummary {
        run_id,
        ok,
        duration_ms: started.elapsed().as_millis() as u64,
        assets,
    };
    // Queued for the background: what a receiver does changes nothing here.
    crate::alerts::after_run(ws, &summary);
    Ok(summary)
}

/// A run in progress: what it wants, what is done, what runs.
struct Building<'w> {
    ws: &'w Arc<Workspace>,
    run_id: i64,
    ready: Ready,
    scope: PartitionScope,
    outcomes: BTreeMap<AssetName, AssetOutcome>,
    running: JoinSet<(AssetName, AssetOutcome)>,
    /// `[pools]`: permits shared by the assets of each pool.
    pools: BTreeMap<String, Arc<Semaphore>>,
}

impl Building<'_> {
    /// Records that `name` ended with `outcome`.
    fn done(&mut self, name: AssetName, outcome: AssetOutcome, observer: &Arc<dyn Observer>) {
        observer.finished(&outcome);
        self.ready.done(&name);
        self.outcomes.insert(name, outcome);
    }

    /// Starts `name`, whose inputs are done. An asset that will not be
    /// attempted (a failed input; the run was cancelled) is returned at once.
    async fn launch(
        &mut self,
        name: &AssetName,
        cancel: &CancelWatch,
        observer: &Arc<dyn Observer>,
    ) -> Option<AssetOutcome> {
        let ws = self.ws;
        let asset = &ws.project.assets[name];
        let bad = asset
            .inputs
            .iter()
            .find(|i| self.outcomes.get(*i).is_some_and(|o| !o.status.is_ok()));
        if bad.is_some() || cancel.is_cancelled() {
            let latest = ws.store.latest(name.as_str()).await.ok().flatten();
            let version = latest.map(|l| l.version);
            let error = match bad {
                Some(bad) => blocked_reason(bad, &self.outcomes[bad]),
                None => CANCELLED_BEFORE.to_string(),
            };
            let outcome = AssetOutcome {
                error: Some(error),
                duration_ms: 0,
                ..AssetOutcome::new(asset, AssetStatus::Blocked, version, 0, Instant::now())
            };
            record(
                ws,
                self.run_id,
                NOT_ATTEMPTED,
                &outcome,
                &BTreeMap::new(),
                None,
                None,
            );
            return Some(outcome);
        }
        let input_versions: BTreeMap<String, u64> = asset
            .inputs
            .iter()
            .filter_map(|i| {
                self.outcomes
                    .get(i)
                    .and_then(|o| o.version)
                    .map(|v| (i.to_string(), v))
            })
            .collect();
        observer.started(name, asset.kind());
        let ws = ws.clone();
        let name = name.clone();
        let run_id = self.run_id;
        let pool = asset
            .policy
            .pool
            .as_ref()
            .and_then(|p| self.pools.get(p))
            .cloned();
        let cancelled = cancel.receiver();
        let scope = self.scope;
        let observer = observer.clone();
        self.running.spawn(async move {
            let asset = &ws.project.assets[&name];
            // At most the pool's limit of its assets build at once.
            let _permit = match &pool {
                Some(pool) => pool.clone().acquire_owned().await.ok(),
                None => None,
            };
            let policy = &asset.policy;
            // When the current attempt started, to the microsecond, for the run
            // log: on the workspace's clock, which the scheduler's `freshness`
            // measures ages on.
            let began = std::sync::Mutex::new(ws.now());
            let outcome = crate::retry::attempts(
                policy,
                |n| {
                    *began.lock().unwrap_or_else(|p| p.into_inner()) = ws.now();
                    attempt(
                        &ws,
                        asset,
                        (run_id, scope),
                        &input_versions,
                        cancelled.clone(),
                        n,
                        &*observer,
                    )
                },
                |delay| wait_unless_cancelled(delay, cancelled.clone()),
                |n, outcome, delay| {
                    let at = *began.lock().unwrap_or_else(|p| p.into_inner());
                    record(&ws, run_id, n, outcome, &input_versions, delay, Some(at))
                },
                crate::retry::random_fraction,
            )
            .await;
            (name, outcome)
        });
        None
    }
}

/// Why an asset not yet started when its run was cancelled was not attempted.
const CANCELLED_BEFORE: &str = "the run was cancelled before it started";

/// One attempt at an asset: built or kept, within its `timeout`, stopped
/// when the run is cancelled. Stopping drops the work (DataFusion's streams,
/// a step's process group), so nothing half-done is published; a panic fails
/// the asset, not the run.
async fn attempt(
    ws: &Workspace,
    asset: &Asset,
    (run_id, scope): (i64, PartitionScope),
    pins: &BTreeMap<String, u64>,
    cancelled: watch::Receiver<bool>,
    n: u32,
    observer: &dyn Observer,
) -> AssetOutcome {
    // What the attempt logs is its asset's log in the run.
    let span = crate::logs::asset_span(run_id, asset.name.as_str(), n);
    let outcome = attempting(ws, asset, (run_id, scope), pins, cancelled, n, observer)
        .instrument(span.clone())
        .await;
    span.in_scope(|| crate::logs::outcome(&outcome));
    crate::logs::keep(ws, run_id, Some(asset.name.as_str()), Some(n), &span);
    outcome
}

/// [`attempt`]'s work, inside its log's span.
async fn attempting(
    ws: &Workspace,
    asset: &Asset,
    (run_id, scope): (i64, PartitionScope),
    pins: &BTreeMap<String, u64>,
    mut cancelled: watch::Receiver<bool>,
    n: u32,
    observer: &dyn Observer,
) -> AssetOutcome {
    let started = Instant::now();
    tracing::info!(target: TARGET, "attempt {n} of `{}` started", asset.name);
    let work = AssertUnwindSafe(crate::kinds::materialize(
        ws,
        asset,
        run_id,
        pins,
        scope,
        Some(observer),
    ))
    .catch_unwind();
    let limited = async {
        match asset.policy.timeout {
            Some(limit) => tokio::time::timeout(limit, work).await.ok(),
            None => Some(work.await),
        }
    };
    let stopped = |why: String, class: ErrorClass| async move {
        let previous = crate::kinds::of(asset)
            .published(ws)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.version);
        failed(
            asset,
            started,
            Failure {
                message: why,
                class,
            },
            previous,
        )
    };
    tokio::select! {
        done = limited => match done {
            Some(Ok(outcome)) => outcome,
            Some(Err(panic)) => {
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
            }
            None => {
                let limit = asset.policy.timeout.unwrap_or_default();
                stopped(
                    format!(
                        "`{}` was stopped after its timeout of {}; nothing it was writing was published\n  help: find what is slow or hangs, or raise `timeout` in its entry",
                        asset.name,
                        humantime::format_duration(limit)
                    ),
                    ErrorClass::Transient,
                )
                .await
            }
        },
        () = until_cancelled(&mut cancelled) => {
            stopped(
                format!("`{}` was stopped: the run was cancelled; nothing it was writing was published", asset.name),
                ErrorClass::Permanent,
            )
            .await
        }
    }
}

/// Waits `delay` before a retry; `false` when the run was cancelled meanwhile.
async fn wait_unless_cancelled(delay: Duration, mut cancelled: watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = until_cancelled(&mut cancelled) => false,
    }
}

/// Resolves once the run is cancelled.
async fn until_cancelled(cancelled: &mut watch::Receiver<bool>) {
    // The sender lives as long as the run, so the wait ends only by a cancel.
    let _ = cancelled.wait_for(|c| *c).await;
}

/// The attempt number recorded for an asset blocked by its upstream: it was
/// never attempted.
const NOT_ATTEMPTED: u32 = 0;

fn record(
    ws: &Workspace,
    run_id: i64,
    attempt: u32,
    o: &AssetOutcome,
    inputs: &BTreeMap<String, u64>,
    retry_in: Option<Duration>,
    started_at: Option<chrono::DateTime<Utc>>,
) {
    let ended_at = ws.now();
    let attempt = AttemptRecord {
        run_id,
        asset: o.name.clone(),
        attempt,
        status: o.status.as_str().to_string(),
        started_at: Some(
            started_at
                .unwrap_or_else(|| ended_at - chrono::Duration::milliseconds(o.duration_ms as i64)),
        ),
        duration_ms: o.duration_ms,
        input_versions: serde_json::to_string(inputs).unwrap_or_default(),
        output_version: o.version,
        rows_in: o.rows_in,
        rows_out: o.rows_out,
        rows_quarantined: o.rows_quarantined,
        error: o.error.clone(),
        retry_in_ms: retry_in.map(|d| d.as_millis() as u64),
        ended_at: Some(ended_at),
        kind: o.kind.as_str().to_string(),
        // A contract judges every row that comes in.
        rows_validated: ws
            .project
            .assets
            .get(o.name.as_str())
            .filter(|a| !a.contract.is_empty())
            .map_or(0, |_| o.rows_in),
        rows_online: o.online.map_or(0, |on| on.written),
    };
    if let Err(e) = ws.metadata.record_attempt(&attempt) {
        tracing::warn!(
            "could not record the attempt of `{}` in the run log: {e}",
            o.name
        );
    }
    // How the attempt ended is in its own log; what the run does next is here.
    let next = match (retry_in, attempt.attempt) {
        (Some(delay), n) => Some(format!(
            "attempt {n} failed with a transient error; retrying in {}",
            humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
        )),
        (None, NOT_ATTEMPTED) => Some(format!(
            "not attempted: {}",
            o.error.as_deref().unwrap_or_default()
        )),
        (None, _) => None,
    };
    if let Some(next) = next {
        let span = crate::logs::asset_span(run_id, &o.name, attempt.attempt);
        span.in_scope(|| tracing::warn!(target: TARGET, "{next}"));
        crate::logs::keep(ws, run_id, Some(&o.name), Some(attempt.attempt), &span);
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
