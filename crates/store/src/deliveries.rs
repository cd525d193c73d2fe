//! Alert deliveries in the metadata database: every message to every channel,
//! from pending to delivered or given up, with its attempts and last error.
//!
//! A delivery's row holds the channel's kind and the error without secrets —
//! never the URL or a password — and the message itself (its text and the
//! facts of the JSON schema, which hold no secret either), so that a delivery
//! left pending by a process that died can be finished by the next one. The
//! row names its *owner*, the outbox of the process delivering it; a process
//! takes over another's pending rows with one `UPDATE` guarded by the old
//! owner, so each is resumed once (the runner decides when an owner is gone:
//! its lock file is free).

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::Result;
use crate::alerts::stored;
use crate::metadata::{Metadata, parse_time};

/// The table, created by [`Metadata::open`]; `owner` and `message` are added
/// to a database made before them.
pub(crate) const SCHEMA: &str = "
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
    finished_at TEXT,
    owner TEXT,
    message TEXT
);
";

/// The columns added after the table's first release.
pub(crate) const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("alert_deliveries", "owner", "TEXT"),
    ("alert_deliveries", "message", "TEXT"),
];

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Being tried (its first attempt, or waiting to retry).
    Pending,
    /// The channel accepted it.
    Delivered,
    /// Every attempt failed, or one failed in a way no retry mends; given up.
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
    /// The outbox delivering it.
    pub owner: &'a str,
    /// The message, as its sender serializes it (no secret in it).
    pub message: &'a str,
}

/// The deliveries of one alert to one channel kind, counted by state: what
/// `/metrics` exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTotals {
    /// The alert.
    pub alert: String,
    /// The channel's kind.
    pub channel: String,
    /// Deliveries by state.
    pub by_state: Vec<(DeliveryState, u64)>,
    /// Attempts after the first, over every delivery (retries made).
    pub retries: u64,
}

/// A pending delivery taken over from an outbox that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// Its number.
    pub id: i64,
    /// The alert.
    pub alert: String,
    /// The channel's kind.
    pub channel: String,
    /// Attempts made before its owner went.
    pub attempts: u32,
    /// The message as recorded (none in a row made before messages were kept).
    pub message: Option<String>,
}

impl Metadata {
    /// Records a delivery as pending and returns its number.
    pub fn begin_delivery(&self, d: NewDelivery<'_>, now: DateTime<Utc>) -> Result<i64> {
        self.with(|c| {
            c.query_row(
                "INSERT INTO alert_deliveries (alert, asset, run_id, event, channel, state, attempts, created_at, owner, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, ?8) RETURNING id",
                params![
                    d.alert,
                    d.asset,
                    d.run_id,
                    d.event,
                    d.channel,
                    stored(now),
                    d.owner,
                    d.message
                ],
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

    /// Every delivery counted by alert, channel kind and state, in one
    /// grouped pass.
    pub fn delivery_totals(&self) -> Result<Vec<DeliveryTotals>> {
        let rows: Vec<(String, String, String, u64, u64)> = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT alert, channel, state, COUNT(*), COALESCE(SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0)
                 FROM alert_deliveries GROUP BY alert, channel, state ORDER BY alert, channel, state",
            )?;
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })?;
        let mut out: Vec<DeliveryTotals> = Vec::new();
        for (alert, channel, state, n, retries) in rows {
            let state = DeliveryState::parse(&state);
            match out.last_mut() {
                Some(t) if t.alert == alert && t.channel == channel => {
                    t.by_state.push((state, n));
                    t.retries += retries;
                }
                _ => out.push(DeliveryTotals {
                    alert,
                    channel,
                    by_state: vec![(state, n)],
                    retries,
                }),
            }
        }
        Ok(out)
    }

    /// The owners of pending deliveries other than `me` (an owner of a row
    /// made before owners were recorded is the empty string).
    pub fn pending_owners(&self, me: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT COALESCE(owner, '') FROM alert_deliveries
                 WHERE state = 'pending' AND COALESCE(owner, '') <> ?1 ORDER BY 1",
            )?;
            stmt.query_map([me], |r| r.get(0))?.collect()
        })
    }

    /// Takes over the pending deliveries of owner `gone` for owner `me`: the
    /// rows this call moved, oldest first. Two processes claiming at once
    /// split them; none is taken twice.
    pub fn claim_deliveries(&self, gone: &str, me: &str) -> Result<Vec<ClaimedDelivery>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "UPDATE alert_deliveries SET owner = ?2
                 WHERE state = 'pending' AND COALESCE(owner, '') = ?1
                 RETURNING id, alert, channel, attempts, message",
            )?;
            let mut claimed: Vec<ClaimedDelivery> = stmt
                .query_map(params![gone, me], |r| {
                    Ok(ClaimedDelivery {
                        id: r.get(0)?,
                        alert: r.get(1)?,
                        channel: r.get(2)?,
                        attempts: r.get(3)?,
                        message: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            claimed.sort_by_key(|d| d.id);
            Ok(claimed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(channel: &'a str, owner: &'a str) -> NewDelivery<'a> {
        NewDelivery {
            alert: "a",
            asset: Some("x"),
            run_id: Some(3),
            event: "failure",
            channel,
            owner,
            message: "{\"text\":\"m\"}",
        }
    }

    #[test]
    fn a_delivery_is_recorded_from_pending_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metadata::open(&dir.path().join("sluice.db")).expect("opens");
        let now = Utc::now();
        let id = m.begin_delivery(new("webhook", "p1"), now).expect("begin");
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

    #[test]
    fn totals_count_deliveries_by_state_and_the_retries_they_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metadata::open(&dir.path().join("sluice.db")).expect("opens");
        let now = Utc::now();
        for (channel, state, attempts) in [
            ("webhook", DeliveryState::Delivered, 1),
            ("webhook", DeliveryState::Delivered, 3),
            ("webhook", DeliveryState::Failed, 5),
            ("email", DeliveryState::Pending, 2),
        ] {
            let id = m.begin_delivery(new(channel, "p1"), now).expect("begin");
            m.update_delivery(id, state, attempts, None, now)
                .expect("update");
        }
        let totals = m.delivery_totals().expect("totals");
        assert_eq!(
            totals,
            vec![
                DeliveryTotals {
                    alert: "a".into(),
                    channel: "email".into(),
                    by_state: vec![(DeliveryState::Pending, 1)],
                    retries: 1,
                },
                DeliveryTotals {
                    alert: "a".into(),
                    channel: "webhook".into(),
                    by_state: vec![(DeliveryState::Delivered, 2), (DeliveryState::Failed, 1)],
                    retries: 2 + 4,
                },
            ]
        );
    }

    #[test]
    fn a_gone_owners_pending_deliveries_are_claimed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Metadata::open(&dir.path().join("sluice.db")).expect("opens");
        let now = Utc::now();
        let pending = m.begin_delivery(new("webhook", "dead"), now).expect("a");
        let done = m.begin_delivery(new("email", "dead"), now).expect("b");
        m.update_delivery(done, DeliveryState::Delivered, 1, None, now)
            .expect("update");
        m.begin_delivery(new("email", "me"), now).expect("mine");
        assert_eq!(m.pending_owners("me").expect("owners"), vec!["dead"]);
        let claimed = m.claim_deliveries("dead", "me").expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, pending);
        assert_eq!(claimed[0].message.as_deref(), Some("{\"text\":\"m\"}"));
        assert!(
            m.claim_deliveries("dead", "other")
                .expect("again")
                .is_empty()
        );
        assert!(m.pending_owners("me").expect("owners").is_empty());
    }
}
