//! Reading the copies back, spread over the cores, for their content hash
//! and row count: a row group per task, or, where there are fewer groups than
//! cores, ranges of a group's rows.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use deltalake_core::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
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
                let at = |e: &dyn std::fmt::Display| {
                    DeltaTableError::Generic(format!("reading {} back: {e}", unit.path.display()))
                };
                let file = File::open(&unit.path).map_err(|e| at(&e))?;
                let selection = RowSelection::from(vec![
                    RowSelector::skip(unit.rows.start),
                    RowSelector::select(unit.rows.len()),
                ]);
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| {
                        b.with_row_groups(vec![unit.group])
                            .with_row_selection(selection)
                            // arrow-rs's default is 1,024 rows; DataFusion's batches.
                            .with_batch_size(READ_BATCH_ROWS)
                            .build()
                    })
                    .map_err(|e| at(&e))?;
                for batch in reader {
                    let batch = batch.map_err(|e| at(&e))?;
                    if batch.schema().fields() != schema.fields() {
                        return Err(at(&format!(
                            "its columns read as {:?}, not as the table's",
                            batch.schema().fields()
                        )));
                    }
                    hash.add(ContentHash::of(&batch)?);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

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
