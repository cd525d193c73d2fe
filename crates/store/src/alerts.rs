//! Alerts in the metadata database: the open incidents (one row per alert,
//! asset and kind of trouble) and every delivery of a message to a channel.
//!
//! An incident is opened by an `INSERT ... ON CONFLICT DO NOTHING`, a reminder
//! claimed by an `UPDATE` guarded by the time of the last message, and an
//! incident closed by a `DELETE`: whoever changes the row sends the message, so
//! two processes sharing the database never send the same one twice. A
//! delivery's row holds the channel's kind and the error without secrets: never
//! the URL or a password.

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
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert TEXT NOT NULL,
    asset TEXT,
    run_id BIGINT,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
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

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Being tried.
    Pending,
    /// The channel accepted it.
    Delivered,
    /// Every attempt failed; it was given up.
    Failed,
}

impl DeliveryState {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One message to one channel, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Its number.
    pub id: i64,
    /// The alert.
    pub alert: String,
    /// The asset it is about (none for a test message).
    pub asset: Option<String>,
    /// The run it is about (none for a test message).
    pub run_id: Option<i64>,
    /// `failure`, `reminder`, `recovered`, `quality`, `drift`, `freshness` or `test`.
    pub event: String,
    /// The channel's kind: `webhook` or `email`.
    pub channel: String,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed, without secrets.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a new delivery is about.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    /// The alert.
    pub alert: &'a str,
    /// The asset (none for a test message).
    pub asset: Option<&'a str>,
    /// The run (none for a test message).
    pub run_id: Option<i64>,
    /// The event word.
    pub event: &'a str,
    /// The channel's kind.
    pub channel: &'a str,
}

fn stored(t: DateTime<Utc>) -> String {
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

    /// Records a delivery as pending and returns its number.
    pub fn begin_delivery(&self, d: NewDelivery<'_>, now: DateTime<Utc>) -> Result<i64> {
        self.with(|c| {
            c.query_row(
                "INSERT INTO alert_deliveries (alert, asset, run_id, event, channel, state, attempts, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6) RETURNING id",
                params![d.alert, d.asset, d.run_id, d.event, d.channel, stored(now)],
                |r| r.get(0),
            )
        })
    }

    /// Records an attempt of delivery `id`: its count, its error, and — when
    /// `state` is not pending — its end at `now`.
    pub fn update_delivery(
        &self,
        id: i64,
        state: DeliveryState,
        attempts: u32,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let finished = (state != DeliveryState::Pending).then(|| stored(now));
        self.with(|c| {
            c.execute(
                "UPDATE alert_deliveries SET state = ?2, attempts = ?3, error = ?4, finished_at = ?5 WHERE id = ?1",
                params![id, state.as_str(), attempts, error, finished],
            )
            .map(|_| ())
        })
    }

    /// The newest `limit` deliveries, newest first.
    pub fn deliveries(&self, limit: u32) -> Result<Vec<DeliveryRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, alert, asset, run_id, event, channel, state, attempts, error, created_at, finished_at
                 FROM alert_deliveries ORDER BY id DESC LIMIT ?1",
            )?;
            stmt.query_map([limit], |r| {
                Ok(DeliveryRecord {
                    id: r.get(0)?,
                    alert: r.get(1)?,
                    asset: r.get(2)?,
                    run_id: r.get(3)?,
                    event: r.get(4)?,
                    channel: r.get(5)?,
                    state: DeliveryState::parse(&r.get::<_, String>(6)?),
                    attempts: r.get(7)?,
                    error: r.get(8)?,
                    created_at: parse_time(r.get(9)?),
                    finished_at: r.get::<_, Option<String>>(10)?.map(parse_time),
                })
            })?
            .collect()
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

    #[test]
    fn a_delivery_is_recorded_from_pending_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metadata::open(&dir.path().join("sluice.db")).expect("opens");
        let now = Utc::now();
        let new = NewDelivery {
            alert: "a",
            asset: Some("x"),
            run_id: Some(3),
            event: "failure",
            channel: "webhook",
        };
        let id = m.begin_delivery(new, now).expect("begin");
        m.update_delivery(
            id,
            DeliveryState::Pending,
            1,
            Some("HTTP 500 from hooks.example.com"),
            now,
        )
        .expect("update");
        assert_eq!(m.deliveries(10).expect("list")[0].finished_at, None);
        m.update_delivery(id, DeliveryState::Delivered, 2, None, now)
            .expect("update");
        let d = &m.deliveries(10).expect("list")[0];
        assert_eq!(
            (d.state, d.attempts, d.error.as_deref()),
            (DeliveryState::Delivered, 2, None)
        );
        assert_eq!(
            (d.asset.as_deref(), d.run_id, d.channel.as_str()),
            (Some("x"), Some(3), "webhook")
        );
        assert!(d.finished_at.is_some());
    }
}
