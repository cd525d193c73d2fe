//! Parquet files: only the columns asked for are decoded, in the order asked
//! for, and timestamps become the source's UTC instants.

use std::fs::File;
use std::path::Path;

use datafusion::arrow::array::{ArrayRef, RecordBatch, make_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::readers::{BATCH_SIZE, reader_error};
use crate::{Error, Result};

/// Reads `file` (at `path`) as `schema` (the projected schema), keeping the
/// columns `projection` lists (indices into the file's top-level fields, in
/// the order given), handing each batch to `emit` until it returns false.
pub(crate) fn read(
    path: &Path,
    file: File,
    schema: &SchemaRef,
    projection: Option<&[usize]>,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<()> {
    // The reader yields the columns it decodes in the file's order;
    // `order` puts them back in the order asked for.
    let mut sorted: Vec<usize> = projection.map(<[usize]>::to_vec).unwrap_or_default();
    sorted.sort_unstable();
    sorted.dedup();
    let order: Option<Vec<usize>> = projection.map(|p| {
        p.iter()
            .map(|i| sorted.binary_search(i).unwrap_or_default())
            .collect()
    });
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| {
            let b = b.with_batch_size(BATCH_SIZE);
            if projection.is_some() {
                // Top-level field i of the file is its root column i.
                let mask = ProjectionMask::roots(b.parquet_schema(), sorted.clone());
                b.with_projection(mask).build()
            } else {
                b.build()
            }
        })
        .map_err(|e| reader_error(path, e, Some("is it a Parquet file?")))?;
    for batch in reader {
        let batch = batch.map_err(|e| reader_error(path, e, None))?;
        let batch = match &order {
            Some(o) => batch.project(o).map_err(|e| reader_error(path, e, None))?,
            None => batch,
        };
        let batch = if batch.schema().fields() == schema.fields() {
            batch
        } else {
            // Timestamps are stored as UTC instants: a file's zone-less
            // or nanosecond timestamps are converted (a zone-less time
            // is read in the source's `timezone`).
            let mismatch = |source: ArrowError| Error::CastColumns {
                path: path.to_path_buf(),
                source,
            };
            let mut columns = Vec::with_capacity(batch.num_columns());
            for (c, f) in batch.columns().iter().zip(schema.fields()) {
                columns.push(match (c.data_type(), f.data_type()) {
                    (DataType::Timestamp(_, _), want @ DataType::Timestamp(_, _))
                        if c.data_type() != want =>
                    {
                        to_instants(c, want).map_err(mismatch)?
                    }
                    _ => c.clone(),
                });
            }
            RecordBatch::try_new(schema.clone(), columns).map_err(mismatch)?
        };
        if !emit(batch) {
            break;
        }
    }
    Ok(())
}

/// A Parquet file's timestamps as the instants of `want` (a zoned timestamp).
/// A zone-less time read in UTC keeps its value: only the type changes, where
/// Arrow's cast would look up the zone's offset for every value (15% of a
/// 10M-row source run's CPU).
fn to_instants(column: &ArrayRef, want: &DataType) -> Result<ArrayRef, ArrowError> {
    let (DataType::Timestamp(unit, None), DataType::Timestamp(want_unit, Some(zone))) =
        (column.data_type(), want)
    else {
        return cast(column, want);
    };
    if !matches!(zone.as_ref(), "UTC" | "+00:00" | "Z") {
        return cast(column, want);
    }
    let zoneless = if unit == want_unit {
        column.clone()
    } else {
        cast(column, &DataType::Timestamp(*want_unit, None))?
    };
    let data = zoneless
        .to_data()
        .into_builder()
        .data_type(want.clone())
        .build()?;
    Ok(make_array(data))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::TimeUnit;

    use super::*;

    /// The fast path gives exactly what Arrow's cast gives.
    #[test]
    fn zoneless_times_read_in_utc_keep_their_instants() {
        let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
            Some(1_700_000_000_123_456_789),
            None,
            Some(-86_400_000_000_001),
        ]));
        let micros: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            Some(1_700_000_000_123_456),
            None,
            Some(0),
        ]));
        for zone in ["UTC", "+00:00", "America/New_York", "+02:00"] {
            let want = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(zone)));
            for column in [&nanos, &micros] {
                let fast = to_instants(column, &want).unwrap();
                let slow = cast(column, &want).unwrap();
                assert_eq!(fast.data_type(), &want);
                assert_eq!(fast.to_data(), slow.to_data(), "{zone}: {column:?}");
            }
        }
    }
}
