//! The scheduler inside `sluice serve`: wakes at the next tick of any schedule,
//! records the tick, then runs it through [`crate::run()`]; and at each poll
//! of the triggers (`triggers.rs`) or freshness deadline, runs the assets
//! they start — one triggered run at a time, never recorded as a tick. Every
//! `trigger_interval` it also judges the alerts that need no run
//! ([`crate::alerts::watch`]: reminders, stale assets, orphaned deliveries).
//!
//! Architecture invariant: a tick is recorded before its run starts and runs at
//! most once. Recording is an insert that does nothing when the row exists, and
//! only the scheduler whose insert made the row runs the tick.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use sluice_core::ErrorClass;
use sluice_project::ScheduleDef;
use sluice_store::TickState;
use tokio::task::JoinSet;

use super::plan::{History, plan};
use super::targets;
use super::triggers::{TriggerDone, Triggers};
use crate::{Observer, Result, Workspace};

/// The longest the scheduler sleeps before it looks at the clock again (the
/// wall clock can jump, and a machine can sleep).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// After an error of the metadata database, when to look again.
const AFTER_ERROR: Duration = Duration::from_secs(5);
/// The longest wait between two tries of a tick whose run could not start
/// (another process holds the warehouse).
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A tick whose run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickDone {
    /// The schedule.
    pub schedule: String,
    /// The tick's due time.
    pub due_at: DateTime<Utc>,
    /// How it ended: `Succeeded` or `Failed`.
    pub state: TickState,
    /// Its run, if one started.
    pub run_id: Option<i64>,
}

/// A task of the scheduler that ended.
enum Done {
    /// A tick's run.
    Tick(TickDone),
    /// A poll of the triggers, and the run it started.
    Triggered(TriggerDone),
}

/// Runs the enabled schedules and the triggers of a workspace.
pub struct Scheduler {
    ws: Arc<Workspace>,
    /// Enabled schedules, with when each was first seen enabled.
    schedules: Vec<(ScheduleDef, DateTime<Utc>)>,
    /// Schedules with a tick in flight, and its due time.
    busy: BTreeMap<String, DateTime<Utc>>,
    tasks: JoinSet<Done>,
    /// The schedule of each task in flight.
    tasks_of: HashMap<tokio::task::Id, String>,
    /// The assets with `on` or `freshness`.
    triggers: Triggers,
    /// The poll of the triggers in flight (with its run).
    triggered: Option<tokio::task::Id>,
    /// The first wait before trying a tick again whose run could not start.
    retry: Duration,
    /// When the alerts' timer looks next (`None`: no enabled alert).
    next_watch: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("schedules", &self.schedules.len())
            .field("busy", &self.busy)
            .field("triggers", &self.triggers.count())
            .finish()
    }
}

fn now(ws: &Workspace) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ws.clock.now_micros()).unwrap_or_default()
}

impl Scheduler {
    /// Takes the workspace's schedules: notes when each enabled one was first
    /// seen enabled, and forgets that of each disabled one.
    pub fn new(ws: Arc<Workspace>) -> Result<Self> {
        let at = now(&ws);
        let mut schedules = Vec::new();
        for def in ws.project.schedules.values() {
            if def.enabled {
                let since = ws.metadata.schedule_enabled(&def.name, at)?;
                schedules.push((def.clone(), since));
            } else {
                ws.metadata.schedule_disabled(&def.name)?;
            }
        }
        let ws_alerts = ws.project.alerts.values().any(|a| a.enabled);
        Ok(Self {
            triggers: Triggers::new(&ws),
            ws,
            schedules,
            busy: BTreeMap::new(),
            tasks: JoinSet::new(),
            tasks_of: HashMap::new(),
            triggered: None,
            retry: Duration::from_secs(5),
            next_watch: ws_alerts.then_some(at),
        })
    }

    /// Sets the first wait before a tick whose run could not start (another
    /// process runs on the warehouse) is tried again; it doubles up to a minute.
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// How many schedules it runs (the enabled ones).
    pub fn len(&self) -> usize {
        self.schedules.len()
    }

    /// Whether it runs no schedule.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// How many assets it starts by their triggers (`on`, `freshness`).
    pub fn triggers(&self) -> usize {
        self.triggers.count()
    }

    /// Looks at every schedule without a tick in flight, at the workspace
    /// clock's present: records the missed ticks it skips, then records and
    /// starts the tick it runs (in a task; [`Scheduler::finished`] hears of its
    /// end). Then, unless a triggered run is in flight, starts the poll of
    /// the triggers when due, with the assets whose freshness is due
    /// ([`Scheduler::triggered`] hears of its end). Returns when to look
    /// again: the earliest next tick, poll or freshness deadline.
    pub fn step(&mut self) -> Result<Option<DateTime<Utc>>> {
        let at = now(&self.ws);
        let mut wake: Option<DateTime<Utc>> = None;
        let mut earliest = |t: DateTime<Utc>| {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        };
        if self.triggered.is_none() {
            let due = self.triggers.due(&self.ws, at)?;
            if let Some(t) = due.wake {
                earliest(t);
            }
            if due.poll || !due.fresh.is_empty() {
                let task = self
                    .triggers
                    .start(self.ws.clone(), due, at, self.retry)
                    .map(Done::Triggered);
                self.triggered = Some(self.tasks.spawn(task).id());
                if let Some(t) = self.triggers.next_poll() {
                    earliest(t);
                }
            }
        }
        // Reminders due and assets gone stale, with no run to find them.
        if let Some(next) = self.next_watch {
            let next = if next <= at {
                crate::alerts::watch(&self.ws);
                at + chrono::Duration::from_std(self.ws.project.trigger_interval)
                    .unwrap_or(chrono::Duration::seconds(30))
            } else {
                next
            };
            self.next_watch = Some(next);
            earliest(next);
        }
        for (def, since) in &self.schedules {
            if self.busy.contains_key(&def.name) {
                continue;
            }
            let md = &self.ws.metadata;
            let last = md.last_tick(&def.name)?;
            let history = History {
                enabled_since: *since,
                last_due: last.as_ref().map(|t| t.due_at),
                last_run_ended: last
                    .as_ref()
                    .filter(|t| matches!(t.state, TickState::Succeeded | TickState::Failed))
                    .and_then(|t| t.finished_at),
            };
            let p = plan(def, &history, at);
            let mut missed = vec![];
            for due in &p.skipped {
                if md.record_tick(&def.name, *due, TickState::Skipped, at)? {
                    missed.push(*due);
                }
            }
            crate::alerts::schedule_missed(&self.ws, def, &missed);
            if let (Some(first), Some(newest)) = (p.skipped.first(), p.skipped.last()) {
                tracing::info!(
                    schedule = %def.name,
                    skipped = p.skipped.len(),
                    from = %sluice_core::render::instant(*first),
                    to = %sluice_core::render::instant(*newest),
                    catchup = def.catchup.as_str(),
                    "missed ticks skipped{}",
                    if p.more_skipped { " (older ones not recorded)" } else { "" }
                );
            }
            if let Some(p_next) = p.next {
                earliest(p_next);
            }
            let Some(due) = p.run.first().copied() else {
                continue;
            };
            if !md.record_tick(&def.name, due, TickState::Started, at)? {
                // Another scheduler on this database has it; look again now.
                tracing::info!(schedule = %def.name, due = %sluice_core::render::instant(due), "tick taken by another scheduler");
                earliest(at);
                continue;
            }
            let late = (at - due).to_std().unwrap_or_default();
            tracing::info!(
                schedule = %def.name,
                due = %sluice_core::render::instant(due),
                late_ms = late.as_millis() as u64,
                "tick: starting its run"
            );
            self.busy.insert(def.name.clone(), due);
            let task = self.tasks.spawn(
                run_tick(
                    self.ws.clone(),
                    def.name.clone(),
                    due,
                    targets(&self.ws.project, def),
                    self.retry,
                )
                .map(Done::Tick),
            );
            self.tasks_of.insert(task.id(), def.name.clone());
        }
        Ok(wake)
    }

    /// Waits for a tick in flight to end and returns it (a poll of the
    /// triggers that ends meanwhile is noted); `None` when none is in flight.
    pub async fn finished(&mut self) -> Option<TickDone> {
        loop {
            if let Done::Tick(done) = self.next_done().await? {
                return Some(done);
            }
        }
    }

    /// Waits for the poll of the triggers in flight (and its run) to end and
    /// returns it (a tick that ends meanwhile is noted); `None` when none is
    /// in flight.
    pub async fn triggered(&mut self) -> Option<TriggerDone> {
        while self.triggered.is_some() {
            if let Some(Done::Triggered(done)) = self.next_done().await {
                return Some(done);
            }
        }
        None
    }

    /// Waits for any task to end and notes it; `None` when none is in flight.
    async fn next_done(&mut self) -> Option<Done> {
        loop {
            let (id, joined) = match self.tasks.join_next_with_id().await? {
                Ok((id, done)) => (id, Ok(done)),
                Err(e) => (e.id(), Err(e)),
            };
            let schedule = self.tasks_of.remove(&id);
            if self.triggered == Some(id) {
                self.triggered = None;
            }
            match joined {
                Ok(done) => {
                    if let Done::Tick(tick) = &done {
                        self.busy.remove(&tick.schedule);
                    }
                    return Some(done);
                }
                Err(e) => {
                    // `run` catches its assets' panics, so this is a bug; the
                    // schedule goes on, and its tick stays `started`.
                    tracing::error!(schedule = ?schedule, "a scheduled run's task ended abnormally: {e}");
                    if let Some(s) = schedule {
                        self.busy.remove(&s);
                    }
                }
            }
        }
    }

    /// Runs the schedules until `shutdown` resolves, then waits for the runs in
    /// flight to end.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.step() {
                Ok(wake) => wake
                    .map(|w| (w - now(&self.ws)).to_std().unwrap_or_default())
                    .unwrap_or(MAX_SLEEP)
                    .min(MAX_SLEEP),
                Err(e) => {
                    tracing::warn!("the scheduler could not read or record its ticks: {e}");
                    AFTER_ERROR
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
                Some(_) = self.next_done(), if !self.tasks.is_empty() => {}
            }
        }
        if !self.tasks.is_empty() {
            tracing::info!(
                running = self.tasks.len(),
                "scheduler stopping: waiting for its runs to end"
            );
        }
        while self.next_done().await.is_some() {}
    }
}

/// Hands a run's number to its tick's row.
struct TickObserver {
    ws: Arc<Workspace>,
    schedule: String,
    due: DateTime<Utc>,
    run_id: Mutex<Option<i64>>,
}

impl TickObserver {
    fn run_id(&self) -> Option<i64> {
        *self.run_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Observer for TickObserver {
    fn run_started(&self, run_id: i64) {
        *self.run_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(run_id);
        if let Err(e) = self.ws.metadata.tick_run(&self.schedule, self.due, run_id) {
            tracing::warn!(schedule = %self.schedule, run = run_id, "could not note the tick's run: {e}");
        }
    }
}

/// Runs a recorded tick; a run that cannot start for a reason that passes
/// (another process runs on the warehouse) is tried again later, never dropped.
async fn run_tick(
    ws: Arc<Workspace>,
    schedule: String,
    due: DateTime<Utc>,
    targets: Vec<String>,
    retry: Duration,
) -> TickDone {
    let mut wait = retry;
    let (state, run_id) = loop {
        let observer = Arc::new(TickObserver {
            ws: ws.clone(),
            schedule: schedule.clone(),
            due,
            run_id: Mutex::new(None),
        });
        // Partitioned assets build the partition the tick stands for.
        let scope = crate::PartitionScope::Tick(due);
        match crate::run::run_scoped(ws.clone(), &targets, scope, observer.clone()).await {
            Ok(summary) => {
                tracing::info!(
                    schedule = %schedule,
                    due = %sluice_core::render::instant(due),
                    run = summary.run_id,
                    ok = summary.ok,
                    "tick: run finished"
                );
                let state = if summary.ok {
                    TickState::Succeeded
                } else {
                    TickState::Failed
                };
                break (state, Some(summary.run_id));
            }
            Err(e) if observer.run_id().is_none() && e.class() == ErrorClass::Transient => {
                tracing::warn!(
                    schedule = %schedule,
                    due = %sluice_core::render::instant(due),
                    "tick: its run cannot start yet ({e}); trying again in {}s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
            Err(e) => {
                tracing::warn!(
                    schedule = %schedule,
                    due = %sluice_core::render::instant(due),
                    "tick: its run failed: {e}"
                );
                break (TickState::Failed, observer.run_id());
            }
        }
    };
    if let Err(e) = ws.metadata.finish_tick(&schedule, due, state, now(&ws)) {
        tracing::warn!(schedule = %schedule, "could not record how the tick ended: {e}");
    }
    TickDone {
        schedule,
        due_at: due,
        state,
        run_id,
    }
}

/// A scheduler running in a task of its own; dropping the handle stops it
/// (and the runs in flight with it), [`SchedulerHandle::stop`] stops it once
/// the runs in flight end.
#[derive(Debug)]
pub struct SchedulerHandle {
    schedules: usize,
    triggers: usize,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SchedulerHandle {
    /// How many schedules it runs.
    pub fn schedules(&self) -> usize {
        self.schedules
    }

    /// How many assets it starts by their triggers.
    pub fn triggers(&self) -> usize {
        self.triggers
    }

    /// Starts no new tick, and returns once the runs in flight have ended.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!("the scheduler ended abnormally: {e}");
        }
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the scheduler of a workspace in a task of its own (on the current
/// tokio runtime).
pub fn spawn(ws: Arc<Workspace>) -> Result<SchedulerHandle> {
    let scheduler = Scheduler::new(ws)?;
    let schedules = scheduler.len();
    let triggers = scheduler.triggers();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async move {
        let _ = rx.await;
    }));
    Ok(SchedulerHandle {
        schedules,
        triggers,
        stop: Some(tx),
        task: Some(task),
    })
}
