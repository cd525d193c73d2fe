//! Run logs in the metadata database: the log lines of each run, by asset and
//! attempt, in the order they were written.
//!
//! A line is kept once its attempt ends (the runner writes an attempt's lines
//! in one transaction beside its record), so what a killed process was doing
//! when it died is not kept, and neither is its attempt. Lines are numbered
//! per run (`seq`), so a reader that follows a run asks for the lines after
//! the last one it has.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::params;

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// The table, created by [`Metadata::open`]. Plain SQL PostgreSQL also runs.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS run_logs (
    run_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    asset TEXT,
    attempt INTEGER,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    target TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
";

/// A log line to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// Where it comes from: the module of sluice that wrote it, or `step` for
    /// a step's own output.
    pub target: String,
    /// The message, with its fields (`key=value`) after it.
    pub message: String,
}

/// A kept log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The run.
    pub run_id: i64,
    /// Its number within the run, from 1.
    pub seq: i64,
    /// The asset whose work wrote it; none for the run's own lines.
    pub asset: Option<String>,
    /// The attempt at the asset.
    pub attempt: Option<u32>,
    /// The line.
    pub line: LogLine,
}

/// Which lines of a run to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery<'a> {
    /// Only this asset's lines.
    pub asset: Option<&'a str>,
    /// Only lines numbered above this (a reader following a run).
    pub after: Option<i64>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl Metadata {
    /// Keeps `lines` of run `run_id`, written by `asset`'s attempt `attempt`
    /// (none for the run's own lines), numbered after the run's last line.
    pub fn append_logs(
        &self,
        run_id: i64,
        asset: Option<&str>,
        attempt: Option<u32>,
        lines: &[LogLine],
    ) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM run_logs WHERE run_id = ?1",
                params![run_id],
                |r| r.get(0),
            )?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO run_logs (run_id, seq, asset, attempt, at, level, target, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (i, l) in lines.iter().enumerate() {
                    insert.execute(params![
                        run_id,
                        last + 1 + i as i64,
                        asset,
                        attempt,
                        l.at.to_rfc3339_opts(SecondsFormat::Micros, true),
                        l.level,
                        l.target,
                        l.message,
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// The kept lines of run `run_id`, in the order they were written.
    pub fn logs(&self, run_id: i64, query: &LogQuery<'_>) -> Result<Vec<LogRecord>> {
        let limit = query.limit.map_or(i64::MAX, |l| l as i64);
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, asset, attempt, at, level, target, message FROM run_logs
                 WHERE run_id = ?1 AND seq > ?2 AND (?3 IS NULL OR asset = ?3)
                 ORDER BY seq LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![run_id, query.after.unwrap_or(0), query.asset, limit],
                |r| {
                    Ok(LogRecord {
                        run_id,
                        seq: r.get(0)?,
                        asset: r.get(1)?,
                        attempt: r.get(2)?,
                        line: LogLine {
                            at: parse_time(r.get::<_, String>(3)?),
                            level: r.get(4)?,
                            target: r.get(5)?,
                            message: r.get(6)?,
                        },
                    })
                },
            )?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine {
            at: "2026-12-05T10:00:00.123456Z".parse().unwrap(),
            level: "INFO".into(),
            target: "sluice".into(),
            message: message.into(),
        }
    }

    #[test]
    fn lines_are_numbered_per_run_and_read_by_asset_and_after() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metadata::open(&dir.path().join("sluice.db")).unwrap();
        m.append_logs(1, Some("a"), Some(1), &[line("a1"), line("a2")])
            .unwrap();
        m.append_logs(2, Some("a"), Some(1), &[line("other run")])
            .unwrap();
        m.append_logs(1, Some("b"), Some(2), &[line("b1")]).unwrap();
        m.append_logs(1, None, None, &[line("run")]).unwrap();
        m.append_logs(1, Some("b"), Some(2), &[]).unwrap();

        let all = m.logs(1, &LogQuery::default()).unwrap();
        let shown: Vec<_> = all
            .iter()
            .map(|r| {
                (
                    r.seq,
                    r.asset.as_deref(),
                    r.attempt,
                    r.line.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (1, Some("a"), Some(1), "a1"),
                (2, Some("a"), Some(1), "a2"),
                (3, Some("b"), Some(2), "b1"),
                (4, None, None, "run"),
            ]
        );
        assert_eq!(all[0].line, line("a1"), "the time keeps its microseconds");

        let b = m
            .logs(
                1,
                &LogQuery {
                    asset: Some("b"),
                    ..LogQuery::default()
                },
            )
            .unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].line.message, "b1");

        let after = m
            .logs(
                1,
                &LogQuery {
                    after: Some(2),
                    limit: Some(1),
                    ..LogQuery::default()
                },
            )
            .unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].seq, 3);
        assert!(m.logs(3, &LogQuery::default()).unwrap().is_empty());
    }
}
