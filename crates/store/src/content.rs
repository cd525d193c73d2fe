//! What a version holds, as one hash: equal hashes mean equal rows, whatever
//! their order, so a rebuild that changed nothing leaves its downstream up to
//! date (early cut-off).
//!
//! Each row is hashed by DataFusion's vectorized row hash (the one its hash
//! joins use, with a fixed seed), mixed, and the row hashes are summed: the sum
//! does not depend on the order of rows or of partitions, and a repeated row
//! counts as often as it occurs. The schema (names, types, nullability) and the
//! row count are hashed with it.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use futures::StreamExt;

/// The seed of the row hash; changing it changes every content hash.
const SEED: u64 = 0x736c_7569_6365_0001;

/// An order-independent hash of rows, built batch by batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ContentHash {
    sum: u64,
    rows: u64,
}

/// splitmix64's finalizer: spreads each row hash over all 64 bits before the sum.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ContentHash {
    /// The hash of `batch` alone.
    pub fn of(batch: &RecordBatch) -> datafusion::error::Result<Self> {
        let mut hashes = vec![0u64; batch.num_rows()];
        create_hashes(batch.columns(), &RandomState::with_seed(SEED), &mut hashes)?;
        Ok(ContentHash {
            sum: hashes.iter().fold(0u64, |acc, h| acc.wrapping_add(mix(*h))),
            rows: batch.num_rows() as u64,
        })
    }

    /// How many rows were hashed.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds the rows of `other`.
    pub fn add(&mut self, other: ContentHash) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.rows += other.rows;
    }

    /// The hash of rows of `schema`, as hex text.
    pub fn finish(&self, schema: &Schema) -> String {
        let mut h = blake3::Hasher::new();
        for f in schema.fields() {
            h.update(format!("{}:{}:{};", f.name(), f.data_type(), f.is_nullable()).as_bytes());
        }
        h.update(&self.rows.to_le_bytes());
        h.update(&self.sum.to_le_bytes());
        h.finalize().to_hex()[..32].to_string()
    }
}

/// `input`'s rows as a table, each batch added to `hash` as it streams by.
pub(crate) fn hashed_table(
    input: Arc<dyn ExecutionPlan>,
    hash: Arc<Mutex<ContentHash>>,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    let schema = input.schema();
    let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() == 0 {
        Arc::new(EmptyExec::new(schema.clone()))
    } else {
        input
    };
    let partitions = (0..input.output_partitioning().partition_count())
        .map(|index| {
            Arc::new(HashedPartition {
                schema: schema.clone(),
                input: input.clone(),
                index,
                hash: hash.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    Ok(Arc::new(StreamingTable::try_new(schema, partitions)?))
}

#[derive(Debug)]
struct HashedPartition {
    schema: SchemaRef,
    input: Arc<dyn ExecutionPlan>,
    index: usize,
    hash: Arc<Mutex<ContentHash>>,
}

impl PartitionStream for HashedPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let stream = match self.input.execute(self.index, ctx) {
            Ok(s) => s,
            Err(e) => {
                return Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::once(async move { Err(e) }),
                ));
            }
        };
        let hash = self.hash.clone();
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map(move |batch| {
                let batch = batch?;
                let part = ContentHash::of(&batch)?;
                hash.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .add(part);
                Ok(batch)
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    fn batch(rows: &[(Option<&str>, i64, f64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("carrier", DataType::Utf8, true),
            Field::new("flights", DataType::Int64, false),
            Field::new("delay", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .expect("batch")
    }

    fn content(batches: &[RecordBatch]) -> String {
        let mut h = ContentHash::default();
        for b in batches {
            h.add(ContentHash::of(b).expect("hash"));
        }
        h.finish(&batches[0].schema())
    }

    #[test]
    fn equal_rows_in_any_order_or_batching_hash_equal() {
        let rows = [(Some("UA"), 3, 1.5), (Some("AA"), 7, -2.0), (None, 1, 0.0)];
        let one = content(&[batch(&rows)]);
        let reversed: Vec<_> = rows.iter().rev().copied().collect();
        assert_eq!(one, content(&[batch(&reversed)]));
        assert_eq!(one, content(&[batch(&rows[..1]), batch(&rows[1..])]));
    }

    #[test]
    fn any_changed_value_row_or_repeat_changes_the_hash() {
        let rows = [(Some("UA"), 3, 1.5), (Some("AA"), 7, -2.0)];
        let base = content(&[batch(&rows)]);
        let changed = [
            vec![(Some("UA"), 3, 1.5), (Some("AA"), 7, -2.5)],
            vec![(Some("UA"), 3, 1.5)],
            vec![
                (Some("UA"), 3, 1.5),
                (Some("AA"), 7, -2.0),
                (Some("AA"), 7, -2.0),
            ],
            vec![(Some("UA"), 3, 1.5), (None, 7, -2.0)],
            // Values swapped between rows.
            vec![(Some("UA"), 7, 1.5), (Some("AA"), 3, -2.0)],
        ];
        for c in changed {
            assert_ne!(base, content(&[batch(&c)]), "{c:?}");
        }
    }
}
