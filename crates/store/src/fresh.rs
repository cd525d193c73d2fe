//! When each asset was last proved fresh, read from the run log: the end of its
//! newest attempt that ended `built` or `up_to_date` (a check that found the
//! asset up to date proves it fresh as much as a build: its inputs did not
//! change). The scheduler's `freshness` trigger measures an asset's age from it.

use chrono::{DateTime, Duration, Utc};
use rusqlite::OptionalExtension;

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// An asset's newest attempt that left it fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// When the attempt ended (its start plus its duration).
    pub ended_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// The run it was part of.
    pub run_id: i64,
}

impl Metadata {
    /// The newest attempt of `asset` that ended `built` or `up_to_date`
    /// (`None`: it never did). Attempts are written when they end, so the
    /// newest written (`rowid`; an identity column in PostgreSQL) is the one
    /// that ended last.
    pub fn last_fresh(&self, asset: &str) -> Result<Option<Fresh>> {
        self.with(|c| {
            c.query_row(
                "SELECT started_at, duration_ms, run_id FROM attempts
                 WHERE asset = ?1 AND status IN ('built', 'up_to_date') AND started_at IS NOT NULL
                 ORDER BY rowid DESC LIMIT 1",
                [asset],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()
        })
        .map(|row| {
            row.map(|(started, ms, run_id)| {
                let duration_ms = ms.max(0) as u64;
                Fresh {
                    ended_at: parse_time(started) + Duration::milliseconds(duration_ms as i64),
                    duration_ms,
                    run_id,
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AttemptRecord;

    #[test]
    fn the_newest_built_or_up_to_date_attempt_is_the_last_fresh_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let attempt = |run_id, status: &str, at: DateTime<Utc>, ms| {
            db.record_attempt(&AttemptRecord {
                run_id,
                asset: "a".into(),
                attempt: 1,
                status: status.into(),
                started_at: Some(at),
                duration_ms: ms,
                input_versions: "{}".into(),
                ..Default::default()
            })
            .expect("attempt");
        };
        assert_eq!(db.last_fresh("a").expect("read"), None);
        let one = db.begin_run(None, &[]).expect("run");
        attempt(one, "built", t0, 2_000);
        let two = db.begin_run(None, &[]).expect("run");
        attempt(two, "up_to_date", t0 + Duration::hours(1), 10);
        let three = db.begin_run(None, &[]).expect("run");
        attempt(three, "failed", t0 + Duration::hours(2), 5);
        let fresh = db.last_fresh("a").expect("read").expect("fresh once");
        assert_eq!(
            fresh.ended_at,
            t0 + Duration::hours(1) + Duration::milliseconds(10)
        );
        assert_eq!((fresh.duration_ms, fresh.run_id), (10, two));
        assert_eq!(db.last_fresh("b").expect("read"), None);
    }
}
