//! A table written as a copy of Parquet files whose encoded columns it can
//! hold as they are: a source read from Parquet files and stored unchanged.
//!
//! Decoding such a file and encoding its rows again (dictionaries, zstd) is
//! most of a source snapshot's cost. Where every column of a file is stored
//! in Parquet exactly as the table would store it (the same physical type,
//! the same levels, the same logical type but for a timestamp's UTC flag),
//! its column chunks are copied byte for byte into a new file under the
//! table with arrow-rs's [`SerializedRowGroupWriter::append_column`], behind
//! a footer that describes them with the table's columns. The copies are then
//! read back (`readback.rs`: row groups, or for fewer groups than cores
//! ranges of their rows, spread over the cores) to hash their rows (the
//! version's [`ContentHash`](crate::content::ContentHash), the same as a
//! write of the rows would give) and to check that they hold the rows the
//! footers count; the Delta statistics
//! of each file come from its footer. All the copies go into one commit, as
//! in [`crate::spread`], so a crash before it leaves only files no version
//! lists.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::Schema;
use deltalake_core::kernel::Add;
use deltalake_core::parquet::arrow::ArrowSchemaConverter;
use deltalake_core::parquet::arrow::add_encoded_arrow_schema_to_metadata;
use deltalake_core::parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as Physical};
use deltalake_core::parquet::column::writer::ColumnCloseResult;
use deltalake_core::parquet::file::metadata::{
    ColumnChunkMetaData, ParquetMetaData, ParquetMetaDataReader,
};
use deltalake_core::parquet::file::properties::WriterProperties;
use deltalake_core::parquet::file::writer::SerializedFileWriter;
use deltalake_core::parquet::schema::types::{ColumnDescriptor, SchemaDescriptor};
use deltalake_core::{DeltaResult, DeltaTable, DeltaTableError};

use crate::offline::CommitMeta;
use crate::spread::{self, Spread, Spreaded};

mod readback;
mod stats;

use readback::{hash_row_groups, units};
pub(crate) use stats::indexed_columns;
use stats::stats;

/// Parquet files whose columns the table can hold as they are, with their footers.
pub(crate) struct Copyable {
    files: Vec<(PathBuf, Arc<ParquetMetaData>)>,
    /// The table's Parquet columns.
    target: Arc<SchemaDescriptor>,
    /// The table's folder, where the copies go.
    root: PathBuf,
    /// How many of the first columns get statistics ([`indexed_columns`]).
    indexed: usize,
}

/// The files as the table in `root` of rows of `schema` can hold them, or why not.
pub(crate) fn copyable(
    files: &[PathBuf],
    schema: &Schema,
    root: &Path,
    indexed: usize,
) -> Result<Copyable, String> {
    let target = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(|e| format!("the columns have no plain Parquet form: {e}"))?;
    if target.num_columns() != schema.fields().len() {
        return Err("a column is nested".into());
    }
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&file)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let theirs = meta.file_metadata().schema_descr();
        if theirs.num_columns() != target.num_columns() {
            return Err(format!(
                "{} has {} Parquet columns, the table {}",
                path.display(),
                theirs.num_columns(),
                target.num_columns()
            ));
        }
        for i in 0..target.num_columns() {
            let (a, b) = (theirs.column(i), target.column(i));
            if !same_encoding(&a, &b) {
                return Err(format!(
                    "{}: column {} is stored as {:?} {:?}, the table's as {:?} {:?}",
                    path.display(),
                    a.path(),
                    a.physical_type(),
                    logical(&a),
                    b.physical_type(),
                    logical(&b)
                ));
            }
        }
        // A chunk may live in another file (rare, and refused here).
        if meta
            .row_groups()
            .iter()
            .any(|g| g.columns().iter().any(|c| c.file_path().is_some()))
        {
            return Err(format!(
                "{}: a column chunk is in another file",
                path.display()
            ));
        }
        out.push((path.clone(), Arc::new(meta)));
    }
    Ok(Copyable {
        files: out,
        target: Arc::new(target),
        root: root.to_path_buf(),
        indexed,
    })
}

/// A column's logical type, from the legacy converted type where the file
/// gives only that, without the annotations that say the physical type's
/// default (a signed 32-bit integer in INT32, a signed 64-bit in INT64).
fn logical(c: &ColumnDescriptor) -> Option<LogicalType> {
    let t = c
        .logical_type_ref()
        .cloned()
        .or_else(|| match c.converted_type() {
            ConvertedType::UTF8 => Some(LogicalType::String),
            ConvertedType::DATE => Some(LogicalType::Date),
            ConvertedType::TIMESTAMP_MILLIS => Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
            ConvertedType::TIMESTAMP_MICROS => Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
            ConvertedType::INT_32 => Some(LogicalType::integer(32, true)),
            ConvertedType::INT_64 => Some(LogicalType::integer(64, true)),
            ConvertedType::NONE => None,
            _ => Some(LogicalType::Unknown),
        });
    match (c.physical_type(), t) {
        (Physical::INT32, Some(LogicalType::Integer(i))) if i.bit_width == 32 && i.is_signed => {
            None
        }
        (Physical::INT64, Some(LogicalType::Integer(i))) if i.bit_width == 64 && i.is_signed => {
            None
        }
        (_, t) => t,
    }
}

/// Whether the bytes of column `a` read as column `b` give the same values:
/// the same physical type and levels, and the same logical type, where a
/// timestamp may differ in its UTC flag only (the source's reader takes a
/// zone-less time as a UTC instant, keeping its value).
fn same_encoding(a: &ColumnDescriptor, b: &ColumnDescriptor) -> bool {
    let logical_same = match (logical(a), logical(b)) {
        (Some(LogicalType::Timestamp(x)), Some(LogicalType::Timestamp(y))) => x.unit == y.unit,
        (x, y) => x == y,
    };
    a.physical_type() == b.physical_type()
        && a.type_length() == b.type_length()
        && a.max_def_level() == b.max_def_level()
        && a.max_rep_level() == 0
        && b.max_rep_level() == 0
        && logical_same
}

/// Copies `files` into `table` and commits them as `how` says: one task per
/// file copies its column chunks, then the copies' row groups are hashed on
/// `cores` tasks.
pub(crate) async fn write(
    table: DeltaTable,
    asset: &str,
    schema: &Schema,
    files: Copyable,
    how: Spread,
    meta: &CommitMeta,
    cores: usize,
) -> DeltaResult<Spreaded> {
    let started = Instant::now();
    let Copyable {
        files,
        target,
        root,
        indexed,
    } = files;
    let mut copies = tokio::task::JoinSet::new();
    for (index, (source, footer)) in files.into_iter().enumerate() {
        let schema = schema.clone();
        let target = target.clone();
        let name = format!("part-{index:05}-{}-c000.parquet", random_id());
        let dest = root.join(&name);
        copies.spawn_blocking(move || {
            let written = copy_file(&source, &footer, &schema, &target, &dest);
            if written.is_err() {
                let _ = std::fs::remove_file(&dest);
            }
            let (size, footer) = written?;
            Ok::<_, DeltaTableError>((index, name, dest, size, footer))
        });
    }
    let mut copied = spread::joined(copies, &format!("a copy of `{asset}`")).await?;
    copied.sort_by_key(|c| c.0);

    let groups: Vec<(PathBuf, usize, usize)> = copied
        .iter()
        .flat_map(|(_, _, dest, _, footer)| {
            (0..footer.num_row_groups())
                .map(move |g| (dest.clone(), g, footer.row_group(g).num_rows() as usize))
        })
        .collect();
    let hash = hash_row_groups(units(groups, cores), schema, cores).await?;
    let counted: i64 = copied.iter().map(|c| c.4.file_metadata().num_rows()).sum();
    if hash.rows() != counted as u64 {
        return Err(DeltaTableError::Generic(format!(
            "the copies of `{asset}`'s files read back {} rows where their footers count {counted}",
            hash.rows()
        )));
    }
    let modified = chrono::Utc::now().timestamp_millis();
    let adds = copied
        .into_iter()
        .map(|(_, name, _, size, footer)| Add {
            path: name,
            size: size as i64,
            modification_time: modified,
            data_change: true,
            stats: Some(stats(&footer, schema, indexed).to_string()),
            ..Default::default()
        })
        .collect();
    spread::commit(table, asset, schema, how, adds, hash, meta, started).await
}

/// A random 128-bit name part, written as a UUID is.
fn random_id() -> String {
    let mut b = [0u8; 16];
    // The name only has to be unique; the time stands in should the system
    // have no randomness to give.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = t.to_le_bytes();
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Writes `dest`: the column chunks of `source` (whose footer is `footer`)
/// behind a footer of the table's columns (`target`, of `schema`). Gives the
/// new file's size and footer.
fn copy_file(
    source: &Path,
    footer: &ParquetMetaData,
    schema: &Schema,
    target: &SchemaDescriptor,
    dest: &Path,
) -> DeltaResult<(u64, ParquetMetaData)> {
    let at = |e: &dyn std::fmt::Display| {
        DeltaTableError::Generic(format!(
            "copying {} into {}: {e}",
            source.display(),
            dest.display()
        ))
    };
    let input = File::open(source).map_err(|e| at(&e))?;
    let output = BufWriter::with_capacity(1 << 20, File::create(dest).map_err(|e| at(&e))?);
    let mut props = WriterProperties::builder()
        .set_created_by(format!("sluice {}", env!("CARGO_PKG_VERSION")))
        .build();
    // Readers take the Arrow types from the footer: the table's.
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    let mut writer = SerializedFileWriter::new(output, target.root_schema_ptr(), Arc::new(props))
        .map_err(|e| at(&e))?;
    for group in footer.row_groups() {
        let mut out = writer.next_row_group().map_err(|e| at(&e))?;
        for (i, chunk) in group.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: chunk.compressed_size() as u64,
                rows_written: group.num_rows() as u64,
                metadata: as_column(chunk, target.column(i)).map_err(|e| at(&e))?,
                bloom_filter: None,
                column_index: None,
                offset_index: None,
            };
            out.append_column(&input, close).map_err(|e| at(&e))?;
        }
        out.close().map_err(|e| at(&e))?;
    }
    let written = writer.close().map_err(|e| at(&e))?;
    let size = std::fs::metadata(dest).map_err(|e| at(&e))?.len();
    Ok((size, written))
}

/// `chunk`'s metadata as a chunk of the table's column `column`.
fn as_column(
    chunk: &ColumnChunkMetaData,
    column: Arc<ColumnDescriptor>,
) -> deltalake_core::parquet::errors::Result<ColumnChunkMetaData> {
    let mut b = ColumnChunkMetaData::builder(column)
        .set_compression_codec(chunk.compression_codec())
        .set_encodings_mask(*chunk.encodings_mask())
        .set_total_compressed_size(chunk.compressed_size())
        .set_total_uncompressed_size(chunk.uncompressed_size())
        .set_num_values(chunk.num_values())
        .set_data_page_offset(chunk.data_page_offset())
        .set_dictionary_page_offset(chunk.dictionary_page_offset())
        .set_unencoded_byte_array_data_bytes(chunk.unencoded_byte_array_data_bytes());
    if let Some(s) = chunk.statistics() {
        b = b.set_statistics(s.clone());
    }
    if let Some(p) = chunk.page_encoding_stats() {
        b = b.set_page_encoding_stats(p.clone());
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit as ArrowUnit};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use deltalake_core::parquet::arrow::ArrowWriter;
    use deltalake_core::parquet::basic::Compression;
    use deltalake_core::parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::Value;

    use super::*;
    use crate::offline::{AsOf, OfflineStore, VersionInfo};

    /// Rows `from..to`: an id, a name repeated (a dictionary), an amount with
    /// nulls and a time, zone-less (as a file has it) or in UTC (as read).
    fn batch(from: i64, to: i64, utc: bool, nullable: bool) -> RecordBatch {
        let ids: Vec<i64> = (from..to).collect();
        let zone = utc.then(|| Arc::from("UTC"));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, nullable),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new(
                "at",
                DataType::Timestamp(ArrowUnit::Microsecond, zone.clone()),
                true,
            ),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("user{:03}", i % 7)),
            )),
            Arc::new(Float64Array::from_iter(
                ids.iter().map(|i| (i % 5 != 0).then(|| *i as f64 / 4.0)),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    ids.iter().map(|i| 1_735_689_600_000_000 + i * 1_000_001),
                )
                .with_timezone_opt(zone),
            ),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    /// A Parquet file of rows `from..to`, uncompressed (sluice's own writes
    /// are zstd), in row groups of 300 rows.
    fn parquet(path: &Path, from: i64, to: i64, nullable: bool) {
        parquet_in_groups(path, from, to, nullable, 300);
    }

    /// The same in row groups of `group` rows, in pages of at most 1,000.
    fn parquet_in_groups(path: &Path, from: i64, to: i64, nullable: bool, group: usize) {
        let batch = batch(from, to, false, nullable);
        let props = WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_max_row_group_row_count(Some(group))
            .set_data_page_row_count_limit(1000)
            .set_write_batch_size(1000)
            .build();
        let file = File::create(path).expect("create");
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }

    /// The source's rows as sluice reads them (times in UTC), as a plan.
    fn plan(ctx: &SessionContext, parts: &[(i64, i64)]) -> datafusion::logical_expr::LogicalPlan {
        let batches: Vec<RecordBatch> = parts
            .iter()
            .map(|(a, b)| batch(*a, *b, true, true))
            .collect();
        let schema: SchemaRef = batches[0].schema();
        let table = MemTable::try_new(schema, vec![batches]).expect("table");
        ctx.read_table(Arc::new(table))
            .expect("read")
            .logical_plan()
            .clone()
    }

    async fn rows(store: &OfflineStore, asset: &str, at: AsOf) -> Vec<RecordBatch> {
        let ctx = SessionContext::new();
        let provider = store.provider(asset, at, &ctx.state()).await.expect("open");
        ctx.read_table(provider)
            .expect("read")
            .sort(vec![datafusion::prelude::col("id").sort(true, false)])
            .expect("sort")
            .collect()
            .await
            .expect("collect")
    }

    /// The data files of `asset`'s newest version, with their Delta stats.
    async fn files(store: &OfflineStore, asset: &str) -> Vec<(PathBuf, Value)> {
        let table = store.for_writing(asset).await.expect("table");
        let state = table.snapshot().expect("state");
        let log = table.log_store();
        let views: Vec<_> =
            futures::TryStreamExt::try_collect(state.snapshot().file_views(log.as_ref(), None))
                .await
                .expect("files");
        views
            .iter()
            .map(|f| {
                let stats = f.stats().map_or(Value::Null, |s| {
                    serde_json::from_str(&s).expect("stats json")
                });
                (store.table_path(asset).join(f.path().as_ref()), stats)
            })
            .collect()
    }

    fn codec(path: &Path) -> Compression {
        let reader = SerializedFileReader::new(File::open(path).expect("open")).expect("read");
        reader.metadata().row_group(0).column(0).compression()
    }

    async fn write(
        store: &OfflineStore,
        asset: &str,
        sources: &[PathBuf],
        parts: &[(i64, i64)],
    ) -> VersionInfo {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        store
            .write_copies(
                asset,
                plan(&ctx, parts),
                sources,
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("write")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parquet_files_are_stored_as_copies_that_read_and_hash_as_the_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        parquet(&a, 0, 1000, true);
        parquet(&b, 1000, 1500, true);
        let store = OfflineStore::new(&dir.path().join("tables"));
        let parts = [(0, 1000), (1000, 1500)];

        let copied = write(&store, "copied", &[a.clone(), b.clone()], &parts).await;
        // The same rows written as rows, for comparison.
        let ctx = SessionContext::new();
        let written = store
            .write(
                "written",
                plan(&ctx, &parts),
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("write rows");
        assert_eq!(copied.rows, Some(1500));
        assert_eq!(
            copied.content, written.content,
            "the same rows hash the same"
        );
        assert_eq!(
            rows(&store, "copied", AsOf::Latest).await,
            rows(&store, "written", AsOf::Latest).await
        );

        let files = files(&store, "copied").await;
        assert_eq!(files.len(), 2, "one copy per file");
        for (path, _) in &files {
            // The source's own encoding, not sluice's zstd.
            assert_eq!(codec(path), Compression::UNCOMPRESSED);
        }
        let mut stats: Vec<&Value> = files.iter().map(|(_, s)| s).collect();
        stats.sort_by_key(|s| s["numRecords"].as_i64());
        let small = stats[0];
        assert_eq!(small["numRecords"], 500);
        assert_eq!(small["minValues"]["id"], 1000);
        assert_eq!(small["maxValues"]["id"], 1499);
        assert_eq!(small["minValues"]["name"], "user000");
        assert_eq!(small["maxValues"]["name"], "user006");
        assert_eq!(small["nullCount"]["amount"], 100);
        assert_eq!(small["nullCount"]["id"], 0);
        // 2025-01-01 + 1000 × 1.000001 s, and + 1499 × 1.000001 s rounded
        // up to the millisecond.
        assert_eq!(small["minValues"]["at"], "2025-01-01T00:16:40.001Z");
        assert_eq!(small["maxValues"]["at"], "2025-01-01T00:24:59.002Z");
        assert_eq!(small["minValues"]["amount"], 250.25);

        // A second write replaces the first; the first stays readable.
        let again = write(&store, "copied", std::slice::from_ref(&b), &[(1000, 1500)]).await;
        assert_eq!((again.version, again.rows), (1, Some(500)));
        let first = rows(&store, "copied", AsOf::Version(0)).await;
        assert_eq!(first.iter().map(RecordBatch::num_rows).sum::<usize>(), 1500);
        assert_eq!(self::files(&store, "copied").await.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_of_one_row_group_is_read_back_in_ranges_with_every_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.parquet");
        parquet_in_groups(&a, 0, 150_001, true, 200_000);
        let footer = SerializedFileReader::new(File::open(&a).expect("open")).expect("read");
        assert_eq!(footer.metadata().num_row_groups(), 1);
        let store = OfflineStore::new(&dir.path().join("tables"));
        let copied = write(&store, "copied", std::slice::from_ref(&a), &[(0, 150_001)]).await;
        let ctx = SessionContext::new();
        let written = store
            .write(
                "written",
                plan(&ctx, &[(0, 150_001)]),
                &ctx.state(),
                &CommitMeta::default(),
            )
            .await
            .expect("write rows");
        assert_eq!(copied.rows, Some(150_001));
        assert_eq!(copied.content, written.content, "every row hashed once");
        assert_eq!(
            codec(&files(&store, "copied").await[0].0),
            Compression::UNCOMPRESSED
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_whose_columns_differ_from_the_table_is_written_by_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.parquet");
        // `id` is required in the file, nullable in the table: its levels differ.
        parquet(&a, 0, 600, false);
        let store = OfflineStore::new(&dir.path().join("tables"));
        let info = write(&store, "t", &[a], &[(0, 600)]).await;
        assert_eq!(info.rows, Some(600));
        for (path, _) in files(&store, "t").await {
            assert!(
                matches!(codec(&path), Compression::ZSTD(_)),
                "written by sluice"
            );
        }
        let read = rows(&store, "t", AsOf::Latest).await;
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 600);
    }
}
