//! Quality history in the metadata database: each asset's validation report per
//! run (as JSON, for `sluice report`) and one row per check, for pass rates over a
//! period (`sluice quality`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// One check's outcome, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRecord {
    /// The check's name.
    pub name: String,
    /// `error`, `warn` or `quarantine`.
    pub severity: String,
    /// `pass`, `fail` or `skipped`.
    pub verdict: String,
    /// Score in [0, 1].
    pub score: f64,
    /// The measured value.
    pub observed: Option<f64>,
}

/// A check's record over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckHistory {
    /// The check's name.
    pub name: String,
    /// Its severity in the newest run.
    pub severity: String,
    /// Runs in which it was judged (not skipped).
    pub judged: u64,
    /// Runs in which it passed.
    pub passed: u64,
    /// Mean score over the judged runs.
    pub mean_score: f64,
    /// The newest verdict.
    pub last_verdict: String,
}

/// One check of an asset in one run: a point of its series over time.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPoint {
    /// The run.
    pub run_id: i64,
    /// When its report was made.
    pub at: DateTime<Utc>,
    /// The check's name (`drift(amount)`, `null_fraction(email)`...).
    pub name: String,
    /// `pass`, `fail` or `skipped`.
    pub verdict: String,
    /// Score in [0, 1].
    pub score: f64,
    /// The measured value (a drift score, a fraction...).
    pub observed: Option<f64>,
}

/// One run's checks of an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct RunQuality {
    /// The run.
    pub run_id: i64,
    /// When its report was made.
    pub at: DateTime<Utc>,
    /// Checks judged (not skipped).
    pub judged: u64,
    /// Checks passed.
    pub passed: u64,
}

impl Metadata {
    /// Records an asset's report for a run, replacing one recorded before.
    pub fn record_report(
        &self,
        run_id: i64,
        asset: &str,
        created_at: DateTime<Utc>,
        json: &str,
        checks: &[CheckRecord],
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let at = created_at.to_rfc3339();
            tx.execute(
                "INSERT INTO reports (run_id, asset, created_at, json) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id, asset) DO UPDATE SET created_at = excluded.created_at, json = excluded.json",
                params![run_id, asset, at, json],
            )?;
            tx.execute(
                "DELETE FROM checks WHERE run_id = ?1 AND asset = ?2",
                params![run_id, asset],
            )?;
            for k in checks {
                tx.execute(
                    "INSERT INTO checks (run_id, asset, name, severity, verdict, score, observed, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![run_id, asset, k.name, k.severity, k.verdict, k.score, k.observed, at],
                )?;
            }
            tx.commit()
        })
    }

    /// The report of `asset` in `run_id`, or in its newest run with a report.
    pub fn report(&self, asset: &str, run_id: Option<i64>) -> Result<Option<(i64, String)>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT run_id, json FROM reports WHERE asset = ?1 AND (?2 IS NULL OR run_id = ?2)
                 ORDER BY run_id DESC LIMIT 1",
            )?;
            stmt.query_row(params![asset, run_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
    }

    /// Per check of `asset`, its record since `since`, by name.
    pub fn check_history(&self, asset: &str, since: DateTime<Utc>) -> Result<Vec<CheckHistory>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name,
                    (SELECT severity FROM checks l WHERE l.asset = k.asset AND l.name = k.name ORDER BY run_id DESC LIMIT 1),
                    sum(CASE WHEN verdict <> 'skipped' THEN 1 ELSE 0 END), sum(CASE WHEN verdict = 'pass' THEN 1 ELSE 0 END),
                    coalesce(avg(CASE WHEN verdict <> 'skipped' THEN score END), 1.0),
                    (SELECT verdict FROM checks l WHERE l.asset = k.asset AND l.name = k.name ORDER BY run_id DESC LIMIT 1)
                 FROM checks k WHERE asset = ?1 AND created_at >= ?2 GROUP BY name ORDER BY name",
            )?;
            let rows = stmt.query_map(params![asset, since.to_rfc3339()], |r| {
                Ok(CheckHistory {
                    name: r.get(0)?,
                    severity: r.get(1)?,
                    judged: r.get::<_, i64>(2)? as u64,
                    passed: r.get::<_, i64>(3)? as u64,
                    mean_score: r.get(4)?,
                    last_verdict: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Every check of `asset` in its newest `runs` runs with a report, oldest
    /// first: the series the dashboard charts.
    pub fn check_points(&self, asset: &str, runs: usize) -> Result<Vec<CheckPoint>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT run_id, created_at, name, verdict, score, observed FROM checks
                 WHERE asset = ?1 AND run_id IN
                   (SELECT DISTINCT run_id FROM checks WHERE asset = ?1 ORDER BY run_id DESC LIMIT ?2)
                 ORDER BY run_id, name",
            )?;
            let rows = stmt.query_map(params![asset, runs as i64], |r| {
                Ok(CheckPoint {
                    run_id: r.get(0)?,
                    at: parse_time(r.get(1)?),
                    name: r.get(2)?,
                    verdict: r.get(3)?,
                    score: r.get(4)?,
                    observed: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Per run of `asset` since `since`, newest first: checks judged and passed.
    pub fn quality_runs(&self, asset: &str, since: DateTime<Utc>) -> Result<Vec<RunQuality>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT run_id, min(created_at), sum(CASE WHEN verdict <> 'skipped' THEN 1 ELSE 0 END), sum(CASE WHEN verdict = 'pass' THEN 1 ELSE 0 END)
                 FROM checks WHERE asset = ?1 AND created_at >= ?2 GROUP BY run_id ORDER BY run_id DESC",
            )?;
            let rows = stmt.query_map(params![asset, since.to_rfc3339()], |r| {
                Ok(RunQuality {
                    run_id: r.get(0)?,
                    at: parse_time(r.get(1)?),
                    judged: r.get::<_, i64>(2)? as u64,
                    passed: r.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_pass_rates_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = Metadata::open(&dir.path().join("sluice.db")).unwrap();
        let check = |name: &str, verdict: &str| CheckRecord {
            name: name.into(),
            severity: "error".into(),
            verdict: verdict.into(),
            score: if verdict == "pass" { 1.0 } else { 0.5 },
            observed: Some(1.0),
        };
        let r1 = db.begin_run(None, &[]).unwrap();
        db.record_report(
            r1,
            "a",
            Utc::now(),
            "{\"run\":1}",
            &[check("x", "pass"), check("y", "fail")],
        )
        .unwrap();
        let r2 = db.begin_run(None, &[]).unwrap();
        db.record_report(
            r2,
            "a",
            Utc::now(),
            "{\"run\":2}",
            &[check("x", "pass"), check("y", "skipped")],
        )
        .unwrap();
        assert_eq!(
            db.report("a", None).unwrap(),
            Some((r2, "{\"run\":2}".into()))
        );
        assert_eq!(db.report("a", Some(r1)).unwrap().unwrap().0, r1);
        assert_eq!(db.report("b", None).unwrap(), None);
        let points = db.check_points("a", 1).unwrap();
        assert_eq!(
            points
                .iter()
                .map(|p| (p.run_id, p.name.as_str(), p.verdict.as_str()))
                .collect::<Vec<_>>(),
            [(r2, "x", "pass"), (r2, "y", "skipped")]
        );
        assert_eq!(db.check_points("a", 10).unwrap().len(), 4);
        let since = Utc::now() - chrono::Duration::days(1);
        let h = db.check_history("a", since).unwrap();
        assert_eq!((h[0].judged, h[0].passed), (2, 2));
        assert_eq!(
            (h[1].judged, h[1].passed, h[1].last_verdict.as_str()),
            (1, 0, "skipped")
        );
        let runs = db.quality_runs("a", since).unwrap();
        assert_eq!(
            runs.iter()
                .map(|r| (r.run_id, r.judged, r.passed))
                .collect::<Vec<_>>(),
            vec![(r2, 1, 1), (r1, 2, 1)]
        );
    }
}
