//! The metadata database: runs, per-asset attempts and quality reports, in SQLite (WAL, full sync),
//! so the run log survives crashes. A run killed mid-way is marked `abandoned` by
//! the next run, which holds the run lock and so knows no one else is running.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result};

/// The state of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Asked for while another run of the same process ran; waiting its turn.
    Queued,
    /// In progress (or killed, until the next run notices).
    Running,
    /// Every asset asked for is built or up to date.
    Succeeded,
    /// At least one asset failed or was blocked.
    Failed,
    /// The process died before finishing.
    Abandoned,
    /// Stopped on request (`sluice runs cancel`): what it had not published
    /// stays unpublished.
    Cancelled,
}

impl RunState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Abandoned => "abandoned",
            RunState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "abandoned" => RunState::Abandoned,
            "cancelled" => RunState::Cancelled,
            "queued" => RunState::Queued,
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
    /// For a failed attempt that is retried: how long the run waited before
    /// the next attempt.
    pub retry_in_ms: Option<u64>,
    /// When the attempt's outcome was known (to the microsecond; `None` in
    /// run logs written before it was recorded).
    pub ended_at: Option<DateTime<Utc>>,
    /// The asset's kind word (`source`, `table`, `feature view`...), which says
    /// whether its rows came in by extraction or by a transform.
    pub kind: String,
    /// Rows its contract judged (0 without a contract).
    pub rows_validated: u64,
    /// Records written to the online store.
    pub rows_online: u64,
}

/// One write of an export's file.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    /// 1 for the first write.
    pub version: u64,
    /// What produced it: the definition and the inputs' versions.
    pub fingerprint: String,
    /// The run that wrote it.
    pub run_id: i64,
    /// Rows written.
    pub rows: u64,
    /// The file.
    pub path: String,
    /// When.
    pub written_at: DateTime<Utc>,
}

/// One successful run of a step that declares no output: what it ran from.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// 1 for the first.
    pub version: u64,
    /// What produced it: the definition, its files and the inputs' versions.
    pub fingerprint: String,
    /// The run.
    pub run_id: i64,
    /// When it finished.
    pub ran_at: DateTime<Utc>,
}

/// The metadata database of a warehouse.
#[derive(Debug)]
pub struct Metadata {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// The schema. Statements are plain SQL that PostgreSQL runs too (`RETURNING`,
/// `ON CONFLICT ... DO UPDATE`, `string_agg`, `CASE` instead of summed booleans),
/// so that shared deployments can keep metadata there. Two SQLite forms remain,
/// each with its PostgreSQL twin: `INTEGER PRIMARY KEY AUTOINCREMENT` (there
/// `BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY`) and the attempts'
/// order of writing, `rowid` (there an identity column); placeholders are `?N`
/// (there `$N`).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    state TEXT NOT NULL,
    profile TEXT,
    targets TEXT NOT NULL,
    pid INTEGER NOT NULL,
    cancel_requested_at TEXT
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
    retry_in_ms INTEGER,
    kind TEXT,
    rows_validated INTEGER,
    rows_online INTEGER,
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
    score DOUBLE PRECISION NOT NULL,
    observed DOUBLE PRECISION,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, asset, name)
);
CREATE INDEX IF NOT EXISTS checks_by_asset ON checks(asset, created_at);
CREATE TABLE IF NOT EXISTS exports (
    asset TEXT NOT NULL,
    version INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    path TEXT NOT NULL,
    written_at TEXT NOT NULL,
    PRIMARY KEY (asset, version)
);
CREATE TABLE IF NOT EXISTS steps (
    asset TEXT NOT NULL,
    version INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    ran_at TEXT NOT NULL,
    PRIMARY KEY (asset, version)
);
CREATE TABLE IF NOT EXISTS model_versions (
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    learner TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    inputs TEXT NOT NULL,
    train_rows INTEGER NOT NULL,
    valid_rows INTEGER NOT NULL,
    valid_from TEXT,
    metrics TEXT NOT NULL,
    importance TEXT NOT NULL,
    promoted INTEGER NOT NULL,
    reason TEXT,
    train_ms INTEGER NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS contents (
    asset TEXT NOT NULL,
    version BIGINT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (asset, version)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
";

/// Columns added to tables after their first release: (table, column, type).
const ADDED_COLUMNS: [(&str, &str, &str); 6] = [
    ("runs", "cancel_requested_at", "TEXT"),
    ("attempts", "retry_in_ms", "INTEGER"),
    ("attempts", "ended_at", "TEXT"),
    ("attempts", "kind", "TEXT"),
    ("attempts", "rows_validated", "INTEGER"),
    ("attempts", "rows_online", "INTEGER"),
];

impl Metadata {
    /// Opens (creating it and its folder if needed) the database file `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let path = path.to_path_buf();
        let err = |source| Error::Metadata {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // NORMAL: in WAL mode a commit survives the process being killed at any
        // moment (it is in the operating system's cache) and the database is
        // never corrupted; only a power cut can drop the last commits. That is
        // the durability of the Delta tables beside it, whose files are not
        // fsynced either, so FULL's fsync per commit (two or more per asset
        // in a run) would buy nothing end to end.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.execute_batch(crate::schedules::SCHEMA).map_err(err)?;
        conn.execute_batch(crate::partitions::SCHEMA).map_err(err)?;
        conn.execute_batch(crate::alerts::SCHEMA).map_err(err)?;
        conn.execute_batch(crate::deliveries::SCHEMA).map_err(err)?;
        conn.execute_batch(crate::logs::SCHEMA).map_err(err)?;
        for (table, column, ty) in ADDED_COLUMNS
            .into_iter()
            .chain(crate::deliveries::ADDED_COLUMNS)
        {
            // A database made before the column existed gets it; the probe
            // is plain SQL (`ADD COLUMN IF NOT EXISTS` is PostgreSQL's only).
            if conn
                .prepare(&format!("SELECT {column} FROM {table} LIMIT 0"))
                .is_err()
            {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                    .map_err(err)?;
            }
        }
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
        let id = self.queue_run(profile, targets)?;
        self.start_run(id)?;
        Ok(id)
    }

    /// Records a run that waits for its turn (state `queued`) and returns its id.
    pub fn queue_run(&self, profile: Option<&str>, targets: &[String]) -> Result<i64> {
        self.with(|c| {
            c.query_row(
                "INSERT INTO runs (started_at, state, profile, targets, pid) VALUES (?1, 'queued', ?2, ?3, ?4)
                 RETURNING id",
                params![
                    Utc::now().to_rfc3339(),
                    profile,
                    serde_json::to_string(targets).unwrap_or_default(),
                    std::process::id()
                ],
                |r| r.get(0),
            )
        })
    }

    /// Marks a queued run as running from now. Call while holding the run lock:
    /// any other run still `running`, or `queued` by another process, belongs
    /// to a process that died, and is marked `abandoned`.
    pub fn start_run(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = 'abandoned' WHERE id <> ?1
                   AND (state = 'running' OR (state = 'queued' AND pid <> ?2))",
                params![id, std::process::id()],
            )?;
            c.execute(
                "UPDATE runs SET state = 'running', started_at = ?2 WHERE id = ?1",
                params![id, Utc::now().to_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// Asks a queued or running run to stop; the process running it notices
    /// within a moment. Returns the run's state when asked (`None`: no such run).
    pub fn request_cancel(&self, id: i64) -> Result<Option<RunState>> {
        self.with(|c| {
            let state: Option<String> = c
                .query_row("SELECT state FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            if state.as_deref().is_some_and(|s| s == "running" || s == "queued") {
                c.execute(
                    "UPDATE runs SET cancel_requested_at = ?2 WHERE id = ?1 AND cancel_requested_at IS NULL",
                    params![id, Utc::now().to_rfc3339()],
                )?;
            }
            Ok(state.map(|s| RunState::parse(&s)))
        })
    }

    /// Whether someone asked run `id` to stop.
    pub fn cancel_requested(&self, id: i64) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT cancel_requested_at IS NOT NULL FROM runs WHERE id = ?1",
                [id],
                |r| r.get::<_, bool>(0),
            )
            .optional()
            .map(|b| b.unwrap_or(false))
        })
    }

    /// Records one attempt.
    pub fn record_attempt(&self, a: &AttemptRecord) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO attempts (run_id, asset, attempt, status, started_at, duration_ms,
                    input_versions, output_version, rows_in, rows_out, rows_quarantined, error, retry_in_ms,
                    ended_at, kind, rows_validated, rows_online)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (run_id, asset, attempt) DO UPDATE SET status = excluded.status,
                    started_at = excluded.started_at, duration_ms = excluded.duration_ms,
                    input_versions = excluded.input_versions, output_version = excluded.output_version,
                    rows_in = excluded.rows_in, rows_out = excluded.rows_out,
                    rows_quarantined = excluded.rows_quarantined, error = excluded.error,
                    retry_in_ms = excluded.retry_in_ms, ended_at = excluded.ended_at,
                    kind = excluded.kind, rows_validated = excluded.rows_validated,
                    rows_online = excluded.rows_online",
            )?
            .execute(params![
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
                a.retry_in_ms.map(|d| d as i64),
                a.ended_at.map(|t| t.to_rfc3339()),
                a.kind,
                a.rows_validated as i64,
                a.rows_online as i64,
            ])?;
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
        self.runs_where("TRUE ORDER BY r.id DESC LIMIT ?1", limit as i64)
    }

    fn runs_where(&self, condition: &str, arg: i64) -> Result<Vec<RunRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT r.id, r.started_at, r.finished_at, r.state, r.profile, r.targets,
                    (SELECT string_agg(status || '=' || n, ' ') FROM
                        (SELECT status, count(*) AS n FROM attempts a WHERE a.run_id = r.id
                           AND a.attempt = (SELECT max(attempt) FROM attempts b WHERE b.run_id = a.run_id AND b.asset = a.asset)
                         GROUP BY status ORDER BY status))
                 FROM runs r WHERE {condition}"
            ))?;
            let rows = stmt.query_map([arg], |row| {
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

    /// One run, if it exists.
    pub fn run(&self, id: i64) -> Result<Option<RunRecord>> {
        Ok(self.runs_where("r.id = ?1", id)?.pop())
    }

    /// Records that an export's file was written; returns its version (1, 2...).
    pub fn record_export(
        &self,
        asset: &str,
        fingerprint: &str,
        run_id: i64,
        rows: u64,
        path: &str,
    ) -> Result<u64> {
        self.with(|c| {
            c.query_row(
                "INSERT INTO exports (asset, version, fingerprint, run_id, rows, path, written_at)
                 VALUES (?1, (SELECT coalesce(max(version), 0) + 1 FROM exports WHERE asset = ?1), ?2, ?3, ?4, ?5, ?6)
                 RETURNING version",
                params![asset, fingerprint, run_id, rows as i64, path, Utc::now().to_rfc3339()],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v.max(0) as u64)
        })
    }

    /// The newest write of an export.
    pub fn latest_export(&self, asset: &str) -> Result<Option<ExportRecord>> {
        self.with(|c| {
            c.query_row(
                "SELECT version, fingerprint, run_id, rows, path, written_at FROM exports
                 WHERE asset = ?1 ORDER BY version DESC LIMIT 1",
                [asset],
                export_record,
            )
            .optional()
        })
    }

    /// Every recorded write of an export, newest first.
    pub fn exports(&self, asset: &str) -> Result<Vec<ExportRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT version, fingerprint, run_id, rows, path, written_at FROM exports
                 WHERE asset = ?1 ORDER BY version DESC",
            )?;
            let rows = stmt.query_map([asset], export_record)?;
            rows.collect()
        })
    }

    /// Records that a step without output ran; returns its version (1, 2...).
    pub fn record_step(&self, asset: &str, fingerprint: &str, run_id: i64) -> Result<u64> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO steps (asset, version, fingerprint, run_id, ran_at)
                 VALUES (?1, (SELECT coalesce(max(version), 0) + 1 FROM steps WHERE asset = ?1), ?2, ?3, ?4)
                 RETURNING version",
            )?
            .query_row(
                params![asset, fingerprint, run_id, Utc::now().to_rfc3339()],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v.max(0) as u64)
        })
    }

    /// Every recorded run of a step without output, newest first.
    pub fn steps(&self, asset: &str) -> Result<Vec<StepRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT version, fingerprint, run_id, ran_at FROM steps
                 WHERE asset = ?1 ORDER BY version DESC",
            )?;
            let rows = stmt.query_map([asset], |r| {
                Ok(StepRecord {
                    version: r.get::<_, i64>(0)?.max(0) as u64,
                    fingerprint: r.get(1)?,
                    run_id: r.get(2)?,
                    ran_at: parse_time(r.get(3)?),
                })
            })?;
            rows.collect()
        })
    }

    /// The attempts of a run, in the order they were recorded.
    pub fn attempts(&self, run_id: i64) -> Result<Vec<AttemptRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ?1 ORDER BY rowid"
            ))?;
            let rows = stmt.query_map([run_id], attempt_record)?;
            rows.collect()
        })
    }

    /// Each asset's newest attempt, of any run: what the dashboard colours
    /// its graph by (failed, blocked).
    pub fn latest_attempts(&self) -> Result<Vec<AttemptRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM attempts
                 WHERE rowid IN (SELECT max(rowid) FROM attempts GROUP BY asset)
                 ORDER BY rowid"
            ))?;
            let rows = stmt.query_map([], attempt_record)?;
            rows.collect()
        })
    }
}

/// The columns [`attempt_record`] reads, in its order.
const ATTEMPT_COLUMNS: &str =
    "run_id, asset, attempt, status, started_at, duration_ms, input_versions, output_version,
    rows_in, rows_out, rows_quarantined, error, retry_in_ms, ended_at, coalesce(kind, ''),
    coalesce(rows_validated, 0), coalesce(rows_online, 0)";

/// One row of `attempts`, as [`ATTEMPT_COLUMNS`] selects it.
fn attempt_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRecord> {
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
        retry_in_ms: row.get::<_, Option<i64>>(12)?.map(|d| d.max(0) as u64),
        ended_at: row.get::<_, Option<String>>(13)?.map(parse_time),
        kind: row.get(14)?,
        rows_validated: row.get::<_, i64>(15)?.max(0) as u64,
        rows_online: row.get::<_, i64>(16)?.max(0) as u64,
    })
}

pub(crate) fn parse_time(s: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&s)
        .map_or_else(|_| DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

/// One row of `exports` (version, fingerprint, run_id, rows, path, written_at).
fn export_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExportRecord> {
    Ok(ExportRecord {
        version: r.get::<_, i64>(0)?.max(0) as u64,
        fingerprint: r.get(1)?,
        run_id: r.get(2)?,
        rows: r.get::<_, i64>(3)?.max(0) as u64,
        path: r.get(4)?,
        written_at: parse_time(r.get(5)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_attempts_round_trip_and_dead_runs_are_abandoned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
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
        assert_eq!(db.run(first).expect("run").map(|r| r.id), Some(first));
        assert_eq!(db.run(999).expect("run"), None);
    }
}
