//! The metadata database: runs, per-asset attempts and quality reports, in SQLite (WAL, full sync),
//! so the run log survives crashes. A run killed mid-way is marked `abandoned` by
//! the next run, which holds the run lock and so knows no one else is running.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::{Error, Result};

/// The state of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// In progress (or killed, until the next run notices).
    Running,
    /// Every asset asked for is built or up to date.
    Succeeded,
    /// At least one asset failed or was blocked.
    Failed,
    /// The process died before finishing.
    Abandoned,
}

impl RunState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Abandoned => "abandoned",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "abandoned" => RunState::Abandoned,
            _ => RunState::Running,
        }
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Run number, increasing.
    pub id: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub state: RunState,
    /// The profile in force.
    pub profile: Option<String>,
    /// The assets asked for (empty: all).
    pub targets: Vec<String>,
    /// Assets by status word, as `built=3 up_to_date=2`.
    pub counts: String,
}

/// One attempt at materializing one asset in one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttemptRecord {
    /// The run.
    pub run_id: i64,
    /// The asset.
    pub asset: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// `built`, `up_to_date`, `failed` or `blocked`.
    pub status: String,
    /// When the attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// How long it took.
    pub duration_ms: u64,
    /// Input asset versions read, as JSON `{"name": version}`.
    pub input_versions: String,
    /// The version written or found up to date.
    pub output_version: Option<u64>,
    /// Rows that came in.
    pub rows_in: u64,
    /// Rows published.
    pub rows_out: u64,
    /// Rows set aside by contracts.
    pub rows_quarantined: u64,
    /// Why it failed or was blocked.
    pub error: Option<String>,
}

/// The metadata database of a warehouse.
#[derive(Debug)]
pub struct Metadata {
    conn: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state TEXT NOT NULL,
    profile TEXT,
    targets TEXT NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    asset TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    duration_ms INTEGER NOT NULL,
    input_versions TEXT NOT NULL,
    output_version INTEGER,
    rows_in INTEGER NOT NULL,
    rows_out INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (run_id, asset, attempt)
);
CREATE INDEX IF NOT EXISTS attempts_by_asset ON attempts(asset, run_id);
CREATE TABLE IF NOT EXISTS reports (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    asset TEXT NOT NULL,
    created_at TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (run_id, asset)
);
CREATE TABLE IF NOT EXISTS checks (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    asset TEXT NOT NULL,
    name TEXT NOT NULL,
    severity TEXT NOT NULL,
    verdict TEXT NOT NULL,
    score REAL NOT NULL,
    observed REAL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, asset, name)
);
CREATE INDEX IF NOT EXISTS checks_by_asset ON checks(asset, created_at);
";

impl Metadata {
    /// Opens (creating if needed) `warehouse/sluice.db`.
    pub fn open(warehouse: &Path) -> Result<Self> {
        std::fs::create_dir_all(warehouse).map_err(|source| Error::Io {
            path: warehouse.to_path_buf(),
            source,
        })?;
        let path = warehouse.join("sluice.db");
        let err = |source| Error::Metadata {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| Error::Metadata {
            path: self.path.clone(),
            source,
        })
    }

    /// Records a new run and returns its id. Call while holding the run lock.
    pub fn begin_run(&self, profile: Option<&str>, targets: &[String]) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = 'abandoned' WHERE state = 'running'",
                [],
            )?;
            c.execute(
                "INSERT INTO runs (started_at, state, profile, targets, pid) VALUES (?1, 'running', ?2, ?3, ?4)",
                params![
                    Utc::now().to_rfc3339(),
                    profile,
                    serde_json::to_string(targets).unwrap_or_default(),
                    std::process::id()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Records one attempt.
    pub fn record_attempt(&self, a: &AttemptRecord) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO attempts (run_id, asset, attempt, status, started_at, duration_ms,
                    input_versions, output_version, rows_in, rows_out, rows_quarantined, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    a.run_id,
                    a.asset,
                    a.attempt,
                    a.status,
                    a.started_at.map(|t| t.to_rfc3339()),
                    a.duration_ms as i64,
                    a.input_versions,
                    a.output_version.map(|v| v as i64),
                    a.rows_in as i64,
                    a.rows_out as i64,
                    a.rows_quarantined as i64,
                    a.error,
                ],
            )?;
            Ok(())
        })
    }

    /// Marks a run finished.
    pub fn finish_run(&self, id: i64, state: RunState) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = ?2, finished_at = ?3 WHERE id = ?1",
                params![id, state.as_str(), Utc::now().to_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// The newest runs first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT r.id, r.started_at, r.finished_at, r.state, r.profile, r.targets,
                    (SELECT group_concat(status || '=' || n, ' ') FROM
                        (SELECT status, count(*) AS n FROM attempts a WHERE a.run_id = r.id
                           AND a.attempt = (SELECT max(attempt) FROM attempts b WHERE b.run_id = a.run_id AND b.asset = a.asset)
                         GROUP BY status ORDER BY status))
                 FROM runs r ORDER BY r.id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |row| {
                Ok(RunRecord {
                    id: row.get(0)?,
                    started_at: parse_time(row.get::<_, String>(1)?),
                    finished_at: row.get::<_, Option<String>>(2)?.map(parse_time),
                    state: RunState::parse(&row.get::<_, String>(3)?),
                    profile: row.get(4)?,
                    targets: serde_json::from_str(&row.get::<_, String>(5)?).unwrap_or_default(),
                    counts: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    /// The attempts of a run, in the order they were recorded.
    pub fn attempts(&self, run_id: i64) -> Result<Vec<AttemptRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT run_id, asset, attempt, status, started_at, duration_ms, input_versions, output_version,
                    rows_in, rows_out, rows_quarantined, error FROM attempts WHERE run_id = ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([run_id], |row| {
                Ok(AttemptRecord {
                    run_id: row.get(0)?,
                    asset: row.get(1)?,
                    attempt: row.get(2)?,
                    status: row.get(3)?,
                    started_at: row.get::<_, Option<String>>(4)?.map(parse_time),
                    duration_ms: row.get::<_, i64>(5)? as u64,
                    input_versions: row.get(6)?,
                    output_version: row.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                    rows_in: row.get::<_, i64>(8)? as u64,
                    rows_out: row.get::<_, i64>(9)? as u64,
                    rows_quarantined: row.get::<_, i64>(10)? as u64,
                    error: row.get(11)?,
                })
            })?;
            rows.collect()
        })
    }
}

pub(crate) fn parse_time(s: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&s)
        .map_or_else(|_| DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_attempts_round_trip_and_dead_runs_are_abandoned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(dir.path()).expect("open");
        let first = db.begin_run(Some("dev"), &["a".into()]).expect("begin");
        db.record_attempt(&AttemptRecord {
            run_id: first,
            asset: "a".into(),
            attempt: 1,
            status: "built".into(),
            input_versions: "{}".into(),
            output_version: Some(0),
            rows_in: 3,
            rows_out: 3,
            ..Default::default()
        })
        .expect("attempt");
        // The first run never finishes, as if killed.
        let second = db.begin_run(None, &[]).expect("begin");
        db.finish_run(second, RunState::Succeeded).expect("finish");
        let runs = db.runs(10).expect("runs");
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].id, runs[0].state), (second, RunState::Succeeded));
        assert_eq!((runs[1].id, runs[1].state), (first, RunState::Abandoned));
        assert_eq!(runs[1].counts, "built=1");
        let attempts = db.attempts(first).expect("attempts");
        assert_eq!(attempts[0].rows_out, 3);
    }
}
