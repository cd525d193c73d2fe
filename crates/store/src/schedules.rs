//! Schedule ticks in the metadata database: one row per tick of a schedule,
//! keyed by (schedule, due time), and when each schedule was first seen enabled.
//!
//! A tick is recorded before its run starts, by an `INSERT ... ON CONFLICT DO
//! NOTHING`: whoever inserts the row runs the tick, and a row that exists is
//! never run again — by this process after a restart or by another scheduler on
//! the same database. A tick whose process died stays `started` (its run is
//! marked `abandoned` by the run log) and is not run again.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, params};

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// The tables, created by [`Metadata::open`]. Plain SQL PostgreSQL also runs.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schedule_ticks (
    schedule TEXT NOT NULL,
    due_at TEXT NOT NULL,
    state TEXT NOT NULL,
    run_id BIGINT,
    recorded_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (schedule, due_at)
);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    enabled_since TEXT NOT NULL
);
";

/// Where a tick is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickState {
    /// Recorded; its run started (or was about to, if the process died).
    Started,
    /// Its run succeeded.
    Succeeded,
    /// Its run failed, or could not start.
    Failed,
    /// Missed while no scheduler ran, and not run (the catch-up policy).
    Skipped,
}

impl TickState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TickState::Started => "started",
            TickState::Succeeded => "succeeded",
            TickState::Failed => "failed",
            TickState::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => TickState::Succeeded,
            "failed" => TickState::Failed,
            "skipped" => TickState::Skipped,
            _ => TickState::Started,
        }
    }
}

/// One recorded tick of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct TickRecord {
    /// The schedule.
    pub schedule: String,
    /// When it was due: its logical time.
    pub due_at: DateTime<Utc>,
    /// Where it is.
    pub state: TickState,
    /// The run it started, once it has a number.
    pub run_id: Option<i64>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// When its run ended (or when it was skipped).
    pub finished_at: Option<DateTime<Utc>>,
}

/// Times as stored: fixed width, so that their text sorts as time does.
fn stored(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn tick_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<TickRecord> {
    Ok(TickRecord {
        schedule: r.get(0)?,
        due_at: parse_time(r.get(1)?),
        state: TickState::parse(&r.get::<_, String>(2)?),
        run_id: r.get(3)?,
        recorded_at: parse_time(r.get(4)?),
        finished_at: r.get::<_, Option<String>>(5)?.map(parse_time),
    })
}

const COLUMNS: &str = "schedule, due_at, state, run_id, recorded_at, finished_at";

impl Metadata {
    /// Notes that `schedule` is enabled as of `now` and returns when it was
    /// first seen enabled (ticks due before then are never run).
    pub fn schedule_enabled(&self, schedule: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        self.with(|c| {
            c.execute(
                "INSERT INTO schedules (name, enabled_since) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![schedule, stored(now)],
            )?;
            c.query_row(
                "SELECT enabled_since FROM schedules WHERE name = ?1",
                [schedule],
                |r| r.get::<_, String>(0),
            )
            .map(parse_time)
        })
    }

    /// Notes that `schedule` is disabled: when it is enabled again, it starts
    /// from then, not from the ticks it had while disabled.
    pub fn schedule_disabled(&self, schedule: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM schedules WHERE name = ?1", [schedule])?;
            Ok(())
        })
    }

    /// When `schedule` was first seen enabled, if it is.
    pub fn schedule_enabled_since(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        self.with(|c| {
            c.query_row(
                "SELECT enabled_since FROM schedules WHERE name = ?1",
                [schedule],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|t| t.map(parse_time))
        })
    }

    /// Records a tick in `state` (`Started` or `Skipped`) unless it is
    /// recorded already; returns whether this call recorded it — only then may
    /// the caller run it.
    pub fn record_tick(
        &self,
        schedule: &str,
        due_at: DateTime<Utc>,
        state: TickState,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let finished = (state == TickState::Skipped).then(|| stored(now));
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO schedule_ticks (schedule, due_at, state, run_id, recorded_at, finished_at)
                 VALUES (?1, ?2, ?3, NULL, ?4, ?5)
                 ON CONFLICT (schedule, due_at) DO NOTHING",
                params![schedule, stored(due_at), state.as_str(), stored(now), finished],
            )?;
            Ok(n == 1)
        })
    }

    /// Notes the run a tick started.
    pub fn tick_run(&self, schedule: &str, due_at: DateTime<Utc>, run_id: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE schedule_ticks SET run_id = ?3 WHERE schedule = ?1 AND due_at = ?2",
                params![schedule, stored(due_at), run_id],
            )?;
            Ok(())
        })
    }

    /// Notes how a tick's run ended.
    pub fn finish_tick(
        &self,
        schedule: &str,
        due_at: DateTime<Utc>,
        state: TickState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE schedule_ticks SET state = ?3, finished_at = ?4 WHERE schedule = ?1 AND due_at = ?2",
                params![schedule, stored(due_at), state.as_str(), stored(now)],
            )?;
            Ok(())
        })
    }

    /// The newest recorded tick of `schedule` (by due time).
    pub fn last_tick(&self, schedule: &str) -> Result<Option<TickRecord>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM schedule_ticks WHERE schedule = ?1 ORDER BY due_at DESC LIMIT 1"
                ),
                [schedule],
                tick_record,
            )
            .optional()
        })
    }

    /// The newest `limit` ticks of `schedule`, newest first.
    pub fn ticks(&self, schedule: &str, limit: usize) -> Result<Vec<TickRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM schedule_ticks WHERE schedule = ?1 ORDER BY due_at DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![schedule, limit as i64], tick_record)?;
            rows.collect()
        })
    }
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
    fn a_tick_is_recorded_once_whoever_asks_and_ends_where_its_run_ended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sluice.db");
        let one = Metadata::open(&path).expect("open");
        let two = Metadata::open(&path).expect("open");
        let due = at("2026-03-29T01:00:00Z");
        let now = at("2026-03-29T01:00:01Z");
        assert!(
            one.record_tick("s", due, TickState::Started, now)
                .expect("record")
        );
        // Another scheduler on the same database does not get it.
        assert!(
            !two.record_tick("s", due, TickState::Started, now)
                .expect("record")
        );
        assert!(
            !one.record_tick("s", due, TickState::Skipped, now)
                .expect("record")
        );
        one.tick_run("s", due, 7).expect("run");
        let later = at("2026-03-29T01:05:00Z");
        one.finish_tick("s", due, TickState::Succeeded, later)
            .expect("finish");
        assert!(
            two.record_tick("s", at("2026-03-28T01:00:00Z"), TickState::Skipped, now)
                .expect("record")
        );
        let last = two.last_tick("s").expect("last").expect("a tick");
        assert_eq!(
            (last.due_at, last.state, last.run_id, last.finished_at),
            (due, TickState::Succeeded, Some(7), Some(later))
        );
        let all = two.ticks("s", 10).expect("ticks");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].state, TickState::Skipped);
        assert_eq!(two.last_tick("other").expect("last"), None);
    }

    #[test]
    fn a_schedule_is_enabled_since_it_was_first_seen_until_it_is_disabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        let first = at("2026-01-01T00:00:00Z");
        assert_eq!(db.schedule_enabled("s", first).expect("enable"), first);
        assert_eq!(
            db.schedule_enabled("s", at("2026-02-01T00:00:00Z"))
                .expect("enable"),
            first
        );
        db.schedule_disabled("s").expect("disable");
        assert_eq!(db.schedule_enabled_since("s").expect("since"), None);
        let again = at("2026-03-01T00:00:00Z");
        assert_eq!(db.schedule_enabled("s", again).expect("enable"), again);
    }
}
