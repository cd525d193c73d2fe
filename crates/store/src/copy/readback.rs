//! Reading the copies back, spread over the cores, for their content hash
//! and row count: a row group per task, or, where there are fewer groups than
//! cores, ranges of a group's rows.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake_core::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use deltalake_core::parquet::basic::{Encoding, PageType};
use deltalake_core::parquet::file::metadata::ColumnChunkMetaData;
use deltalake_core::{DeltaResult, DeltaTableError};

use crate::content::ContentHash;
use crate::spread;

/// A part of a copy to read back: a file, one of its row groups, and a range
/// of that group's rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unit {
    path: PathBuf,
    group: usize,
    rows: std::ops::Range<usize>,
}

/// Rows per batch read back.
const READ_BATCH_ROWS: usize = 8192;

/// Fewer rows than this are never split off a row group to be read apart.
const MIN_SPLIT_ROWS: usize = 64 * 1024;

/// The units that read back `groups` (a file, a row group, its row count) on
/// `cores` tasks: a group each, but where there are fewer groups than cores
/// (a file written with one big row group, as pyarrow writes up to 1Mi rows)
/// each group is cut into row ranges so that every core reads a share. A
/// reader skips the pages before its range from their headers alone.
pub(super) fn units(groups: Vec<(PathBuf, usize, usize)>, cores: usize) -> Vec<Unit> {
    let pieces = if groups.is_empty() {
        1
    } else {
        cores.max(1).div_ceil(groups.len())
    };
    groups
        .into_iter()
        .flat_map(|(path, group, rows)| {
            let pieces = pieces.min(rows / MIN_SPLIT_ROWS).max(1);
            let size = rows.div_ceil(pieces);
            (0..pieces).map(move |p| Unit {
                path: path.clone(),
                group,
                rows: (p * size).min(rows)..((p + 1) * size).min(rows),
            })
        })
        .collect()
}

/// The hash of the rows of `units`, read on `cores` blocking tasks, each
/// taking every `cores`-th unit.
pub(super) async fn hash_row_groups(
    units: Vec<Unit>,
    schema: &Schema,
    cores: usize,
) -> DeltaResult<ContentHash> {
    let units = Arc::new(units);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..cores.max(1).min(units.len()) {
        let units = units.clone();
        let schema = schema.clone();
        let cores = cores.max(1);
        tasks.spawn_blocking(move || {
            let mut hash = ContentHash::default();
            for unit in units.iter().skip(task).step_by(cores) {
                let part = match hash_unit(unit, &schema, true)? {
                    Some(part) => part,
                    // A dictionary too big to be worth it: read as text,
                    // which always hashes (`None` is for dictionaries only).
                    None => hash_unit(unit, &schema, false)?.unwrap_or_default(),
                };
                hash.add(part);
            }
            Ok::<_, DeltaTableError>(hash)
        });
    }
    let mut hash = ContentHash::default();
    for part in spread::joined(tasks, "a hash task").await? {
        hash.add(part);
    }
    Ok(hash)
}

/// The hash of `unit`'s rows, its text columns read as dictionaries where
/// `dictionaries` says and `as_dictionaries` finds them encoded so; `None`
/// where a dictionary holds more than a quarter of a batch's rows (hashing
/// every value of it for each batch would cost more than the text saves).
fn hash_unit(unit: &Unit, schema: &Schema, dictionaries: bool) -> DeltaResult<Option<ContentHash>> {
    let at = |e: &dyn std::fmt::Display| {
        DeltaTableError::Generic(format!("reading {} back: {e}", unit.path.display()))
    };
    let file = File::open(&unit.path).map_err(|e| at(&e))?;
    let selection = RowSelection::from(vec![
        RowSelector::skip(unit.rows.start),
        RowSelector::select(unit.rows.len()),
    ]);
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| at(&e))?;
    let expected = if dictionaries {
        as_dictionaries(&meta, unit.group)
    } else {
        meta.schema().clone()
    };
    let meta = ArrowReaderMetadata::try_new(
        meta.metadata().clone(),
        ArrowReaderOptions::new().with_schema(expected.clone()),
    )
    .map_err(|e| at(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
        .with_row_groups(vec![unit.group])
        .with_row_selection(selection)
        // arrow-rs's default is 1,024 rows; DataFusion's batches.
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| at(&e))?;
    if !same_but_dictionaries(&expected, schema) {
        return Err(at(&format!(
            "its columns read as {:?}, not as the table's",
            expected.fields()
        )));
    }
    let mut hash = ContentHash::default();
    for (i, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| at(&e))?;
        if batch.schema().fields() != expected.fields() {
            return Err(at(&format!(
                "its columns read as {:?}, not as the table's",
                batch.schema().fields()
            )));
        }
        let big = |c: &ArrayRef| {
            c.as_any_dictionary_opt()
                .is_some_and(|d| d.values().len() > READ_BATCH_ROWS / 4)
        };
        if dictionaries && i == 0 && batch.columns().iter().any(big) {
            return Ok(None);
        }
        hash.add(ContentHash::of(&batch)?);
    }
    Ok(Some(hash))
}

/// The file's columns as `group` is read back: a text column stored with a
/// dictionary (`all_dictionary`) is read as a dictionary, so that its rows are
/// not materialized as strings and each distinct value is hashed once per
/// batch. DataFusion's row hash of a dictionary of text is the hash of its
/// values, so the content hash is the same either way (tests hold it to that).
fn as_dictionaries(meta: &ArrowReaderMetadata, group: usize) -> SchemaRef {
    let schema = meta.schema();
    let chunks = meta.metadata().row_group(group).columns();
    // Only a flat schema maps its fields one to one onto the column chunks.
    if chunks.len() != schema.fields().len() {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(chunks)
        .map(|(f, chunk)| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 if all_dictionary(chunk) => {
                let t = DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(f.data_type().clone()),
                );
                f.as_ref().clone().with_data_type(t)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether `chunk` is read as a dictionary: it has one, and the footer does
/// not say that a data page went on as plain text (a footer may not say: a
/// copy's keeps no page encoding statistics). A chunk that did is still read
/// right, its text turned into a dictionary batch by batch, only slower.
fn all_dictionary(chunk: &ColumnChunkMetaData) -> bool {
    let dictionary =
        |e: Encoding| matches!(e, Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY);
    if chunk.dictionary_page_offset().is_none() {
        return false;
    }
    if let Some(stats) = chunk.page_encoding_stats() {
        return stats
            .iter()
            .filter(|s| matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2))
            .all(|s| dictionary(s.encoding));
    }
    chunk.page_encoding_stats_mask().is_none_or(|m| {
        m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY)
    })
}

/// Whether `read` has `table`'s columns, a text column maybe read as a
/// dictionary of its text.
fn same_but_dictionaries(read: &Schema, table: &Schema) -> bool {
    read.fields().len() == table.fields().len()
        && read.fields().iter().zip(table.fields()).all(|(r, t)| {
            let value = match r.data_type() {
                DataType::Dictionary(_, v) => v.as_ref(),
                other => other,
            };
            r.name() == t.name()
                && r.is_nullable() == t.is_nullable()
                && value == t.data_type()
                && r.metadata() == t.metadata()
        })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use deltalake_core::parquet::arrow::ArrowWriter;

    use super::*;

    /// 10,000 rows of an id and a name of `distinct` values (every 7th null),
    /// as a Parquet file of one row group, every chunk with its dictionary.
    fn names(dir: &std::path::Path, distinct: i64) -> (PathBuf, SchemaRef) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let n = 10_000;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 7 != 0).then(|| format!("name-{}", i % distinct))),
                )),
            ],
        )
        .expect("batch");
        let path = dir.join(format!("names-{distinct}.parquet"));
        let mut w =
            ArrowWriter::try_new(File::create(&path).expect("create"), schema.clone(), None)
                .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        (path, schema)
    }

    #[test]
    fn text_is_hashed_by_its_dictionary_unless_the_dictionary_is_big() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (distinct, by_dictionary) in [(10, true), (5000, false)] {
            let (path, schema) = names(dir.path(), distinct);
            let file = File::open(&path).expect("open");
            let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).expect("footer");
            assert!(
                matches!(
                    as_dictionaries(&meta, 0).field(1).data_type(),
                    DataType::Dictionary(_, _)
                ),
                "{distinct} names: a chunk with a dictionary is read as one"
            );
            let unit = Unit {
                path,
                group: 0,
                rows: 0..10_000,
            };
            let as_text = hash_unit(&unit, &schema, false)
                .expect("read")
                .expect("text always hashes");
            assert_eq!(as_text.rows(), 10_000);
            let as_dictionary = hash_unit(&unit, &schema, true).expect("read");
            if by_dictionary {
                assert_eq!(as_dictionary, Some(as_text), "{distinct} names");
            } else {
                assert_eq!(as_dictionary, None, "{distinct} names: read again as text");
            }
        }
    }

    #[test]
    fn a_row_group_is_read_back_in_ranges_only_when_cores_would_idle() {
        let p = PathBuf::from("f");
        let unit = |group, rows: std::ops::Range<usize>| Unit {
            path: p.clone(),
            group,
            rows,
        };
        let one = vec![(p.clone(), 0, 1_000_001)];
        assert_eq!(
            units(one.clone(), 2),
            vec![unit(0, 0..500_001), unit(0, 500_001..1_000_001)]
        );
        assert_eq!(units(one, 1), vec![unit(0, 0..1_000_001)]);
        // Too few rows to be worth a second reader.
        assert_eq!(
            units(vec![(p.clone(), 0, 100_000)], 2),
            vec![unit(0, 0..100_000)]
        );
        // As many groups as cores: a group each.
        let two = vec![(p.clone(), 0, 1_000_000), (p.clone(), 1, 10)];
        assert_eq!(units(two, 2), vec![unit(0, 0..1_000_000), unit(1, 0..10)]);
        assert!(units(Vec::new(), 2).is_empty());
    }
}
