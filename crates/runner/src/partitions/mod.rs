//! Partitioned sources and tables (`partitioned = { by, column, start }`):
//! built one time partition at a time, each partition its own Delta commit
//! that replaces exactly the rows whose partition column falls in its range
//! (`replaceWhere`), each recorded with the fingerprint it was built from.
//!
//! A partition's fingerprint is the asset's (its definition and its inputs'
//! versions, as for any asset), the partitioning and the partition's label:
//! a partition is up to date when its record holds that fingerprint. Which
//! partitions a run looks at is its [`PartitionScope`]: every one from the
//! first to the present (a plain run), a range (`sluice backfill`), or the
//! partition a schedule's tick stands for.
//!
//! Architecture invariant: a partition's commit is atomic and replaces only
//! its own range; a partition whose build failed or was stopped keeps what its
//! last good build published, and a partition is recorded built only after its
//! commit, so an interrupted backfill rebuilds what it had not finished and
//! nothing else.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use sluice_core::AssetStatus;
use sluice_core::partition::Partition;
use sluice_project::{Asset, Partitioning, fingerprint};

use crate::kinds::{Job, Kind, Published};
use crate::outcome::{AssetOutcome, Failure, failed};
use crate::pins::Pins;
use crate::{Observer, Workspace};

mod query;

pub(crate) use query::{bind, column_type, restrict};

/// Which partitions of the partitioned assets a run builds (those of them
/// that are missing, failed or stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionScope {
    /// Every partition from the first to the one holding the present (or the
    /// asset's `end`): a plain run.
    #[default]
    All,
    /// The partitions holding the times from `from` to `to`, both included:
    /// `sluice backfill`.
    Range {
        /// A time in the first partition.
        from: NaiveDateTime,
        /// A time in the last partition.
        to: NaiveDateTime,
        /// How many partitions of an asset build at once.
        parallel: usize,
    },
    /// A schedule's tick due at this time: the newest partition that ended at
    /// or before it.
    Tick(DateTime<Utc>),
}

impl PartitionScope {
    /// The partitions of `p` it covers, first to last, at the present `now`.
    pub fn select(&self, p: &Partitioning, now: DateTime<Utc>) -> Vec<Partition> {
        let all = p.all(now.naive_utc());
        match *self {
            PartitionScope::All => all,
            // A backfill may name partitions after the present.
            PartitionScope::Range { from, to, .. } => p
                .grain
                .range(from.max(p.start.start), to)
                .into_iter()
                .filter(|x| p.end.is_none_or(|e| x.start <= e.start))
                .collect(),
            PartitionScope::Tick(due) => {
                let before = p.grain.floor(due.naive_utc()) - chrono::Duration::microseconds(1);
                let tick = p.grain.partition(before);
                all.into_iter().filter(|x| *x == tick).collect()
            }
        }
    }

    /// How many partitions of one asset build at once.
    fn parallel(&self) -> usize {
        match self {
            PartitionScope::Range { parallel, .. } => (*parallel).max(1),
            _ => 1,
        }
    }

    /// How the run log and the queue tell scopes apart.
    pub(crate) fn key(&self) -> String {
        match self {
            PartitionScope::All => String::new(),
            PartitionScope::Range { from, to, .. } => format!("partitions {from} to {to}"),
            PartitionScope::Tick(due) => format!("tick {}", sluice_core::render::instant(*due)),
        }
    }
}

/// What a run did to the partitions of one asset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionsOutcome {
    /// Partitions the run looked at.
    pub selected: usize,
    /// Partitions it built.
    pub built: usize,
    /// Partitions it found up to date.
    pub up_to_date: usize,
    /// The labels of the partitions whose build failed.
    pub failed: Vec<String>,
}

/// A partitioned asset in a run.
pub(crate) struct PartitionJob<'a> {
    pub ws: &'a Workspace,
    pub kind: &'a dyn Kind,
    pub asset: &'a Asset,
    pub partitioning: &'a Partitioning,
    pub run_id: i64,
    pub pins: &'a Pins,
}

impl PartitionJob<'_> {
    /// Each partition's fingerprint: the asset's definition and inputs as for
    /// any asset, the partitioning and the partition's label — except that an
    /// input partitioned by the same size counts by its partition of the same
    /// label only (the hash of its rows), as the query reads it with `$start`
    /// and `$end`: one new day upstream leaves the other days up to date.
    pub(crate) async fn fingerprints(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<String>, Failure> {
        let ws = self.ws;
        let same_size = |input: &str| {
            ws.project
                .assets
                .values()
                .find(|a| a.name.as_str() == input)
                .and_then(|a| a.partitioned.as_ref())
                .is_some_and(|p| p.grain == self.partitioning.grain)
        };
        let (by_partition, whole): (Pins, Pins) = self
            .pins
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .partition(|(k, _)| same_size(k));
        let base = self.kind.fingerprint(ws, self.asset, &whole).await?;
        let mut inputs = Vec::new();
        for input in by_partition.keys() {
            let records: BTreeMap<String, String> = ws
                .metadata
                .partitions(input)
                .map_err(|e| Failure::from(crate::Error::from(e)))?
                .into_iter()
                .filter_map(|r| {
                    let hash = r.content.or(r.built.map(|(v, fp)| format!("{fp}@{v}")))?;
                    Some((r.partition, hash))
                })
                .collect();
            inputs.push((input, records));
        }
        let described = self.partitioning.describe();
        // A partition still open, of rows kept elsewhere, is never up to
        // date: what it holds can grow until it ends. Built once more after
        // its end, it is then kept.
        let now = DateTime::from_timestamp_micros(ws.clock.now_micros())
            .unwrap_or_default()
            .naive_utc();
        let open_mark = format!("open in run {}", self.run_id);
        Ok(partitions
            .iter()
            .map(|x| {
                let label = x.label();
                let mut parts = vec![base.clone(), described.clone(), label.clone()];
                if self.kind.reads_elsewhere() && x.end > now {
                    parts.push(open_mark.clone());
                }
                for (input, records) in &inputs {
                    let hash = records.get(&label).map_or("none", String::as_str);
                    parts.push(format!("{input}[{label}]#{hash}"));
                }
                fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .collect())
    }
}

/// Brings the selected partitions of a partitioned asset up to date: builds
/// each one that is missing, failed or stale, as its own commit (the first
/// alone, the others `parallel` at a time for a backfill that asks).
pub(crate) async fn materialize(
    pj: &PartitionJob<'_>,
    scope: PartitionScope,
    progress: Option<&dyn Observer>,
    published: Option<Published>,
    started: Instant,
) -> AssetOutcome {
    let PartitionJob {
        ws,
        kind,
        asset,
        partitioning,
        run_id,
        pins,
    } = *pj;
    let name = asset.name.as_str();
    let previous = published.as_ref().and_then(|p| p.version);
    let fail = |e: Failure| failed(asset, started, e, previous);
    if published.is_none()
        && let Err(e) = ws.metadata.forget_partitions(name)
    {
        // The table is gone (or never was): its records describe nothing.
        return fail(Failure::from(crate::Error::from(e)));
    }
    let records: BTreeMap<String, Option<String>> = match ws.metadata.partitions(name) {
        Ok(r) => r
            .into_iter()
            .map(|r| (r.partition, r.built.map(|(_, fp)| fp)))
            .collect(),
        Err(e) => return fail(Failure::from(crate::Error::from(e))),
    };
    let now = DateTime::from_timestamp_micros(ws.clock.now_micros()).unwrap_or_default();
    let selected = scope.select(partitioning, now);
    if selected.is_empty() && previous.is_none() {
        return fail(Failure::from(format!(
            "{} `{name}` has no partition to build yet: its first, {}, {}\n  help: wait for it, or set `start` earlier",
            asset.kind(),
            partitioning.start,
            if partitioning.start.start > now.naive_utc() {
                "has not begun"
            } else {
                "is not the partition this run builds"
            }
        )));
    }
    let fingerprints = match pj.fingerprints(&selected).await {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let todo: Vec<(Partition, String)> = selected
        .iter()
        .copied()
        .zip(fingerprints)
        .filter(|(x, fp)| records.get(&x.label()).and_then(Option::as_ref) != Some(fp))
        .collect();
    let mut result = PartitionsOutcome {
        selected: selected.len(),
        up_to_date: selected.len() - todo.len(),
        ..PartitionsOutcome::default()
    };
    let mut outcome = AssetOutcome::new(asset, AssetStatus::UpToDate, previous, 0, started);
    outcome.rows_in = 0;
    outcome.rows_out = 0;
    let mut first_failure: Option<AssetOutcome> = None;
    let total = todo.len();
    let build = |(x, fp): (Partition, String), published: Option<Published>| async move {
        let job = Job {
            ws,
            asset,
            run_id,
            pins,
            fingerprint: fp,
            published,
            started: Instant::now(),
            partition: Some(x),
            progress: None,
        };
        tracing::debug!("building `{name}` partition {x}");
        (x, kind.build(&job).await)
    };
    // The first partition builds alone: it may create the table, or replace
    // it whole when its columns changed; the others replace their own rows.
    let mut todo = todo.into_iter();
    let first = match todo.next() {
        Some(first) => vec![build(first, published.clone()).await],
        None => Vec::new(),
    };
    let published = ws
        .store
        .latest(name)
        .await
        .ok()
        .flatten()
        .map(|l| Published {
            version: Some(l.version),
            rows: l.rows,
            committed_at: l.committed_at,
            fingerprint: None,
            delta: Some(l),
        });
    let rest = futures::stream::iter(todo.map(|t| build(t, published.clone())))
        .buffer_unordered(scope.parallel());
    let mut builds = futures::stream::iter(first).chain(rest);
    let mut done = 0;
    while let Some((x, built)) = builds.next().await {
        done += 1;
        let label = x.label();
        // A built partition was recorded by its writer, right after its commit.
        let ok = built.status == AssetStatus::Built;
        if ok {
            result.built += 1;
            outcome.status = AssetStatus::Built;
            outcome.version = outcome.version.max(built.version);
        } else {
            result.failed.push(label.clone());
            let error = built.error.clone().unwrap_or_default();
            if let Err(e) = ws.metadata.partition_failed(name, &label, run_id, &error) {
                tracing::warn!("could not record partition {label} of `{name}`: {e}");
            }
        }
        outcome.rows_in += built.rows_in;
        outcome.rows_out += built.rows_out;
        outcome.rows_quarantined += built.rows_quarantined;
        outcome.warnings += built.warnings;
        if !ok && first_failure.is_none() {
            first_failure = Some(AssetOutcome {
                error: built.error.map(|e| format!("partition {label}: {e}")),
                ..built
            });
        }
        if let Some(p) = progress {
            p.partition_done(name, &label, ok, done, total);
        }
    }
    result.failed.sort();
    if let Some(failure) = first_failure {
        let n = result.failed.len();
        outcome.status = AssetStatus::Failed;
        outcome.class = failure.class;
        outcome.error = failure.error.map(|e| {
            if n > 1 {
                format!("{n} of {total} partitions failed; the first: {e}")
            } else {
                e
            }
        });
    }
    if outcome.status == AssetStatus::UpToDate {
        // Nothing built: account for the table as it stands.
        outcome.rows_in = 0;
        outcome.rows_out = 0;
    }
    outcome.duration_ms = started.elapsed().as_millis() as u64;
    outcome.partitions = Some(result);
    outcome
}

/// `sluice backfill ASSET --from --to`: builds the partitions of `asset` from
/// the one holding `from` to the one holding `to` (labels, dates or times),
/// with everything upstream that is stale — partitioned upstream assets, the
/// same range of theirs. Partitions built by the same definition from the
/// same inputs are skipped, so a backfill that was interrupted picks up where
/// it stopped.
pub async fn backfill(
    ws: std::sync::Arc<Workspace>,
    asset: &str,
    (from, to): (&str, &str),
    parallel: usize,
    observer: std::sync::Arc<dyn Observer>,
) -> crate::Result<crate::RunSummary> {
    let Some(partitioning) = ws
        .project
        .assets
        .values()
        .find(|a| a.name.as_str() == asset)
        .map(|a| a.partitioned.clone())
    else {
        return Err(crate::Error::unknown_assets(
            &ws.project,
            vec![asset.to_string()],
        ));
    };
    let Some(p) = partitioning else {
        return Err(crate::status::not_partitioned(&ws, asset));
    };
    let read = |flag: &str, text: &str| {
        p.parse(text).ok_or_else(|| {
            crate::Error::Partitions(format!(
                "{flag} `{text}` is not a partition of `{asset}`\n  help: `{asset}` is partitioned by {}: write a label such as `{}`, or a date or time inside one",
                p.grain,
                p.start
            ))
        })
    };
    let (first, last) = (read("--from", from)?, read("--to", to)?);
    if last < first {
        return Err(crate::Error::Partitions(format!(
            "--to {last} comes before --from {first}\n  help: give the first partition with --from and the last with --to"
        )));
    }
    // The range's last moment, so that a partitioned upstream asset with
    // finer partitions (hours under days) builds all of the last one.
    let scope = PartitionScope::Range {
        from: first.start,
        to: last.end - chrono::Duration::microseconds(1),
        parallel: parallel.max(1),
    };
    crate::run::run_scoped(ws, &[asset.to_string()], scope, observer).await
}

#[cfg(test)]
mod tests;
