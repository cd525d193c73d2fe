//! Data-aware triggers: what starts an asset in `sluice serve` besides a
//! schedule's tick.
//!
//! - `on = "upstream"`: an asset runs when an input has a newer published
//!   version than the one its own newest version was built from; a file
//!   source, whose upstream is its files, when its files change. Every poll
//!   (`[project] trigger_interval`) lists a source's files — paths, sizes and
//!   modification times, reading nothing — and only when the listing differs
//!   from the one seen last asks whether the source is stale, which hashes its
//!   content. Whether an asset is stale is `kinds::stale_reason`'s to say,
//!   as for `run` and `status`; nothing here is a second staleness rule.
//! - `freshness = { max_age }`: an asset runs when its age — the time since
//!   the end of its newest attempt that ended `built` or `up_to_date` — reaches
//!   `max_age` minus a lead of a tenth of `max_age` (so the run has time to end
//!   before the asset is stale); an asset never built or checked is due at
//!   once. A run that did not make it fresh is retried a lead later (at least
//!   a poll interval), not at every poll.
//!
//! Every asset triggered at one poll goes into one run (the run orders them
//! by the DAG); a triggered asset's downstream with `on = "upstream"` fires at
//! the next poll, because its input then has a new version. An asset is not
//! started again for the same state it was started for (same fingerprint,
//! same listing) when its run did not make it up to date: a failing build is
//! not retried at every poll. That memory is the process's; a restart checks
//! afresh.
//!
//! The decisions that need no IO — when an asset's freshness is due, whether
//! the poll is due — are plain functions of the workspace's clock
//! (`sluice_core::Clock`), so tests set the time instead of waiting for it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use sluice_core::{AssetName, ErrorClass};
use sluice_project::{Definition, FilesDef, SourceDef};
use sluice_store::Fresh;

use crate::kinds::{self, stale_reason};
use crate::pins::Pins;
use crate::{Observer, Workspace};

/// The lead of a `freshness` trigger: the asset is run this long before its
/// age reaches `max_age`.
pub fn lead(max_age: Duration) -> Duration {
    max_age / 10
}

/// When an asset with `freshness = { max_age }` is due: `max_age` minus the
/// lead after it was last fresh (at once when it never was), and — when a run
/// started for it did not make it fresh — no sooner than `retry` after that
/// run started.
pub fn freshness_due(
    last_fresh: Option<DateTime<Utc>>,
    max_age: Duration,
    fired_at: Option<DateTime<Utc>>,
    retry: Duration,
) -> DateTime<Utc> {
    let stale_at = last_fresh.map_or(DateTime::<Utc>::MIN_UTC, |t| {
        later(t, max_age - lead(max_age))
    });
    match fired_at {
        Some(f) => stale_at.max(later(f, retry)),
        None => stale_at,
    }
}

/// `t + d`, or the end of time when that is past it.
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// What a file source's files look like without reading them: each path with
/// its size and modification time.
type Listing = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn listing(def: &FilesDef) -> Listing {
    let Ok(files) = def.files() else {
        // A listing that fails is a listing like another: the staleness check
        // says what is wrong with the files.
        return Vec::new();
    };
    files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, size, modified)
        })
        .collect()
}

/// What the polls remember between them.
#[derive(Debug, Default)]
struct Memory {
    /// Each file source's listing when it was last checked.
    listings: BTreeMap<AssetName, Listing>,
    /// The fingerprint each asset was last started for (by `on`), while it
    /// is still stale.
    started_for: BTreeMap<AssetName, String>,
}

/// A trigger's poll (and its run, when it started one) that ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerDone {
    /// The assets whose staleness the poll checked (a source: only when its
    /// listing changed).
    pub checked: Vec<String>,
    /// The assets it started, in DAG order, each with why.
    pub started: Vec<(String, String)>,
    /// Their run, if one started.
    pub run_id: Option<i64>,
    /// Whether that run left every asset built or up to date.
    pub ok: bool,
}

/// The triggers of a project, and what they remember.
#[derive(Debug)]
pub(crate) struct Triggers {
    /// Assets with `on = "upstream"`, in DAG order.
    upstream: Vec<AssetName>,
    /// Assets with `freshness`, with their `max_age`.
    freshness: Vec<(AssetName, Duration)>,
    interval: Duration,
    /// When the `on` triggers are looked at next (`None`: at once).
    next_poll: Option<DateTime<Utc>>,
    /// When a `freshness` trigger last started each asset.
    fired_at: BTreeMap<AssetName, DateTime<Utc>>,
    memory: Arc<Mutex<Memory>>,
}

/// What is due at a moment: the assets whose freshness is due (with why), and
/// whether the `on` triggers are to be looked at.
pub(crate) struct Due {
    pub fresh: Vec<(AssetName, String)>,
    pub poll: bool,
    /// The next moment something is due, if nothing is now.
    pub wake: Option<DateTime<Utc>>,
}

impl Triggers {
    pub fn new(ws: &Workspace) -> Self {
        let project = &ws.project;
        let mut upstream = Vec::new();
        let mut freshness = Vec::new();
        for name in &project.order {
            let policy = &project.assets[name].policy;
            if policy.on.is_some() {
                upstream.push(name.clone());
            }
            if let Some(max_age) = policy.max_age {
                freshness.push((name.clone(), max_age));
            }
        }
        Triggers {
            upstream,
            freshness,
            interval: project.trigger_interval,
            next_poll: None,
            fired_at: BTreeMap::new(),
            memory: Arc::default(),
        }
    }

    /// How many assets have a trigger.
    pub fn count(&self) -> usize {
        let mut names: Vec<&AssetName> = self.upstream.iter().collect();
        names.extend(self.freshness.iter().map(|(n, _)| n));
        names.sort();
        names.dedup();
        names.len()
    }

    /// What is due at `now` (the run log says when each asset was last fresh).
    pub fn due(&self, ws: &Workspace, now: DateTime<Utc>) -> crate::Result<Due> {
        let mut due = Due {
            fresh: Vec::new(),
            poll: false,
            wake: None,
        };
        let mut wake = |t: DateTime<Utc>| due.wake = Some(due.wake.map_or(t, |w| w.min(t)));
        let mut fresh = Vec::new();
        for (name, max_age) in &self.freshness {
            let last = ws.metadata.last_fresh(name.as_str())?;
            let at = freshness_due(
                last.map(|f| f.ended_at),
                *max_age,
                self.fired_at.get(name).copied(),
                lead(*max_age).max(self.interval),
            );
            if at <= now {
                fresh.push((name.clone(), freshness_reason(last, *max_age, now)));
            } else {
                wake(at);
            }
        }
        let poll = !self.upstream.is_empty() && self.next_poll.is_none_or(|t| t <= now);
        if let Some(t) = self
            .next_poll
            .filter(|_| !poll && !self.upstream.is_empty())
        {
            wake(t);
        }
        due.fresh = fresh;
        due.poll = poll;
        Ok(due)
    }

    /// Notes that a poll starts at `now` with the `fresh` assets due, and
    /// returns its task: it looks at the `on` triggers when `poll`, then runs
    /// every asset started, in one run.
    pub fn start(
        &mut self,
        ws: Arc<Workspace>,
        due: Due,
        now: DateTime<Utc>,
        retry: Duration,
    ) -> impl Future<Output = TriggerDone> + Send + 'static {
        for (name, _) in &due.fresh {
            self.fired_at.insert(name.clone(), now);
        }
        let upstream = if due.poll {
            self.next_poll = Some(later(now, self.interval));
            self.upstream.clone()
        } else {
            Vec::new()
        };
        poll_and_run(ws, self.memory.clone(), upstream, due.fresh, retry)
    }

    /// The time of the next poll, once one ran.
    pub fn next_poll(&self) -> Option<DateTime<Utc>> {
        self.next_poll
    }
}

fn freshness_reason(last: Option<Fresh>, max_age: Duration, now: DateTime<Utc>) -> String {
    let max = humantime::format_duration(max_age);
    match last {
        None => format!("freshness: never built or checked (max_age {max})"),
        Some(f) => {
            let age = (now - f.ended_at).to_std().unwrap_or_default();
            let age = humantime::format_duration(Duration::from_secs(age.as_secs()));
            format!(
                "freshness: {age} old, due at max_age {max} less a lead of {}",
                humantime::format_duration(lead(max_age))
            )
        }
    }
}

/// Why `name` (with `on = "upstream"`) is to run now, or `None`.
async fn upstream_reason(
    ws: &Workspace,
    memory: &Mutex<Memory>,
    name: &AssetName,
    checked: &mut Vec<String>,
) -> crate::Result<Option<String>> {
    let lock = || memory.lock().unwrap_or_else(|p| p.into_inner());
    let asset = &ws.project.assets[name];
    let seen = match &asset.definition {
        Definition::Source(def) => {
            let SourceDef::Files(files) = def.as_ref() else {
                // A source read over the network is not polled: reading it is
                // fetching it, which its schedule does.
                return Ok(None);
            };
            let files = files.clone();
            let now = tokio::task::spawn_blocking(move || listing(&files))
                .await
                .unwrap_or_default();
            if lock().listings.get(name) == Some(&now) {
                return Ok(None);
            }
            Some(now)
        }
        _ => None,
    };
    checked.push(name.to_string());
    let kind = kinds::of(asset);
    let published = kind.published(ws).await?;
    let mut pins = Pins::new();
    for input in &asset.inputs {
        let version = kinds::of(&ws.project.assets[input])
            .published(ws)
            .await?
            .and_then(|p| p.version);
        match version {
            Some(v) => {
                pins.insert(input.to_string(), v);
            }
            // Never built, it waits for every input to have a version.
            None if published.is_none() => return Ok(None),
            None => {}
        }
    }
    let fingerprint = kind.fingerprint(ws, asset, &pins).await;
    let why = match &asset.partitioned {
        Some(_) if published.is_some() => {
            crate::status::partitions_behind(ws, kind.as_ref(), asset, &pins).await?
        }
        _ => stale_reason(kind.as_ref(), published.as_ref(), None, &fingerprint),
    };
    let mut memory = lock();
    if let Some(seen) = seen {
        memory.listings.insert(name.clone(), seen);
    }
    let Some(why) = why else {
        memory.started_for.remove(name);
        return Ok(None);
    };
    let fingerprint = match fingerprint {
        Ok(fp) => fp,
        Err(e) => {
            tracing::warn!(asset = %name, "trigger: not started, a run would fail: {e}");
            return Ok(None);
        }
    };
    if memory.started_for.get(name) == Some(&fingerprint) {
        // Started for this very state already, and its run did not make it
        // up to date: wait for a change rather than fail at every poll.
        return Ok(None);
    }
    memory.started_for.insert(name.clone(), fingerprint);
    Ok(Some(format!("on upstream: {why}")))
}

/// The longest wait between two tries of a triggered run that could not start.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Looks at the `upstream` assets' triggers, then runs them and the `fresh`
/// assets in one run; a run refused because another process holds the
/// warehouse is tried again later.
async fn poll_and_run(
    ws: Arc<Workspace>,
    memory: Arc<Mutex<Memory>>,
    upstream: Vec<AssetName>,
    fresh: Vec<(AssetName, String)>,
    retry: Duration,
) -> TriggerDone {
    let mut done = TriggerDone::default();
    let mut started: BTreeMap<AssetName, String> = fresh.into_iter().collect();
    for name in &upstream {
        match upstream_reason(&ws, &memory, name, &mut done.checked).await {
            Ok(Some(why)) => {
                started.entry(name.clone()).or_insert(why);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(asset = %name, "trigger: cannot tell whether it is stale: {e}")
            }
        }
    }
    if started.is_empty() {
        return done;
    }
    done.started = ws
        .project
        .order
        .iter()
        .filter_map(|n| started.get(n).map(|why| (n.to_string(), why.clone())))
        .collect();
    let targets: Vec<String> = done.started.iter().map(|(n, _)| n.clone()).collect();
    let reasons: Vec<String> = done
        .started
        .iter()
        .map(|(n, why)| format!("{n}: {why}"))
        .collect();
    tracing::info!(
        assets = %targets.join(", "),
        reasons = %reasons.join("; "),
        "trigger: starting a run"
    );
    let mut wait = retry;
    loop {
        let observer = Arc::new(RunId::default());
        match crate::run::run(ws.clone(), &targets, observer.clone()).await {
            Ok(summary) => {
                tracing::info!(
                    assets = %targets.join(", "),
                    run = summary.run_id,
                    ok = summary.ok,
                    "trigger: run finished"
                );
                done.run_id = Some(summary.run_id);
                done.ok = summary.ok;
                return done;
            }
            Err(e) if observer.get().is_none() && e.class() == ErrorClass::Transient => {
                tracing::warn!(
                    assets = %targets.join(", "),
                    "trigger: its run cannot start yet ({e}); trying again in {}s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
            Err(e) => {
                tracing::warn!(assets = %targets.join(", "), "trigger: its run failed: {e}");
                done.run_id = observer.get();
                return done;
            }
        }
    }
}

/// Hears a run's number.
#[derive(Default)]
struct RunId(Mutex<Option<i64>>);

impl RunId {
    fn get(&self) -> Option<i64> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Observer for RunId {
    fn run_started(&self, run_id: i64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(run_id);
    }
}

/// An asset with a trigger, as `sluice schedules` shows it.
#[derive(Debug, Clone)]
pub struct TriggerInfo {
    /// The asset.
    pub asset: String,
    /// Whether it has `on = "upstream"`.
    pub on_upstream: bool,
    /// Its `freshness.max_age`.
    pub max_age: Option<Duration>,
    /// When it was last fresh (built or found up to date).
    pub last_fresh: Option<DateTime<Utc>>,
    /// Its age now, when it was ever fresh.
    pub age: Option<Duration>,
    /// When its freshness is next due (in the past: due now).
    pub next_due: Option<DateTime<Utc>>,
}

/// Every asset with a trigger, in DAG order.
pub fn trigger_list(ws: &Workspace) -> crate::Result<Vec<TriggerInfo>> {
    let now = ws.now();
    let mut out = Vec::new();
    for name in &ws.project.order {
        let policy = &ws.project.assets[name].policy;
        if !policy.has_trigger() {
            continue;
        }
        let last_fresh = ws.metadata.last_fresh(name.as_str())?.map(|f| f.ended_at);
        out.push(TriggerInfo {
            asset: name.to_string(),
            on_upstream: policy.on.is_some(),
            max_age: policy.max_age,
            last_fresh,
            age: last_fresh.map(|t| (now - t).to_std().unwrap_or_default()),
            next_due: policy
                .max_age
                .map(|m| freshness_due(last_fresh, m, None, Duration::ZERO).max(now)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn freshness_is_due_a_tenth_of_max_age_early_and_at_once_when_never_fresh() {
        let hour = Duration::from_secs(3600);
        let built = at("2026-05-04T10:00:00Z");
        assert_eq!(
            freshness_due(Some(built), hour, None, Duration::ZERO),
            at("2026-05-04T10:54:00Z")
        );
        assert!(freshness_due(None, hour, None, Duration::ZERO) <= built);
        // Started at 10:54 and still not fresh: tried again a lead later.
        assert_eq!(
            freshness_due(
                Some(built),
                hour,
                Some(at("2026-05-04T10:54:00Z")),
                lead(hour)
            ),
            at("2026-05-04T11:00:00Z")
        );
        // Never fresh, started at 10:00: not again at every poll.
        assert_eq!(
            freshness_due(None, hour, Some(built), lead(hour)),
            at("2026-05-04T10:06:00Z")
        );
    }
}
