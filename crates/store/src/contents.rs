//! The content hash of each version an offline write made ([`crate::ContentHash`]),
//! recorded after its commit. A version without a record (written before sluice
//! kept them, or by a process killed between the commit and the record) is
//! compared by its number instead: a missing record can only cause a rebuild,
//! never skip one.

use rusqlite::{OptionalExtension, params};

use crate::Result;
use crate::metadata::Metadata;

impl Metadata {
    /// Records the content hash of `asset` at `version`.
    pub fn record_content(&self, asset: &str, version: u64, content: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO contents (asset, version, content) VALUES (?1, ?2, ?3)
                 ON CONFLICT (asset, version) DO UPDATE SET content = excluded.content",
                params![asset, version as i64, content],
            )
            .map(drop)
        })
    }

    /// Forgets the content hashes of `asset` from `version` on: called before
    /// a write makes `version`, so that no stale record can speak for it.
    pub fn forget_contents_from(&self, asset: &str, version: u64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM contents WHERE asset = ?1 AND version >= ?2",
                params![asset, version as i64],
            )
            .map(drop)
        })
    }

    /// The content hash of `asset` at `version`, if recorded.
    pub fn content(&self, asset: &str, version: u64) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT content FROM contents WHERE asset = ?1 AND version = ?2",
                params![asset, version as i64],
                |r| r.get(0),
            )
            .optional()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_is_recorded_per_version_and_may_be_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        assert_eq!(db.content("flights", 0).expect("read"), None);
        db.record_content("flights", 0, "abc").expect("record");
        db.record_content("flights", 1, "abc").expect("record");
        db.record_content("flights", 1, "def").expect("rewrite");
        assert_eq!(
            db.content("flights", 0).expect("read").as_deref(),
            Some("abc")
        );
        assert_eq!(
            db.content("flights", 1).expect("read").as_deref(),
            Some("def")
        );
        assert_eq!(db.content("weather", 1).expect("read"), None);
    }

    /// The early cut-off edge: a table made again numbers its versions from 0,
    /// and the record of the old v0 must not speak for the new one.
    #[test]
    fn records_from_the_next_version_on_are_forgotten_before_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Metadata::open(&dir.path().join("sluice.db")).expect("open");
        for v in 0..3 {
            db.record_content("flights", v, "old").expect("record");
        }
        db.record_content("weather", 0, "kept").expect("record");
        db.forget_contents_from("flights", 1).expect("forget");
        assert_eq!(
            db.content("flights", 0).expect("read").as_deref(),
            Some("old")
        );
        assert_eq!(db.content("flights", 1).expect("read"), None);
        assert_eq!(db.content("flights", 2).expect("read"), None);
        assert_eq!(
            db.content("weather", 0).expect("read").as_deref(),
            Some("kept")
        );
    }
}
