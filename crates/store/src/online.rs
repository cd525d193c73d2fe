//! The online store: per feature view and entity, the latest feature values and
//! their event time, in one embedded `redb` file in the warehouse.
//!
//! A view's materialization is one write transaction: readers (threads or other
//! processes) see the set before it or the set after it, never a mix. A record is
//! replaced only by one whose event time is not older. The file is opened in redb's
//! multi-writer mode, so `sluice run` can write while `sluice get` or a server in
//! another process reads.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;
use redb::{
    Builder, ConcurrencyMode, Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `view -> ViewMeta` (JSON).
const VIEWS: TableDefinition<&str, &str> = TableDefinition::new("views");

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
}

/// One entity's record.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRecord {
    /// The event time of the values, in microseconds since the epoch (UTC).
    pub event_micros: i64,
    /// The features as a JSON object (feature name to value, in the view's order).
    pub values: serde_json::Map<String, serde_json::Value>,
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

/// The online store of a warehouse.
#[derive(Debug, Clone)]
pub struct OnlineStore {
    path: PathBuf,
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    b
}

fn table_name(view: &str) -> String {
    format!("view/{view}")
}

impl OnlineStore {
    /// The online store in `warehouse` (the file `online.redb`).
    pub fn new(warehouse: &Path) -> Self {
        Self {
            path: warehouse.join("online.redb"),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: impl Into<redb::Error>) -> Error {
        Error::Online {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    /// Opens the store for writing, creating it (and repairing it after a crash).
    pub fn open_writer(&self) -> Result<OnlineWriter> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = builder().create(&self.path).map_err(|e| self.error(e))?;
        Ok(OnlineWriter {
            store: self.clone(),
            db,
        })
    }

    /// Opens the store for reading; `None` when nothing was ever materialized.
    pub fn open_reader(&self) -> Result<Option<OnlineReader>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let db = match builder().open_read_only(&self.path) {
            Ok(db) => db,
            // A writer was killed mid-write: a writable open repairs the file.
            Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)))
            | Err(redb::DatabaseError::RepairAborted) => {
                drop(self.open_writer()?);
                builder()
                    .open_read_only(&self.path)
                    .map_err(|e| self.error(e))?
            }
            Err(e) => return Err(self.error(e)),
        };
        Ok(Some(OnlineReader {
            store: self.clone(),
            db,
        }))
    }
}

/// A handle that writes materializations.
pub struct OnlineWriter {
    store: OnlineStore,
    db: Database,
}

impl std::fmt::Debug for OnlineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnlineWriter({})", self.store.path.display())
    }
}

impl OnlineWriter {
    /// The view's metadata, if it was ever materialized.
    pub fn meta(&self, view: &str) -> Result<Option<ViewMeta>> {
        let txn = self.db.begin_read().map_err(|e| self.store.error(e))?;
        read_meta(&self.store, &txn, view)
    }

    /// A snapshot to read through the writer's handle (a process that writes
    /// should not open the file a second time to read it).
    pub fn snapshot(&self) -> Result<Snapshot<'_>> {
        let txn = self.db.begin_read().map_err(|e| self.store.error(e))?;
        Ok(Snapshot {
            store: &self.store,
            txn,
        })
    }

    /// Starts materializing `view` with these key and feature columns.
    pub fn begin(&self, view: &str, entity: &[String], features: &[String]) -> Result<ViewWrite> {
        let txn = self.db.begin_write().map_err(|e| self.store.error(e))?;
        let previous = {
            let table = txn.open_table(VIEWS).map_err(|e| self.store.error(e))?;
            let meta = table.get(view).map_err(|e| self.store.error(e))?;
            meta.and_then(|m| serde_json::from_str::<ViewMeta>(m.value()).ok())
        };
        // Records of another shape cannot stand next to the new ones.
        if previous
            .as_ref()
            .is_some_and(|p| p.entity != entity || p.features != features)
        {
            let name = table_name(view);
            txn.delete_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(|e| self.store.error(e))?;
        }
        Ok(ViewWrite {
            store: self.store.clone(),
            view: view.to_string(),
            entity: entity.to_vec(),
            features: features.to_vec(),
            txn: Some(txn),
            done: OnlineWrite::default(),
        })
    }
}

/// A materialization in progress: nothing is visible until [`ViewWrite::commit`].
pub struct ViewWrite {
    store: OnlineStore,
    view: String,
    entity: Vec<String>,
    features: Vec<String>,
    txn: Option<WriteTransaction>,
    done: OnlineWrite,
}

impl ViewWrite {
    /// Writes one record per row of `batch`, which holds the key columns, an event
    /// time column `event` and the feature columns. Rows with a null key or time are
    /// skipped. A row replaces a stored record only when its event is not older.
    pub fn put_batch(&mut self, batch: &RecordBatch, event: &str) -> Result<()> {
        let store = self.store.clone();
        let plan_error = |e: datafusion::arrow::error::ArrowError| Error::Plan {
            asset: self.view.clone(),
            source: e.into(),
        };
        let schema = batch.schema();
        let mut keys = Vec::with_capacity(self.entity.len());
        for k in &self.entity {
            let i = schema.index_of(k).map_err(plan_error)?;
            let text = cast(batch.column(i), &DataType::Utf8).map_err(plan_error)?;
            keys.push(text.as_string::<i32>().clone());
        }
        let ts = schema.index_of(event).map_err(plan_error)?;
        let ts = cast(
            batch.column(ts),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .map_err(plan_error)?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let indices: Vec<usize> = self
            .features
            .iter()
            .map(|f| schema.index_of(f))
            .collect::<std::result::Result<_, _>>()
            .map_err(plan_error)?;
        let values = batch.project(&indices).map_err(plan_error)?;
        let mut json = Vec::with_capacity(values.num_rows() * 64);
        {
            let mut writer: LineDelimitedWriter<&mut Vec<u8>> = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut json);
            writer.write(&values).map_err(plan_error)?;
            writer.finish().map_err(plan_error)?;
        }
        let txn = self
            .txn
            .as_ref()
            .expect("a view write is used until it commits");
        let name = table_name(&self.view);
        let mut table = txn
            .open_table(TableDefinition::<&str, &[u8]>::new(&name))
            .map_err(|e| store.error(e))?;
        let mut lines = json.split(|b| *b == b'\n');
        let mut key = String::new();
        let mut record = Vec::new();
        for row in 0..batch.num_rows() {
            let line = lines.next().unwrap_or_default();
            if ts.is_null(row) || keys.iter().any(|k| k.is_null(row)) {
                continue;
            }
            key.clear();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    key.push(KEY_SEPARATOR);
                }
                key.push_str(k.value(row));
            }
            let event = ts.value(row);
            let stored = table
                .get(key.as_str())
                .map_err(|e| store.error(e))?
                .map(|v| event_of(v.value()));
            if stored.is_some_and(|s| s > event) {
                self.done.kept_newer += 1;
                continue;
            }
            record.clear();
            record.extend_from_slice(&event.to_le_bytes());
            record.extend_from_slice(line);
            table
                .insert(key.as_str(), record.as_slice())
                .map_err(|e| store.error(e))?;
            self.done.written += 1;
        }
        Ok(())
    }

    /// Makes the whole materialization visible at once.
    pub fn commit(mut self, version: u64, run_id: i64) -> Result<OnlineWrite> {
        let store = self.store.clone();
        let txn = self.txn.take().expect("committed once");
        let name = table_name(&self.view);
        {
            let table = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(|e| store.error(e))?;
            self.done.entities = table.len().map_err(|e| store.error(e))?;
        }
        let meta = ViewMeta {
            version,
            run_id,
            entity: self.entity.clone(),
            features: self.features.clone(),
            entities: self.done.entities,
            written_at: chrono::Utc::now().to_rfc3339(),
        };
        {
            let mut views = txn.open_table(VIEWS).map_err(|e| store.error(e))?;
            let text = serde_json::to_string(&meta).unwrap_or_default();
            views
                .insert(self.view.as_str(), text.as_str())
                .map_err(|e| store.error(e))?;
        }
        txn.commit().map_err(|e| store.error(e))?;
        Ok(self.done)
    }
}

fn event_of(record: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    if record.len() >= 8 {
        b.copy_from_slice(&record[..8]);
    }
    i64::from_le_bytes(b)
}

/// A handle that reads; each call reads one consistent snapshot.
pub struct OnlineReader {
    store: OnlineStore,
    db: ReadOnlyDatabase,
}

/// A consistent snapshot of the online store: every read through it sees the same
/// materializations.
pub struct Snapshot<'a> {
    store: &'a OnlineStore,
    txn: redb::ReadTransaction,
}

impl OnlineReader {
    /// A snapshot to read several records consistently.
    pub fn snapshot(&self) -> Result<Snapshot<'_>> {
        let txn = self.db.begin_read().map_err(|e| self.store.error(e))?;
        Ok(Snapshot {
            store: &self.store,
            txn,
        })
    }

    /// The view's metadata, if it was ever materialized.
    pub fn meta(&self, view: &str) -> Result<Option<ViewMeta>> {
        self.snapshot()?.meta(view)
    }

    /// One entity's record; `key` holds the key values in the view's key order.
    pub fn get(&self, view: &str, key: &[&str]) -> Result<Option<OnlineRecord>> {
        self.snapshot()?.get(view, key)
    }
}

impl Snapshot<'_> {
    /// The view's metadata, if it was ever materialized.
    pub fn meta(&self, view: &str) -> Result<Option<ViewMeta>> {
        read_meta(self.store, &self.txn, view)
    }

    /// One entity's record; `key` holds the key values in the view's key order.
    pub fn get(&self, view: &str, key: &[&str]) -> Result<Option<OnlineRecord>> {
        let name = table_name(view);
        let table = match self
            .txn
            .open_table(TableDefinition::<&str, &[u8]>::new(&name))
        {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.store.error(e)),
        };
        let key = key.join(&KEY_SEPARATOR.to_string());
        let Some(value) = table.get(key.as_str()).map_err(|e| self.store.error(e))? else {
            return Ok(None);
        };
        let bytes = value.value();
        let values = match serde_json::from_slice(bytes.get(8..).unwrap_or_default()) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        Ok(Some(OnlineRecord {
            event_micros: event_of(bytes),
            values,
        }))
    }
}

fn read_meta(
    store: &OnlineStore,
    txn: &redb::ReadTransaction,
    view: &str,
) -> Result<Option<ViewMeta>> {
    let table = match txn.open_table(VIEWS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(store.error(e)),
    };
    let meta = table.get(view).map_err(|e| store.error(e))?;
    Ok(meta.and_then(|m| serde_json::from_str(m.value()).ok()))
}
