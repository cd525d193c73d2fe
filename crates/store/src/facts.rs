//! What a version's Parquet files tell about a column without a query over
//! its rows: the newest value of a time column, from the footers' statistics,
//! and the distinct values of a text column, from its dictionary keys.
//!
//! A feature view needs both before it can be planned (its reference time when
//! it is computed as of the newest event, its pivots' categories); as queries
//! they were two full scans of the source. Each answer here is exact or
//! nothing: where the files cannot answer exactly (a file without statistics,
//! deletion vectors, a column stored another way, a read that fails) the
//! caller runs its query.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
use deltalake_core::parquet::arrow::ProjectionMask;
use deltalake_core::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use deltalake_core::parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use deltalake_core::parquet::file::metadata::ParquetMetaData;
use deltalake_core::parquet::file::statistics::Statistics;
use futures::TryStreamExt;

use crate::offline::{AsOf, OfflineStore};

/// Rows per batch read for the distinct values.
const READ_BATCH_ROWS: usize = 8192;

impl OfflineStore {
    /// The newest value of the timestamp or date column `column` in `asset` at
    /// `at`, in microseconds since the epoch, as the maximum of its Parquet
    /// statistics over every row group of every file: `SELECT max(column)`
    /// without reading a row. `None` where the footers cannot say exactly
    /// (and then the caller queries): a row group without a maximum, a column
    /// stored as anything but microsecond timestamps or dates, deletion
    /// vectors, no rows at all.
    pub async fn newest_from_footers(&self, asset: &str, at: AsOf, column: &str) -> Option<i64> {
        let files = self.plain_files(asset, at).await?;
        tokio::task::spawn_blocking({
            let column = column.to_string();
            move || {
                let mut newest: Option<i64> = None;
                for path in files {
                    let meta = footer(&path)?;
                    for group in meta.row_groups() {
                        if group.num_rows() == 0 {
                            continue;
                        }
                        let (i, chunk) = group
                            .columns()
                            .iter()
                            .enumerate()
                            .find(|(_, c)| c.column_path().parts() == [column.as_str()])?;
                        let descr = meta.file_metadata().schema_descr().column(i);
                        let max = match (chunk.statistics()?, descr.logical_type_ref()) {
                            (Statistics::Int64(s), Some(LogicalType::Timestamp(t)))
                                if descr.physical_type() == PhysicalType::INT64
                                    && t.unit == TimeUnit::MICROS =>
                            {
                                *s.max_opt().filter(|_| s.max_is_exact())?
                            }
                            (Statistics::Int32(s), Some(LogicalType::Date))
                                if descr.physical_type() == PhysicalType::INT32 =>
                            {
                                i64::from(*s.max_opt().filter(|_| s.max_is_exact())?)
                                    .checked_mul(86_400_000_000)?
                            }
                            _ => return None,
                        };
                        newest = Some(newest.map_or(max, |n| n.max(max)));
                    }
                }
                newest
            }
        })
        .await
        .ok()?
    }

    /// The distinct non-null values of the text column `column` in `asset` at
    /// `at`, in byte order: `SELECT DISTINCT column ... ORDER BY` by reading
    /// only that column's dictionary keys (a value is taken from a dictionary
    /// only where some row's key points at it). A row group per task, on
    /// `cores` tasks. `None` where the column is not text in every file, or
    /// a file cannot be read.
    pub async fn distinct_text_from_files(
        &self,
        asset: &str,
        at: AsOf,
        column: &str,
        cores: usize,
    ) -> Option<Vec<String>> {
        let files = self.plain_files(asset, at).await?;
        let mut units = Vec::new();
        for path in files {
            // Each file's footer is read once, here, for all its row groups.
            let reader = dictionary_reader(&path, column)?;
            for group in 0..reader.meta.metadata().num_row_groups() {
                units.push((path.clone(), reader.clone(), group));
            }
        }
        let units = Arc::new(units);
        let cores = cores.max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..cores.min(units.len()) {
            let units = units.clone();
            tasks.spawn_blocking(move || {
                let mut found = BTreeSet::new();
                for (path, reader, group) in units.iter().skip(task).step_by(cores) {
                    distinct_in(path, reader, *group, &mut found)?;
                }
                Some(found)
            });
        }
        let mut found = BTreeSet::new();
        while let Some(done) = tasks.join_next().await {
            found.append(&mut done.ok()??);
        }
        Some(found.into_iter().collect())
    }

    /// The local paths of the data files of `asset` at `at`, or `None` where
    /// a file has deletion vectors (its rows are not all live) or the version
    /// cannot be opened.
    async fn plain_files(&self, asset: &str, at: AsOf) -> Option<Vec<PathBuf>> {
        let table = self.open(asset, at).await.ok()?;
        let state = table.snapshot().ok()?;
        let views: Vec<_> = state
            .snapshot()
            .file_views(table.log_store().as_ref(), None)
            .try_collect()
            .await
            .ok()?;
        let root = self.table_path(asset);
        views
            .iter()
            .map(|f| {
                f.deletion_vector_descriptor()
                    .is_none()
                    .then(|| root.join(f.path().as_ref()))
            })
            .collect()
    }
}

fn footer(path: &PathBuf) -> Option<Arc<ParquetMetaData>> {
    let file = File::open(path).ok()?;
    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .ok()
        .map(|m| m.metadata().clone())
}

/// How a file's text column is read as a dictionary: its footer, with the
/// column's type as `Dictionary(Int32, Utf8)`, and the mask that reads only it.
#[derive(Clone)]
struct DictionaryReader {
    meta: ArrowReaderMetadata,
    mask: ProjectionMask,
}

/// The [`DictionaryReader`] of `column` in the file at `path`; `None` where
/// the column is not text, or is not one leaf, or the footer cannot be read.
fn dictionary_reader(path: &PathBuf, column: &str) -> Option<DictionaryReader> {
    let file = File::open(path).ok()?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).ok()?;
    let schema = meta.schema();
    let index = schema.index_of(column).ok()?;
    // Text, or a dictionary of text where the file's Arrow schema says so
    // (a file written from a dictionary array).
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let is_text = match schema.field(index).data_type() {
        DataType::Dictionary(_, value) => text(value),
        other => text(other),
    };
    if !is_text {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == column {
                Field::new(
                    f.name(),
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                    f.is_nullable(),
                )
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options).ok()?;
    let parquet = meta.parquet_schema();
    let leaf = parquet
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.path().parts() == [column])
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    if leaf.len() != 1 {
        return None;
    }
    let mask = ProjectionMask::leaves(parquet, leaf);
    Some(DictionaryReader { meta, mask })
}

/// Adds to `found` the values that rows of row group `group` of the file at
/// `path` hold in the column `reader` reads, as a dictionary: each batch's
/// keys mark the values they use, and a dictionary is looked at once for all
/// the batches that share it (the reader hands on a column chunk's dictionary
/// as one array).
fn distinct_in(
    path: &PathBuf,
    reader: &DictionaryReader,
    group: usize,
    found: &mut BTreeSet<String>,
) -> Option<()> {
    let file = File::open(path).ok()?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, reader.meta.clone());
    let mask = reader.mask.clone();
    let reader = builder
        .with_row_groups(vec![group])
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .ok()?;
    // The dictionary the batches now share, and which of its values are used.
    let mut shared: Option<(Arc<dyn Array>, Vec<bool>)> = None;
    let flush = |shared: Option<(Arc<dyn Array>, Vec<bool>)>, found: &mut BTreeSet<String>| {
        if let Some((values, used)) = shared {
            let values = values.as_string::<i32>();
            for (i, _) in used.iter().enumerate().filter(|(_, u)| **u) {
                if values.is_valid(i) && !found.contains(values.value(i)) {
                    found.insert(values.value(i).to_string());
                }
            }
        }
    };
    for batch in reader {
        let batch = batch.ok()?;
        let dict = batch.column(0).as_dictionary_opt::<Int32Type>()?;
        dict.values().as_string_opt::<i32>()?;
        let same = shared
            .as_ref()
            .is_some_and(|(v, _)| Arc::ptr_eq(v, dict.values()));
        if !same {
            flush(shared.take(), found);
            shared = Some((dict.values().clone(), vec![false; dict.values().len()]));
        }
        let used = &mut shared.as_mut()?.1;
        let keys = dict.keys();
        if keys.null_count() == 0 {
            for k in keys.values() {
                *used.get_mut(usize::try_from(*k).ok()?)? = true;
            }
        } else {
            for k in keys.iter().flatten() {
                *used.get_mut(usize::try_from(k).ok()?)? = true;
            }
        }
    }
    flush(shared, found);
    Some(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{SchemaRef, TimeUnit as ArrowUnit};
    use datafusion::common::ScalarValue;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use deltalake_core::parquet::arrow::ArrowWriter;
    use deltalake_core::parquet::file::properties::WriterProperties;

    use super::*;
    use crate::offline::CommitMeta;

    /// Rows `0..n`: an id, a name of 1,500 values in no order (every 11th
    /// null), a time whose newest is mid-file (every 13th null) and a date.
    /// `all_null_times` leaves every time null.
    fn batch(n: i64, utc: bool, all_null_times: bool) -> RecordBatch {
        let zone = utc.then(|| Arc::from("UTC"));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(ArrowUnit::Microsecond, zone.clone()),
                true,
            ),
            Field::new("day", DataType::Date32, true),
            Field::new("code", DataType::Utf8, false),
        ]));
        let ids: Vec<i64> = (0..n).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter(ids.iter().map(|i| {
                (i % 11 != 0).then(|| format!("näme-{:04}", (i * 7919) % 1500))
            }))),
            Arc::new(
                TimestampMicrosecondArray::from_iter(ids.iter().map(|i| {
                    (i % 13 != 0 && !all_null_times)
                        .then(|| 1_735_689_600_000_000 + ((i * 37) % n) * 1_000_001)
                }))
                .with_timezone_opt(zone),
            ),
            Arc::new(Date32Array::from_iter(
                ids.iter()
                    .map(|i| (i % 3 != 0).then(|| 20_000 + ((i * 53) % 997) as i32)),
            )),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("c{i}")),
            )),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    /// `n` rows as a Parquet file in row groups of `group` rows whose
    /// dictionaries may take `dictionary` bytes (a chunk whose dictionary
    /// outgrows it goes on as plain text).
    fn parquet(path: &std::path::Path, n: i64, nulls: bool, group: usize, dictionary: usize) {
        let batch = batch(n, false, nulls);
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .set_dictionary_page_size_limit(dictionary)
            .set_data_page_row_count_limit(500)
            .set_write_batch_size(500)
            .build();
        let file = File::create(path).expect("create");
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }

    fn plan(
        ctx: &SessionContext,
        n: i64,
        all_null_times: bool,
    ) -> datafusion::logical_expr::LogicalPlan {
        let batch = batch(n, true, all_null_times);
        let schema: SchemaRef = batch.schema();
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("table");
        ctx.read_table(Arc::new(table))
            .expect("read")
            .logical_plan()
            .clone()
    }

    /// `asset` written twice: as copies of a file in row groups of 1,200 rows
    /// with 2 KiB dictionaries, and as rows by sluice's own writer
    /// (`<asset>_rows`); the two hash the same.
    async fn tables(store: &OfflineStore, dir: &std::path::Path, asset: &str, n: i64, nulls: bool) {
        let file = dir.join(format!("{asset}.parquet"));
        parquet(&file, n, nulls, 1200, 2048);
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let copied = store
            .write_copies(
                asset,
                plan(&ctx, n, nulls),
                &[file],
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("copies");
        let written = store
            .write(
                &format!("{asset}_rows"),
                plan(&ctx, n, nulls),
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("rows");
        assert_eq!(
            copied.content, written.content,
            "{asset}: the same rows hash the same"
        );
        assert!(copied.content.is_some());
        assert!(stored_as_copies(store, asset).await);
    }

    /// Whether `asset`'s files keep the test files' codec (none), not sluice's zstd.
    async fn stored_as_copies(store: &OfflineStore, asset: &str) -> bool {
        let files = store.plain_files(asset, AsOf::Latest).await.expect("files");
        !files.is_empty()
            && files.iter().all(|f| {
                let meta = footer(f).expect("footer");
                meta.row_groups().iter().all(|g| {
                    g.columns().iter().all(|c| {
                        c.compression() == deltalake_core::parquet::basic::Compression::UNCOMPRESSED
                    })
                })
            })
    }

    async fn query(store: &OfflineStore, asset: &str, sql: &str) -> Vec<ScalarValue> {
        let ctx = SessionContext::new();
        let provider = store
            .provider(asset, AsOf::Latest, &ctx.state())
            .await
            .expect("open");
        ctx.register_table("t", provider).expect("register");
        let batches = ctx
            .sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows())
                    .map(|i| ScalarValue::try_from_array(b.column(0), i).expect("value"))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_files_answer_as_the_queries_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = OfflineStore::new(&dir.path().join("tables"));
        tables(&store, dir.path(), "events", 5000, false).await;
        for asset in ["events", "events_rows"] {
            let max = query(&store, asset, "SELECT CAST(max(at) AS BIGINT) FROM t").await;
            let newest = store.newest_from_footers(asset, AsOf::Latest, "at").await;
            assert_eq!(
                vec![ScalarValue::Int64(newest)],
                max,
                "{asset}: newest time"
            );
            assert!(newest.is_some());
            let max = query(&store, asset, "SELECT max(day) FROM t").await;
            let newest = store.newest_from_footers(asset, AsOf::Latest, "day").await;
            let ScalarValue::Date32(Some(day)) = max[0] else {
                panic!("{asset}: max(day) is {max:?}")
            };
            assert_eq!(
                newest,
                Some(i64::from(day) * 86_400_000_000),
                "{asset}: newest date"
            );

            let sql = "SELECT DISTINCT CAST(name AS VARCHAR) AS v FROM t WHERE name IS NOT NULL ORDER BY v";
            let expected: Vec<String> = query(&store, asset, sql)
                .await
                .iter()
                .map(|v| v.to_string())
                .collect();
            assert_eq!(expected.len(), 1500, "all 1,500 names");
            for cores in [1, 2, 3] {
                let found = store
                    .distinct_text_from_files(asset, AsOf::Latest, "name", cores)
                    .await;
                assert_eq!(found.as_ref(), Some(&expected), "{asset} on {cores} cores");
            }
            // Not text, not a time: the caller queries.
            assert_eq!(
                store
                    .distinct_text_from_files(asset, AsOf::Latest, "id", 2)
                    .await,
                None
            );
            assert_eq!(
                store.newest_from_footers(asset, AsOf::Latest, "id").await,
                None
            );
            assert_eq!(
                store.newest_from_footers(asset, AsOf::Latest, "name").await,
                None
            );
            assert_eq!(
                store
                    .newest_from_footers(asset, AsOf::Latest, "nothing")
                    .await,
                None
            );
        }
        // The copies keep the writer's chunks, some of which went on as plain text.
        let file = dir.path().join("events.parquet");
        let meta = footer(&file).expect("footer");
        let plain = meta.row_groups().iter().any(|g| {
            g.column(1)
                .encodings()
                .any(|e| e == deltalake_core::parquet::basic::Encoding::PLAIN)
        });
        assert!(plain, "a name chunk spilled out of its dictionary");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_time_column_without_a_maximum_is_left_to_the_query() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = OfflineStore::new(&dir.path().join("tables"));
        tables(&store, dir.path(), "empty_times", 300, true).await;
        for asset in ["empty_times", "empty_times_rows"] {
            assert_eq!(
                store.newest_from_footers(asset, AsOf::Latest, "at").await,
                None
            );
            assert!(
                store
                    .newest_from_footers(asset, AsOf::Latest, "day")
                    .await
                    .is_some()
            );
        }
        assert_eq!(
            store
                .newest_from_footers("missing", AsOf::Latest, "at")
                .await,
            None
        );
    }

    /// A copy is read back for its hash with its text as dictionaries where
    /// they are small, as text where a dictionary is big (`code`: 5,000
    /// values in a row group) or went on as plain text: the hash is the rows'.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_hash_as_their_rows_whatever_their_dictionaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = OfflineStore::new(&dir.path().join("tables"));
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let written = store
            .write(
                "rows",
                plan(&ctx, 5000, false),
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("rows");
        for (i, (group, dictionary)) in [(5000, 1 << 20), (2500, 1 << 20), (1200, 2048)]
            .into_iter()
            .enumerate()
        {
            let file = dir.path().join(format!("f{i}.parquet"));
            parquet(&file, 5000, false, group, dictionary);
            let meta = footer(&file).expect("footer");
            let asset = format!("copied{i}");
            let copied = store
                .write_copies(
                    &asset,
                    plan(&ctx, 5000, false),
                    &[file],
                    &ctx.state(),
                    &CommitMeta::default(),
                )
                .await
                .expect("copies");
            assert_eq!(
                copied.content, written.content,
                "row groups of {group}, dictionaries of {dictionary} bytes"
            );
            assert!(stored_as_copies(&store, &asset).await);
            if dictionary == 1 << 20 {
                // Every column chunk has its dictionary.
                assert!(meta.row_groups().iter().all(|g| {
                    g.columns()
                        .iter()
                        .all(|c| c.dictionary_page_offset().is_some())
                }));
            }
        }
    }

    /// A writer may keep values in a chunk's dictionary that no row uses
    /// (Arrow C++ writes a dictionary array's dictionary whole): they are not
    /// values of the column. The file (`testdata/parquet`, made by its script)
    /// holds `ash`, `birch`, `cedar` and `douglas fir` in its dictionary and
    /// `ash`, `cedar` and a null in its rows.
    #[test]
    fn a_dictionary_value_no_row_uses_is_not_a_value() {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/parquet/unused-dictionary-values.parquet");
        let reader = dictionary_reader(&file, "tree").expect("a text column");
        let whole = ParquetRecordBatchReaderBuilder::new_with_metadata(
            File::open(&file).expect("open"),
            reader.meta.clone(),
        )
        .with_projection(reader.mask.clone())
        .build()
        .expect("reader")
        .next()
        .expect("a batch")
        .expect("read");
        let dictionary = whole
            .column(0)
            .as_dictionary::<Int32Type>()
            .values()
            .clone();
        assert_eq!(dictionary.len(), 4, "the file keeps unused values");
        let mut found = BTreeSet::new();
        distinct_in(&file, &reader, 0, &mut found).expect("read");
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["ash", "cedar"]);
        assert!(dictionary_reader(&file, "id").is_none(), "not text");
    }
}
