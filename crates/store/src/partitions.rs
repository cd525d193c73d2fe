//! The partitions of partitioned assets in the metadata database: one row per
//! (asset, partition) saying which version built it, from which fingerprint,
//! or that its last build failed.
//!
//! The row is written after the partition's Delta commit (which carries the
//! same fingerprint and the partition's label), so a process killed in
//! between leaves a partition without a row — rebuilt by the next run, never
//! skipped: the record can only cause a rebuild.

use chrono::Utc;
use rusqlite::params;

use crate::Result;
use crate::metadata::{Metadata, parse_time};

/// The table, created by [`Metadata::open`]. Plain SQL PostgreSQL also runs.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS partitions (
    asset TEXT NOT NULL,
    partition TEXT NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT,
    version BIGINT,
    content TEXT,
    rows BIGINT,
    run_id BIGINT NOT NULL,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (asset, partition)
);
";

/// What the newest build of one partition did.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRecord {
    /// The partition's label (`2024-01-05`).
    pub partition: String,
    /// Built: the version its commit made, from `fingerprint`. Failed: the
    /// version an earlier build made, if any.
    pub built: Option<(u64, String)>,
    /// The hash of its rows as built ([`crate::ContentHash`]), where known: what
    /// a downstream partition of the same size depends on.
    pub content: Option<String>,
    /// Rows it holds (as built).
    pub rows: Option<u64>,
    /// The run of its newest build.
    pub run_id: i64,
    /// Why its newest build failed; `None` when it succeeded.
    pub error: Option<String>,
    /// When this row was written.
    pub updated_at: chrono::DateTime<Utc>,
}

impl Metadata {
    /// Records that `partition` of `asset` was committed: `built` is the
    /// version, the fingerprint it was built from and the hash of its rows.
    pub fn partition_built(
        &self,
        asset: &str,
        partition: &str,
        built: (u64, &str, Option<&str>),
        rows: u64,
        run_id: i64,
    ) -> Result<()> {
        let (version, fingerprint, content) = built;
        self.with(|c| {
            c.execute(
                "INSERT INTO partitions (asset, partition, state, fingerprint, version, content, rows, run_id, error, updated_at)
                 VALUES (?1, ?2, 'built', ?3, ?4, ?5, ?6, ?7, NULL, ?8)
                 ON CONFLICT (asset, partition) DO UPDATE SET state = 'built',
                    fingerprint = excluded.fingerprint, version = excluded.version,
                    content = excluded.content, rows = excluded.rows,
                    run_id = excluded.run_id, error = NULL,
                    updated_at = excluded.updated_at",
                params![
                    asset,
                    partition,
                    fingerprint,
                    version as i64,
                    content,
                    rows as i64,
                    run_id,
                    Utc::now().to_rfc3339()
                ],
            )?;
            Ok(())
        })
    }

    /// Records that building `partition` of `asset` failed; what an earlier
    /// build published stays recorded (and published).
    pub fn partition_failed(
        &self,
        asset: &str,
        partition: &str,
        run_id: i64,
        error: &str,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO partitions (asset, partition, state, run_id, error, updated_at)
                 VALUES (?1, ?2, 'failed', ?3, ?4, ?5)
                 ON CONFLICT (asset, partition) DO UPDATE SET state = 'failed',
                    run_id = excluded.run_id, error = excluded.error,
                    updated_at = excluded.updated_at",
                params![asset, partition, run_id, error, Utc::now().to_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// Every recorded partition of `asset`, by label.
    pub fn partitions(&self, asset: &str) -> Result<Vec<PartitionRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT partition, fingerprint, version, content, rows, run_id, error, updated_at
                 FROM partitions WHERE asset = ?1 ORDER BY partition",
            )?;
            let rows = stmt.query_map([asset], |r| {
                let fingerprint: Option<String> = r.get(1)?;
                let version: Option<i64> = r.get(2)?;
                Ok(PartitionRecord {
                    partition: r.get(0)?,
                    built: version.zip(fingerprint).map(|(v, f)| (v as u64, f)),
                    content: r.get(3)?,
                    rows: r.get::<_, Option<i64>>(4)?.map(|n| n as u64),
                    run_id: r.get(5)?,
                    error: r.get(6)?,
                    updated_at: parse_time(r.get(7)?),
                })
            })?;
            rows.collect()
        })
    }

    /// Forgets every partition of `asset` (its table was replaced whole).
    pub fn forget_partitions(&self, asset: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM partitions WHERE asset = ?1", [asset])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_build_keeps_what_the_last_good_one_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        md.partition_built("daily", "2024-01-02", (3, "fp1", Some("c1")), 10, 1)
            .expect("built");
        md.partition_failed("daily", "2024-01-02", 2, "boom")
            .expect("failed");
        md.partition_failed("daily", "2024-01-01", 2, "boom")
            .expect("failed");
        let all = md.partitions("daily").expect("read");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].partition, "2024-01-01");
        assert_eq!(all[0].built, None);
        assert_eq!(all[1].built, Some((3, "fp1".to_string())));
        assert_eq!(all[1].error.as_deref(), Some("boom"));
        assert_eq!(all[1].content.as_deref(), Some("c1"));
        md.partition_built("daily", "2024-01-02", (4, "fp2", None), 11, 3)
            .expect("built");
        let again = md.partitions("daily").expect("read");
        assert_eq!(again[1].built, Some((4, "fp2".to_string())));
        assert_eq!((again[1].error.as_ref(), again[1].rows), (None, Some(11)));
        md.forget_partitions("daily").expect("forget");
        assert!(md.partitions("daily").expect("read").is_empty());
    }
}
