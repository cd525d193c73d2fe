//! Alerts in the metadata database: the open incidents (one row per alert,
//! asset and kind of trouble). Deliveries are `deliveries.rs`.
//!
//! An incident is opened by an `INSERT ... ON CONFLICT DO NOTHING`, a reminder
//! claimed by an `UPDATE` guarded by the time of the last message, and an
//! incident closed by a `DELETE`: whoever changes the row sends the message, so
//! two processes sharing the database never send the same one twice.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, params};

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// The tables, created by [`Metadata::open`]. Plain SQL PostgreSQL also runs
/// (but `INTEGER PRIMARY KEY AUTOINCREMENT`, there an identity column).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_incidents (
    alert TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT NOT NULL,
    opened_run BIGINT NOT NULL,
    opened_at TEXT NOT NULL,
    last_run BIGINT NOT NULL,
    last_sent_at TEXT NOT NULL,
    PRIMARY KEY (alert, asset, kind)
);
";

/// An open incident: an asset in trouble that an alert has told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The alert.
    pub alert: String,
    /// The asset.
    pub asset: String,
    /// What kind of trouble: `failure`, `quality`, `drift` or `freshness`.
    pub kind: String,
    /// The run that opened it.
    pub opened_run: i64,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// The newest run that found the trouble still there.
    pub last_run: i64,
    /// When the newest message about it was sent (opened or reminded).
    pub last_sent_at: DateTime<Utc>,
}

pub(crate) fn stored(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Metadata {
    /// Opens the incident (alert, asset, kind) in `run` at `now`; `true` when
    /// this call opened it (so its caller sends the first message), `false`
    /// when it was open already (then its newest run is moved to `run`).
    pub fn open_incident(
        &self,
        alert: &str,
        asset: &str,
        kind: &str,
        run: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.with(|c| {
            let made = c.execute(
                "INSERT INTO alert_incidents (alert, asset, kind, opened_run, opened_at, last_run, last_sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5) ON CONFLICT (alert, asset, kind) DO NOTHING",
                params![alert, asset, kind, run, stored(now)],
            )?;
            if made == 0 {
                c.execute(
                    "UPDATE alert_incidents SET last_run = ?4 WHERE alert = ?1 AND asset = ?2 AND kind = ?3",
                    params![alert, asset, kind, run],
                )?;
            }
            Ok(made == 1)
        })
    }

    /// Claims a reminder for an open incident whose last message was sent at
    /// or before `due`: `true` when this call moved its last message to `now`.
    pub fn claim_reminder(
        &self,
        alert: &str,
        asset: &str,
        kind: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE alert_incidents SET last_sent_at = ?5
                 WHERE alert = ?1 AND asset = ?2 AND kind = ?3 AND last_sent_at <= ?4",
                params![alert, asset, kind, stored(due), stored(now)],
            )
            .map(|n| n == 1)
        })
    }

    /// Closes an incident; the incident when this call closed it.
    pub fn close_incident(&self, alert: &str, asset: &str, kind: &str) -> Result<Option<Incident>> {
        self.with(|c| {
            c.query_row(
                "DELETE FROM alert_incidents WHERE alert = ?1 AND asset = ?2 AND kind = ?3
                 RETURNING alert, asset, kind, opened_run, opened_at, last_run, last_sent_at",
                params![alert, asset, kind],
                incident,
            )
            .optional()
        })
    }

    /// The open incidents, oldest first.
    pub fn incidents(&self) -> Result<Vec<Incident>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT alert, asset, kind, opened_run, opened_at, last_run, last_sent_at
                 FROM alert_incidents ORDER BY opened_at, alert, asset, kind",
            )?;
            stmt.query_map([], incident)?.collect()
        })
    }
}

fn incident(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        alert: r.get(0)?,
        asset: r.get(1)?,
        kind: r.get(2)?,
        opened_run: r.get(3)?,
        opened_at: parse_time(r.get(4)?),
        last_run: r.get(5)?,
        last_sent_at: parse_time(r.get(6)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_is_opened_reminded_and_closed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metadata::open(&dir.path().join("sluice.db")).expect("opens");
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let later = |s: i64| t0 + chrono::Duration::seconds(s);
        assert!(m.open_incident("a", "x", "failure", 1, t0).expect("open"));
        assert!(
            !m.open_incident("a", "x", "failure", 2, later(10))
                .expect("open again")
        );
        assert!(
            m.open_incident("a", "x", "quality", 2, later(10))
                .expect("another kind")
        );
        // Not due yet; then due once.
        assert!(
            !m.claim_reminder("a", "x", "failure", later(-1), later(20))
                .expect("early")
        );
        assert!(
            m.claim_reminder("a", "x", "failure", later(0), later(30))
                .expect("due")
        );
        assert!(
            !m.claim_reminder("a", "x", "failure", later(0), later(31))
                .expect("claimed")
        );
        let open = m.incidents().expect("incidents");
        assert_eq!(open.len(), 2);
        assert_eq!((open[0].opened_run, open[0].last_run), (1, 2));
        assert_eq!(open[0].last_sent_at, later(30));
        let closed = m.close_incident("a", "x", "failure").expect("close");
        assert_eq!(closed.map(|i| i.opened_run), Some(1));
        assert_eq!(m.close_incident("a", "x", "failure").expect("again"), None);
    }
}
