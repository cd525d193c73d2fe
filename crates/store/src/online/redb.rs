//! The online store in one embedded `redb` file in the warehouse.
//!
//! A view's materialization is one write transaction. The file is opened in
//! redb's multi-writer mode, so `sluice run` can write while `sluice get` or a
//! server in another process reads. One process opens the file once: for
//! reading only until it first writes, then for writing (and reading) for good.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

use super::{
    KEY_SEPARATOR, OnlineRecord, OnlineSnapshot, OnlineStore, OnlineWrite, ViewMeta, ViewWrite,
    entity_key,
};
use crate::{Error, Result};

/// `view -> ViewMeta` (JSON).
const VIEWS: TableDefinition<&str, &str> = TableDefinition::new("views");

/// The redb online store of a warehouse (the file `online.redb`).
#[derive(Debug)]
pub struct RedbOnlineStore {
    path: PathBuf,
    open: Mutex<Option<Handle>>,
}

/// The file as this process has it open.
#[derive(Clone)]
enum Handle {
    Read(Arc<ReadOnlyDatabase>),
    Write(Arc<Database>),
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handle::Read(_) => "Read",
            Handle::Write(_) => "Write",
        })
    }
}

impl Handle {
    fn begin_read(&self) -> std::result::Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Handle::Read(db) => db.begin_read(),
            Handle::Write(db) => db.begin_read(),
        }
    }
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    b
}

fn table_name(view: &str) -> String {
    format!("view/{view}")
}

/// `entity key -> encoded tiles` of a view that keeps tiles.
fn tiles_name(view: &str) -> String {
    format!("tiles/{view}")
}

impl RedbOnlineStore {
    /// The store in the file `path` (opened on first use).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            open: Mutex::new(None),
        }
    }

    fn error(&self, e: impl Into<redb::Error>) -> Error {
        online_error(&self.path, e)
    }

    /// The open file, for writing when `write`; `None` when reading a store that
    /// does not exist yet.
    fn handle(&self, write: bool) -> Result<Option<Handle>> {
        let mut slot = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(h @ Handle::Write(_)) => return Ok(Some(h.clone())),
            Some(h @ Handle::Read(_)) if !write => return Ok(Some(h.clone())),
            _ => {}
        }
        if !write {
            if !self.path.exists() {
                return Ok(None);
            }
            match builder().open_read_only(&self.path) {
                Ok(db) => {
                    let h = Handle::Read(Arc::new(db));
                    *slot = Some(h.clone());
                    return Ok(Some(h));
                }
                // A writer was killed mid-write: a writable open repairs the file.
                Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)))
                | Err(redb::DatabaseError::RepairAborted) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        // The read-only handle must be closed before the file opens for writing.
        *slot = None;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = builder().create(&self.path).map_err(|e| self.error(e))?;
        let h = Handle::Write(Arc::new(db));
        *slot = Some(h.clone());
        Ok(Some(h))
    }
}

fn online_error(path: &Path, e: impl Into<redb::Error>) -> Error {
    Error::Online {
        path: path.to_path_buf(),
        source: Box::new(e.into()),
    }
}

impl OnlineStore for RedbOnlineStore {
    fn open_for_writing(&self) -> Result<()> {
        self.handle(true).map(drop)
    }

    fn snapshot(&self) -> Result<Box<dyn OnlineSnapshot>> {
        let txn = match self.handle(false)? {
            Some(h) => Some(h.begin_read().map_err(|e| self.error(e))?),
            None => None,
        };
        Ok(Box::new(RedbSnapshot {
            path: self.path.clone(),
            txn,
        }))
    }

    fn begin(
        &self,
        view: &str,
        entity: &[String],
        features: &[String],
    ) -> Result<Box<dyn ViewWrite>> {
        let Some(Handle::Write(db)) = self.handle(true)? else {
            unreachable!("handle(true) opens the file for writing")
        };
        let txn = db.begin_write().map_err(|e| self.error(e))?;
        let previous = {
            let table = txn.open_table(VIEWS).map_err(|e| self.error(e))?;
            let meta = table.get(view).map_err(|e| self.error(e))?;
            meta.and_then(|m| serde_json::from_str::<ViewMeta>(m.value()).ok())
        };
        // Records of another shape cannot stand next to the new ones.
        if previous
            .as_ref()
            .is_some_and(|p| p.entity != entity || p.features != features)
        {
            for name in [table_name(view), tiles_name(view)] {
                txn.delete_table(TableDefinition::<&str, &[u8]>::new(&name))
                    .map_err(|e| self.error(e))?;
            }
        }
        Ok(Box::new(RedbViewWrite {
            path: self.path.clone(),
            view: view.to_string(),
            entity: entity.to_vec(),
            features: features.to_vec(),
            txn: Some(txn),
            done: OnlineWrite::default(),
            integer_keys: Vec::new(),
            event_zoned: true,
            tiles: None,
        }))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// A materialization in progress in one redb write transaction.
struct RedbViewWrite {
    path: PathBuf,
    view: String,
    entity: Vec<String>,
    features: Vec<String>,
    txn: Option<WriteTransaction>,
    done: OnlineWrite,
    /// Per key column, whether it holds integers (from the batches' schema).
    integer_keys: Vec<bool>,
    /// Whether the event-time column has a time zone.
    event_zoned: bool,
    /// The plan of the tiles this materialization keeps.
    tiles: Option<serde_json::Value>,
}

/// The key columns of `batch` as text, and whether each holds integers.
fn key_texts(
    batch: &RecordBatch,
    entity: &[String],
) -> std::result::Result<
    (Vec<datafusion::arrow::array::StringArray>, Vec<bool>),
    datafusion::arrow::error::ArrowError,
> {
    let schema = batch.schema();
    let mut keys = Vec::with_capacity(entity.len());
    let mut integer_keys = Vec::with_capacity(entity.len());
    for k in entity {
        let i = schema.index_of(k)?;
        integer_keys.push(schema.field(i).data_type().is_integer());
        let text = cast(batch.column(i), &DataType::Utf8)?;
        keys.push(text.as_string::<i32>().clone());
    }
    Ok((keys, integer_keys))
}

/// Writes the store key of row `row` into `key`; `false` when a key value is null.
fn row_key(keys: &[datafusion::arrow::array::StringArray], row: usize, key: &mut String) -> bool {
    key.clear();
    for (i, k) in keys.iter().enumerate() {
        if k.is_null(row) {
            return false;
        }
        if i > 0 {
            key.push(KEY_SEPARATOR);
        }
        key.push_str(k.value(row));
    }
    true
}

impl ViewWrite for RedbViewWrite {
    /// Writes one record per row of `batch`, which holds the key columns, an event
    /// time column `event` and the feature columns. Rows with a null key or time are
    /// skipped. A row replaces a stored record only when its event is not older.
    fn put_batch(&mut self, batch: &RecordBatch, event: &str) -> Result<()> {
        let path = self.path.clone();
        let plan_error = |e: datafusion::arrow::error::ArrowError| Error::Plan {
            asset: self.view.clone(),
            source: e.into(),
        };
        let schema = batch.schema();
        let (keys, integer_keys) = key_texts(batch, &self.entity).map_err(plan_error)?;
        let ts = schema.index_of(event).map_err(plan_error)?;
        let event_zoned = matches!(
            schema.field(ts).data_type(),
            DataType::Timestamp(_, Some(_))
        );
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
        self.integer_keys = integer_keys;
        self.event_zoned = event_zoned;
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
            .map_err(|e| online_error(&path, e))?;
        let mut lines = json.split(|b| *b == b'\n');
        let mut key = String::new();
        let mut record = Vec::new();
        for row in 0..batch.num_rows() {
            let line = lines.next().unwrap_or_default();
            if ts.is_null(row) || !row_key(&keys, row, &mut key) {
                continue;
            }
            let event = ts.value(row);
            let stored = table
                .get(key.as_str())
                .map_err(|e| online_error(&path, e))?
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
                .map_err(|e| online_error(&path, e))?;
            self.done.written += 1;
        }
        Ok(())
    }

    fn keep_tiles(&mut self, plan: serde_json::Value) -> Result<()> {
        let txn = self
            .txn
            .as_ref()
            .expect("a view write is used until it commits");
        // Tiles are computed over the whole source: the new set replaces the old.
        txn.delete_table(TableDefinition::<&str, &[u8]>::new(&tiles_name(&self.view)))
            .map_err(|e| online_error(&self.path, e))?;
        self.tiles = Some(plan);
        Ok(())
    }

    fn put_tiles(&mut self, batch: &RecordBatch, column: &str) -> Result<()> {
        let plan_error = |e: datafusion::arrow::error::ArrowError| Error::Plan {
            asset: self.view.clone(),
            source: e.into(),
        };
        let (keys, _) = key_texts(batch, &self.entity).map_err(plan_error)?;
        let blobs = batch
            .column(batch.schema().index_of(column).map_err(plan_error)?)
            .as_binary_opt::<i32>()
            .ok_or_else(|| {
                plan_error(datafusion::arrow::error::ArrowError::SchemaError(format!(
                    "the tiles column `{column}` is not binary"
                )))
            })?
            .clone();
        let txn = self
            .txn
            .as_ref()
            .expect("a view write is used until it commits");
        let mut table = txn
            .open_table(TableDefinition::<&str, &[u8]>::new(&tiles_name(&self.view)))
            .map_err(|e| online_error(&self.path, e))?;
        let mut key = String::new();
        for row in 0..batch.num_rows() {
            if blobs.is_null(row) || !row_key(&keys, row, &mut key) {
                continue;
            }
            table
                .insert(key.as_str(), blobs.value(row))
                .map_err(|e| online_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Makes the whole materialization visible at once.
    fn commit(mut self: Box<Self>, version: u64, run_id: i64) -> Result<OnlineWrite> {
        let path = self.path.clone();
        let txn = self.txn.take().expect("committed once");
        let name = table_name(&self.view);
        if self.tiles.is_none() {
            txn.delete_table(TableDefinition::<&str, &[u8]>::new(&tiles_name(&self.view)))
                .map_err(|e| online_error(&path, e))?;
        }
        {
            let table = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(|e| online_error(&path, e))?;
            self.done.entities = table.len().map_err(|e| online_error(&path, e))?;
        }
        let meta = ViewMeta {
            version,
            run_id,
            entity: self.entity.clone(),
            features: self.features.clone(),
            entities: self.done.entities,
            written_at: sluice_core::render::instant(chrono::Utc::now()),
            integer_keys: self.integer_keys.clone(),
            event_zoned: self.event_zoned,
            tiles: self.tiles.take(),
        };
        {
            let mut views = txn.open_table(VIEWS).map_err(|e| online_error(&path, e))?;
            let text = serde_json::to_string(&meta).unwrap_or_default();
            views
                .insert(self.view.as_str(), text.as_str())
                .map_err(|e| online_error(&path, e))?;
        }
        txn.commit().map_err(|e| online_error(&path, e))?;
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

/// A read transaction; `None` when the store does not exist yet.
struct RedbSnapshot {
    path: PathBuf,
    txn: Option<redb::ReadTransaction>,
}

impl OnlineSnapshot for RedbSnapshot {
    fn meta(&self, view: &str) -> Result<Option<ViewMeta>> {
        let Some(txn) = &self.txn else {
            return Ok(None);
        };
        let table = match txn.open_table(VIEWS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(online_error(&self.path, e)),
        };
        let meta = table.get(view).map_err(|e| online_error(&self.path, e))?;
        Ok(meta.and_then(|m| serde_json::from_str(m.value()).ok()))
    }

    fn get(&self, view: &str, key: &[&str]) -> Result<Option<OnlineRecord>> {
        Ok(self.get_many(view, &[key.to_vec()])?.remove(0))
    }

    fn get_many(&self, view: &str, keys: &[Vec<&str>]) -> Result<Vec<Option<OnlineRecord>>> {
        let Some(txn) = &self.txn else {
            return Ok(vec![None; keys.len()]);
        };
        let name = table_name(view);
        let table = match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![None; keys.len()]),
            Err(e) => return Err(online_error(&self.path, e)),
        };
        let tiles_table =
            match txn.open_table(TableDefinition::<&str, &[u8]>::new(&tiles_name(view))) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(online_error(&self.path, e)),
            };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let key = entity_key(key);
            let Some(value) = table
                .get(key.as_str())
                .map_err(|e| online_error(&self.path, e))?
            else {
                out.push(None);
                continue;
            };
            let bytes = value.value();
            let values = match serde_json::from_slice(bytes.get(8..).unwrap_or_default()) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            let tiles = match &tiles_table {
                Some(t) => t
                    .get(key.as_str())
                    .map_err(|e| online_error(&self.path, e))?
                    .map(|v| v.value().to_vec()),
                None => None,
            };
            out.push(Some(OnlineRecord {
                event_micros: event_of(bytes),
                values,
                tiles,
            }));
        }
        Ok(out)
    }
}
