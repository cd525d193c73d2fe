//! The online store: per feature view (or model's predictions) and entity, the
//! newest feature values and their event time.
//!
//! [`OnlineStore`] is the seam: redb ([`RedbOnlineStore`], one embedded file in
//! the warehouse) implements it today; a shared store (Redis) implements the same
//! four promises:
//! - a view's materialization becomes visible at once ([`ViewWrite::commit`]);
//!   readers see the set before it or the set after it, never a mix;
//! - a record is replaced only by one whose event time is not older;
//! - every read through one [`OnlineSnapshot`] sees the same materializations;
//! - a process that writes can read through the same store.

mod redb;

use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

pub use self::redb::RedbOnlineStore;
use crate::Result;

/// Separates the parts of a composite entity key.
pub const KEY_SEPARATOR: char = '\u{1f}';

/// What the online store holds for a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMeta {
    /// The offline version the records come from.
    pub version: u64,
    /// The run that wrote them.
    pub run_id: i64,
    /// The entity's key columns.
    pub entity: Vec<String>,
    /// The feature columns, in order.
    pub features: Vec<String>,
    /// How many entities the view holds.
    pub entities: u64,
    /// When the materialization was committed (RFC 3339).
    pub written_at: String,
    /// Per key column, whether it holds integers: their keys read back as JSON
    /// numbers. Empty for a view written before this was recorded (all text).
    #[serde(default)]
    pub integer_keys: Vec<bool>,
    /// Whether the event-time column has a time zone: its times are instants
    /// (rendered with `Z`), else wall-clock times (rendered without a zone).
    /// Views written before this was recorded read as instants.
    #[serde(default = "instants")]
    pub event_zoned: bool,
    /// How the view's tiles are read (a windowed view's partial aggregates per
    /// time tile, read as of the request time), when it keeps them; opaque here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiles: Option<serde_json::Value>,
}

fn instants() -> bool {
    true
}

impl ViewMeta {
    /// The key values of an entity as JSON: numbers for integer key columns,
    /// text otherwise (and where the text is not an integer).
    pub fn key_values(&self, key: &[&str]) -> Vec<serde_json::Value> {
        key.iter()
            .enumerate()
            .map(|(i, text)| {
                let integer = self.integer_keys.get(i).copied().unwrap_or(false);
                match text.trim().parse::<i64>() {
                    Ok(n) if integer => serde_json::Value::from(n),
                    _ => serde_json::Value::String((*text).to_string()),
                }
            })
            .collect()
    }
}

/// One entity's record.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRecord {
    /// The event time of the values, in microseconds since the epoch (UTC).
    pub event_micros: i64,
    /// The features as a JSON object (feature name to value, in the view's order).
    pub values: serde_json::Map<String, serde_json::Value>,
    /// The entity's encoded tiles, when the view keeps them.
    pub tiles: Option<Vec<u8>>,
}

/// What one materialization did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OnlineWrite {
    /// Entities in the view after the write.
    pub entities: u64,
    /// Records written (new or newer).
    pub written: u64,
    /// Records kept because the stored one has a newer event.
    pub kept_newer: u64,
}

/// An online store. Shared by the tasks of a run and the requests of a server.
pub trait OnlineStore: Send + Sync + std::fmt::Debug {
    /// Prepares the store for writing (creates it; repairs it after a crash). A
    /// server calls it at start so that its first request does not pay for it.
    fn open_for_writing(&self) -> Result<()>;

    /// A consistent view of the store. A store nothing was written to yet reads
    /// as empty.
    fn snapshot(&self) -> Result<Box<dyn OnlineSnapshot>>;

    /// Starts materializing `view` with these key and feature columns; records of
    /// another shape are dropped when it commits.
    fn begin(
        &self,
        view: &str,
        entity: &[String],
        features: &[String],
    ) -> Result<Box<dyn ViewWrite>>;

    /// Where the store is, for messages (a file path or a URL).
    fn location(&self) -> String;
}

/// Reads that all see the same materializations.
pub trait OnlineSnapshot: Send {
    /// The view's metadata, if it was ever materialized.
    fn meta(&self, view: &str) -> Result<Option<ViewMeta>>;

    /// One entity's record; `key` holds the key values in the view's key order.
    fn get(&self, view: &str, key: &[&str]) -> Result<Option<OnlineRecord>>;

    /// Many entities' records, in the order of `keys` (`None` where the view holds
    /// no record). A store with a round trip per read overrides it with one batch.
    fn get_many(&self, view: &str, keys: &[Vec<&str>]) -> Result<Vec<Option<OnlineRecord>>> {
        keys.iter().map(|k| self.get(view, k)).collect()
    }
}

/// A materialization in progress: nothing is visible until [`ViewWrite::commit`];
/// dropped without it, nothing changes.
pub trait ViewWrite: Send {
    /// Writes one record per row of `batch`, which holds the key columns, an
    /// event-time column `event` and the feature columns. Rows with a null key or
    /// time are skipped. A row replaces a stored record only when its event is
    /// not older.
    fn put_batch(&mut self, batch: &RecordBatch, event: &str) -> Result<()>;

    /// Declares that this materialization keeps tiles, read by `plan` (stored in
    /// the view's [`ViewMeta::tiles`]): every entity's tiles are replaced by those
    /// put with [`ViewWrite::put_tiles`]. A materialization that does not call it
    /// drops the view's tiles.
    fn keep_tiles(&mut self, plan: serde_json::Value) -> Result<()>;

    /// Stores the tiles of one entity per row of `batch`, which holds the key
    /// columns and the binary column `column`. Rows with a null key are skipped.
    fn put_tiles(&mut self, batch: &RecordBatch, column: &str) -> Result<()>;

    /// Makes the whole materialization visible at once, as offline `version`
    /// written by `run_id`.
    fn commit(self: Box<Self>, version: u64, run_id: i64) -> Result<OnlineWrite>;
}

/// The store key of an entity: its key values joined by [`KEY_SEPARATOR`].
pub fn entity_key(key: &[&str]) -> String {
    key.join(&KEY_SEPARATOR.to_string())
}

#[cfg(test)]
mod tests {
    //! The promises of the trait, checked through `dyn OnlineStore` so that a
    //! second implementation runs the same checks.

    use std::sync::Arc;

    use datafusion::arrow::array::{
        BinaryArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn batch(rows: &[(&str, i64, f64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("tailnum", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("delay", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.1),
                )),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .expect("batch")
    }

    fn publish(store: &dyn OnlineStore, version: u64, rows: &[(&str, i64, f64)]) -> OnlineWrite {
        let mut w = store
            .begin("delays", &["tailnum".into()], &["delay".into()])
            .expect("begin");
        w.put_batch(&batch(rows), "ts").expect("put");
        w.commit(version, 1).expect("commit")
    }

    fn delay(snapshot: &dyn OnlineSnapshot, tailnum: &str) -> Option<f64> {
        snapshot
            .get("delays", &[tailnum])
            .expect("get")
            .map(|r| r.values["delay"].as_f64().expect("number"))
    }

    fn keeps_its_promises(store: &dyn OnlineStore) {
        // Nothing written yet: an empty snapshot, not an error.
        let empty = store.snapshot().expect("snapshot");
        assert_eq!(empty.meta("delays").expect("meta"), None);
        assert_eq!(delay(empty.as_ref(), "N14228"), None);
        drop(empty);

        let done = publish(store, 1, &[("N14228", 20, 3.0), ("N24211", 20, -4.0)]);
        assert_eq!((done.entities, done.written, done.kept_newer), (2, 2, 0));

        // A snapshot taken now keeps seeing version 1 while version 2 commits.
        let before = store.snapshot().expect("snapshot");
        // N14228's event is older than the stored one: the newer record stays.
        let done = publish(store, 2, &[("N14228", 10, 99.0), ("N619AA", 30, 7.5)]);
        assert_eq!((done.entities, done.written, done.kept_newer), (3, 1, 1));
        assert_eq!(delay(before.as_ref(), "N619AA"), None);
        assert_eq!(
            before.meta("delays").expect("meta").map(|m| m.version),
            Some(1)
        );

        let after = store.snapshot().expect("snapshot");
        assert_eq!(delay(after.as_ref(), "N14228"), Some(3.0));
        assert_eq!(delay(after.as_ref(), "N619AA"), Some(7.5));
        let many = after
            .get_many("delays", &[vec!["N24211"], vec!["nobody"], vec!["N619AA"]])
            .expect("get many");
        let found: Vec<Option<i64>> = many
            .iter()
            .map(|r| r.as_ref().map(|r| r.event_micros))
            .collect();
        assert_eq!(found, vec![Some(20), None, Some(30)]);
        let meta = after.meta("delays").expect("meta").expect("written");
        assert_eq!((meta.version, meta.entities), (2, 3));

        // A write dropped before its commit changes nothing.
        {
            let mut w = store
                .begin("delays", &["tailnum".into()], &["delay".into()])
                .expect("begin");
            w.put_batch(&batch(&[("N14228", 40, 1000.0)]), "ts")
                .expect("put");
        }
        let later = store.snapshot().expect("snapshot");
        assert_eq!(delay(later.as_ref(), "N14228"), Some(3.0));
        drop(later);

        // Tiles: kept with their plan; a materialization without them drops them.
        let tiles = |blobs: &[(&str, &[u8])]| {
            let schema = Arc::new(Schema::new(vec![
                Field::new("tailnum", DataType::Utf8, true),
                Field::new("tiles", DataType::Binary, true),
            ]));
            RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(StringArray::from_iter_values(blobs.iter().map(|b| b.0))),
                    Arc::new(BinaryArray::from_iter_values(blobs.iter().map(|b| b.1))),
                ],
            )
            .expect("batch")
        };
        let mut w = store
            .begin("delays", &["tailnum".into()], &["delay".into()])
            .expect("begin");
        w.put_batch(&batch(&[("N14228", 40, 5.0)]), "ts")
            .expect("put");
        w.keep_tiles(serde_json::json!({"size": 1})).expect("tiled");
        w.put_tiles(&tiles(&[("N14228", b"abc"), ("N619AA", b"de")]), "tiles")
            .expect("put tiles");
        w.commit(3, 1).expect("commit");
        let tiled = store.snapshot().expect("snapshot");
        let meta = tiled.meta("delays").expect("meta").expect("written");
        assert_eq!(meta.tiles, Some(serde_json::json!({"size": 1})));
        let records = tiled
            .get_many("delays", &[vec!["N14228"], vec!["N619AA"], vec!["N24211"]])
            .expect("get many");
        let blobs: Vec<Option<Vec<u8>>> = records
            .into_iter()
            .map(|r| r.and_then(|r| r.tiles))
            .collect();
        assert_eq!(
            blobs,
            vec![Some(b"abc".to_vec()), Some(b"de".to_vec()), None]
        );
        drop(tiled);
        publish(store, 4, &[("N14228", 50, 6.0)]);
        let untiled = store.snapshot().expect("snapshot");
        assert_eq!(
            untiled
                .meta("delays")
                .expect("meta")
                .expect("written")
                .tiles,
            None
        );
        let record = untiled
            .get("delays", &["N14228"])
            .expect("get")
            .expect("record");
        assert_eq!(record.tiles, None);
    }

    #[test]
    fn redb_keeps_the_online_store_promises() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbOnlineStore::new(&dir.path().join("wh/online.redb"));
        keeps_its_promises(&store);
    }

    #[test]
    fn a_reading_process_sees_what_a_writing_one_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("online.redb");
        let writer = RedbOnlineStore::new(&path);
        writer.open_for_writing().expect("open");
        publish(&writer, 1, &[("N14228", 20, 3.0)]);
        let reader = RedbOnlineStore::new(&path);
        let snapshot = reader.snapshot().expect("snapshot");
        assert_eq!(delay(snapshot.as_ref(), "N14228"), Some(3.0));
    }
}
