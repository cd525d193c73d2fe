//! Per asset, what its attempts add up to over the whole run log: the source of
//! the pipeline metrics on `/metrics`. They are read from the database at each
//! scrape, so they survive restarts and count the runs of every process (a
//! `sluice run` from cron as well as the server's own).
//!
//! A run's outcome for an asset is its attempt that no retry followed
//! (`retry_in_ms` unset): a failure that was retried and then built counts once,
//! as built, and once as a retry. A blocked asset is recorded as attempt 0 —
//! it was not attempted — so it counts as a run's outcome but not in durations.

use crate::Result;
use crate::metadata::Metadata;

/// Upper bounds, in milliseconds, of the attempt-duration histogram's buckets:
/// 10 ms to an hour.
pub const DURATION_BUCKETS_MS: [u64; 17] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000,
    600_000, 1_800_000, 3_600_000,
];

/// The kinds whose rows come from outside the project (extracted): a source's
/// files, a step's output file. Words as `AssetKind::as_str` writes them.
const EXTRACTING_KINDS: &str = "('source', 'step')";
/// The kinds whose rows a query computes (transformed).
const TRANSFORMING_KINDS: &str = "('table', 'feature view', 'predictions')";

/// An asset's attempts over the whole run log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineTotals {
    /// The asset.
    pub asset: String,
    /// Runs by the status the asset ended them with (`built`, `up_to_date`,
    /// `failed`, `blocked`).
    pub runs: Vec<(String, u64)>,
    /// Whether the newest run that reached an outcome for it ended `failed`.
    pub failing: bool,
    /// Attempts that were retries (attempt 2 and later of a run).
    pub retries: u64,
    /// How long its attempts took.
    pub durations: DurationCounts,
    /// Rows of its built attempts, by stage.
    pub stages: StageRows,
}

/// Attempt durations as a histogram over [`DURATION_BUCKETS_MS`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DurationCounts {
    /// Per bucket, the attempts that took at most its bound (cumulative).
    pub cumulative: Vec<u64>,
    /// Every attempt (blocked assets, not attempted, left out).
    pub count: u64,
    /// Their durations added up, in milliseconds.
    pub sum_ms: u64,
}

/// Rows of an asset's built attempts, by the stage they went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageRows {
    /// Read from outside: a source's rows, a step's output rows.
    pub extract: u64,
    /// Judged by a contract.
    pub validate: u64,
    /// Set aside by a contract into the quarantine.
    pub quarantine: u64,
    /// Computed by a query: a table's, a feature view's, predictions' rows.
    pub transform: u64,
    /// Published: committed as the new version (or written by an export).
    pub publish: u64,
    /// Written to the online store (feature views, predictions).
    pub online: u64,
}

impl StageRows {
    /// Each stage's name (the `stage` label) and rows, in the order rows flow.
    pub fn by_stage(&self) -> [(&'static str, u64); 6] {
        [
            ("extract", self.extract),
            ("transform", self.transform),
            ("validate", self.validate),
            ("quarantine", self.quarantine),
            ("publish", self.publish),
            ("online", self.online),
        ]
    }
}

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

impl Metadata {
    /// Every asset with a recorded attempt, by name, with its totals.
    pub fn pipeline_totals(&self) -> Result<Vec<PipelineTotals>> {
        let buckets: String = DURATION_BUCKETS_MS
            .iter()
            .map(|b| {
                format!(", sum(CASE WHEN attempt >= 1 AND duration_ms <= {b} THEN 1 ELSE 0 END)")
            })
            .collect();
        let sql = format!(
            "SELECT asset,
                sum(CASE WHEN attempt > 1 THEN 1 ELSE 0 END),
                sum(CASE WHEN attempt >= 1 THEN 1 ELSE 0 END),
                sum(CASE WHEN attempt >= 1 THEN duration_ms ELSE 0 END),
                sum(CASE WHEN status = 'built' AND kind IN {EXTRACTING_KINDS} THEN rows_in ELSE 0 END),
                sum(CASE WHEN status = 'built' THEN coalesce(rows_validated, 0) ELSE 0 END),
                sum(CASE WHEN status = 'built' THEN rows_quarantined ELSE 0 END),
                sum(CASE WHEN status = 'built' AND kind IN {TRANSFORMING_KINDS} THEN rows_in ELSE 0 END),
                sum(CASE WHEN status = 'built' THEN rows_out ELSE 0 END),
                sum(coalesce(rows_online, 0)){buckets}
             FROM attempts GROUP BY asset ORDER BY asset"
        );
        let mut out: Vec<PipelineTotals> = self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(count);
                Ok(PipelineTotals {
                    asset: r.get(0)?,
                    retries: n(1)?,
                    durations: DurationCounts {
                        count: n(2)?,
                        sum_ms: n(3)?,
                        cumulative: (0..DURATION_BUCKETS_MS.len())
                            .map(|i| n(10 + i))
                            .collect::<rusqlite::Result<_>>()?,
                    },
                    stages: StageRows {
                        extract: n(4)?,
                        validate: n(5)?,
                        quarantine: n(6)?,
                        transform: n(7)?,
                        publish: n(8)?,
                        online: n(9)?,
                    },
                    ..Default::default()
                })
            })?;
            rows.collect()
        })?;
        let outcomes: Vec<(String, String, i64)> = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT asset, status, count(*) FROM attempts WHERE retry_in_ms IS NULL
                 GROUP BY asset, status ORDER BY asset, status",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })?;
        // The newest outcome of each asset: attempts are written when they
        // end, so the newest written (`rowid`; an identity column in
        // PostgreSQL) is the newest. One grouped pass: a subquery per row
        // would be quadratic in the run log (minutes at 200,000 attempts).
        let newest: Vec<(String, String)> = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT asset, status FROM attempts WHERE rowid IN
                    (SELECT max(rowid) FROM attempts WHERE retry_in_ms IS NULL GROUP BY asset)",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        for t in &mut out {
            t.runs = outcomes
                .iter()
                .filter(|(asset, _, _)| *asset == t.asset)
                .map(|(_, status, n)| (status.clone(), count(*n)))
                .collect();
            t.failing = newest
                .iter()
                .any(|(asset, status)| *asset == t.asset && status == "failed");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttemptRecord;

    #[test]
    fn a_retried_failure_counts_as_a_retry_and_the_run_as_its_last_attempt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        let attempt = |run_id, asset: &str, n, status: &str, ms, retry: Option<u64>| {
            db.record_attempt(&AttemptRecord {
                run_id,
                asset: asset.into(),
                attempt: n,
                status: status.into(),
                duration_ms: ms,
                input_versions: "{}".into(),
                retry_in_ms: retry,
                kind: if asset == "src" { "source" } else { "table" }.into(),
                rows_in: if status == "built" { 10 } else { 0 },
                rows_out: if status == "built" { 8 } else { 0 },
                rows_quarantined: if status == "built" { 2 } else { 0 },
                rows_validated: if status == "built" { 10 } else { 0 },
                ..Default::default()
            })
            .expect("attempt");
        };
        let one = db.begin_run(None, &[]).expect("run");
        attempt(one, "src", 1, "failed", 5, Some(100));
        attempt(one, "src", 2, "built", 40, None);
        attempt(one, "t", 1, "built", 3_000, None);
        let two = db.begin_run(None, &[]).expect("run");
        attempt(two, "src", 1, "failed", 7_200_000, None);
        attempt(two, "t", 0, "blocked", 0, None);

        let totals = db.pipeline_totals().expect("totals");
        assert_eq!(totals.len(), 2);
        let src = &totals[0];
        assert_eq!(src.asset, "src");
        assert_eq!(
            src.runs,
            vec![("built".to_string(), 1), ("failed".to_string(), 1)]
        );
        assert!(src.failing);
        assert_eq!(src.retries, 1);
        // Three attempts: 5 ms, 40 ms and two hours (past the last bucket).
        assert_eq!(src.durations.count, 3);
        assert_eq!(src.durations.sum_ms, 5 + 40 + 7_200_000);
        assert_eq!(src.durations.cumulative[0], 1);
        assert_eq!(src.durations.cumulative[2], 2);
        assert_eq!(src.durations.cumulative.last(), Some(&2));
        assert_eq!(
            (
                src.stages.extract,
                src.stages.transform,
                src.stages.validate
            ),
            (10, 0, 10)
        );
        assert_eq!((src.stages.publish, src.stages.quarantine), (8, 2));

        let t = &totals[1];
        assert_eq!(
            t.runs,
            vec![("blocked".to_string(), 1), ("built".to_string(), 1)]
        );
        assert!(!t.failing, "blocked is not failed: its upstream failed");
        assert_eq!(t.retries, 0);
        // The blocked record was not an attempt.
        assert_eq!(t.durations.count, 1);
        assert_eq!((t.stages.extract, t.stages.transform), (0, 10));
    }
}
