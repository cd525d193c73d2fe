//! Point-in-time correct training sets: Feast's semantics, streamed.
//!
//! For each spine row (entity keys, a time `T`, labels...) and each feature view,
//! the view's row with the same keys and the greatest event time `<= T` (and
//! `>= T - ttl` when the view has a ttl), ties broken by the greatest created time.
//! It is a left join: spine rows are never dropped (features are null when nothing
//! matches, when a key is null, or when `T` is null), and they keep their order.
//!
//! How: the spine is numbered, then per view both sides are sorted (DataFusion's
//! sort, which spills to disk under its memory limit) by keys and time, and merged
//! in one pass keeping, per spine key, the last feature row at or before `T`. A
//! final sort by the spine's row number restores its order. Memory is bounded by
//! the sorts' budget and one batch per side, not by the size of the inputs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::{
    Array, ArrayRef, RecordBatch, TimestampMicrosecondArray, UInt64Array, new_null_array,
};
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext, ident};
use futures::StreamExt;

use crate::micros_array;

/// The name of the column that numbers spine rows while the join runs.
pub(crate) const ROW: &str = "__sluice_spine_row";

/// One feature view to join.
#[derive(Debug, Clone)]
pub struct ViewInput {
    /// The view's name (for messages).
    pub view: String,
    /// The view's rows: keys, event time, created time, features.
    pub rows: DataFrame,
    /// The entity's key columns (the spine has columns of the same names).
    pub entity: Vec<String>,
    /// The event-time column.
    pub timestamp: String,
    /// The created-time column, if any.
    pub created: Option<String>,
    /// How old a row may be at `T`; `None` = unlimited.
    pub ttl: Option<Duration>,
    /// The features to take, each with its name in the output.
    pub features: Vec<(String, String)>,
}

/// Joins `views` onto `spine` (whose time column is `time`) with Feast's
/// point-in-time semantics; returns the spine's columns, in its order, followed by
/// each view's features.
pub async fn point_in_time_join(
    ctx: &SessionContext,
    spine: SendableRecordBatchStream,
    time: &str,
    views: &[ViewInput],
) -> Result<SendableRecordBatchStream> {
    let mut stream = number_rows(spine);
    for view in views {
        stream = join_one(ctx, stream, time, view).await?;
    }
    in_spine_order(ctx, stream).await
}

/// A numbered spine's rows back in the spine's order, without the row number.
pub(crate) async fn in_spine_order(
    ctx: &SessionContext,
    stream: SendableRecordBatchStream,
) -> Result<SendableRecordBatchStream> {
    let df = ctx
        .read_table(one_shot(stream))?
        .sort(vec![ident(ROW).sort(true, true)])?;
    let keep: Vec<_> = df
        .schema()
        .fields()
        .iter()
        .filter(|f| f.name() != ROW)
        .map(|f| ident(f.name()))
        .collect();
    df.select(keep)?.execute_stream().await
}

/// The spine with a row number appended.
pub(crate) fn number_rows(spine: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let mut fields: Vec<Arc<Field>> = spine.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(ROW, DataType::UInt64, false)));
    let schema = Arc::new(Schema::new(fields));
    let out_schema = schema.clone();
    let mut next = 0u64;
    let stream = spine.map(move |batch| {
        let batch = batch?;
        let n = batch.num_rows() as u64;
        let numbers: ArrayRef = Arc::new(UInt64Array::from_iter_values(next..next + n));
        next += n;
        let mut columns = batch.columns().to_vec();
        columns.push(numbers);
        Ok(RecordBatch::try_new(out_schema.clone(), columns)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// A stream as a table that can be scanned once.
pub(crate) fn one_shot(stream: SendableRecordBatchStream) -> Arc<StreamingTable> {
    let schema = stream.schema();
    let part = Arc::new(OneShot {
        schema: schema.clone(),
        stream: Mutex::new(Some(stream)),
    });
    #[allow(clippy::expect_used)]
    Arc::new(
        StreamingTable::try_new(schema, vec![part]).expect("the partition has the table's schema"),
    )
}

struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShot")
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(s) => s,
            None => {
                let err = DataFusionError::Internal("a one-shot stream was read twice".into());
                Box::pin(RecordBatchStreamAdapter::new(
                    self.schema.clone(),
                    futures::stream::once(async move { Err(err) }),
                ))
            }
        }
    }
}

async fn join_one(
    ctx: &SessionContext,
    spine: SendableRecordBatchStream,
    time: &str,
    view: &ViewInput,
) -> Result<SendableRecordBatchStream> {
    let spine_schema = spine.schema();
    let view_schema = view.rows.schema().as_arrow().clone();
    // The spine's keys are compared in the view's key types.
    let mut key_types = vec![];
    for k in &view.entity {
        let t = view_schema.field_with_name(k)?.data_type().clone();
        if spine_schema.field_with_name(k).is_err() {
            return Err(DataFusionError::Plan(format!(
                "the spine has no column `{k}`, a key of feature view `{}`",
                view.view
            )));
        }
        key_types.push(t);
    }
    let mut spine_order: Vec<_> = view
        .entity
        .iter()
        .zip(&key_types)
        .map(|(k, t)| datafusion::prelude::cast(ident(k), t.clone()).sort(true, true))
        .collect();
    spine_order.push(ident(time).sort(true, true));
    let sorted_spine = ctx
        .read_table(one_shot(spine))?
        .sort(spine_order)?
        .execute_stream()
        .await?;

    let mut columns: Vec<_> = view.entity.iter().map(ident).collect();
    columns.push(ident(&view.timestamp));
    columns.extend(view.created.iter().map(ident));
    columns.extend(view.features.iter().map(|(f, _)| ident(f)));
    let mut order: Vec<_> = view
        .entity
        .iter()
        .map(|k| ident(k).sort(true, true))
        .collect();
    order.push(ident(&view.timestamp).sort(true, true));
    if let Some(c) = &view.created {
        order.push(ident(c).sort(true, true));
    }
    let sorted_rows = view
        .rows
        .clone()
        .select(columns)?
        .filter(ident(&view.timestamp).is_not_null())?
        .sort(order)?
        .execute_stream()
        .await?;

    let mut fields: Vec<Arc<Field>> = spine_schema.fields().iter().cloned().collect();
    for (f, out) in &view.features {
        let field = view_schema.field_with_name(f)?;
        fields.push(Arc::new(Field::new(out, field.data_type().clone(), true)));
    }
    let out_schema = Arc::new(Schema::new(fields));
    let converter = RowConverter::new(
        key_types
            .iter()
            .map(|t| SortField::new(t.clone()))
            .collect(),
    )?;
    let merge = Merge {
        converter,
        entity: view.entity.clone(),
        key_types,
        time: time.to_string(),
        timestamp: view.timestamp.clone(),
        ttl: view.ttl.map(|d| d.as_micros().min(i64::MAX as u128) as i64),
        n_features: view.features.len(),
        out_schema: out_schema.clone(),
        feature_types: view
            .features
            .iter()
            .map(|(f, _)| {
                view_schema
                    .field_with_name(f)
                    .map(|x| x.data_type().clone())
            })
            .collect::<std::result::Result<_, _>>()?,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    tokio::spawn(async move {
        if let Err(e) = merge.run(sorted_spine, sorted_rows, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    let stream = tokio_stream(rx);
    Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, stream)))
}

pub(crate) fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The key columns of `batch`, cast to `key_types`, in the row format (which
/// orders them as DataFusion's sort does), and whether each row's key has a null.
pub(crate) fn key_rows(
    converter: &RowConverter,
    entity: &[String],
    key_types: &[DataType],
    batch: &RecordBatch,
) -> Result<(Rows, Vec<bool>)> {
    let mut cols = Vec::with_capacity(entity.len());
    for (k, t) in entity.iter().zip(key_types) {
        let c = batch.column(batch.schema().index_of(k)?);
        cols.push(cast(c, t)?);
    }
    let nulls = (0..batch.num_rows())
        .map(|i| cols.iter().any(|c| c.is_null(i)))
        .collect();
    Ok((converter.convert_columns(&cols)?, nulls))
}

/// The merge of one view: spine and view rows, both sorted by keys then time.
struct Merge {
    converter: RowConverter,
    entity: Vec<String>,
    key_types: Vec<DataType>,
    time: String,
    timestamp: String,
    ttl: Option<i64>,
    n_features: usize,
    out_schema: SchemaRef,
    feature_types: Vec<DataType>,
}

/// A batch of view rows, prepared for the merge.
struct ViewBatch {
    keys: Rows,
    key_nulls: Vec<bool>,
    times: TimestampMicrosecondArray,
    features: Vec<ArrayRef>,
}

impl Merge {
    fn keys(&self, batch: &RecordBatch) -> Result<(Rows, Vec<bool>)> {
        key_rows(&self.converter, &self.entity, &self.key_types, batch)
    }

    fn view_batch(&self, batch: &RecordBatch) -> Result<ViewBatch> {
        let (keys, key_nulls) = self.keys(batch)?;
        let times = micros_array(batch.column(batch.schema().index_of(&self.timestamp)?))?;
        let first = batch.num_columns() - self.n_features;
        Ok(ViewBatch {
            keys,
            key_nulls,
            times,
            features: batch.columns()[first..].to_vec(),
        })
    }

    async fn run(
        self,
        mut spine: SendableRecordBatchStream,
        mut rows: SendableRecordBatchStream,
        tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        // View batches still referenced: index 0 is a one-row batch of nulls.
        let nulls: Vec<ArrayRef> = self
            .feature_types
            .iter()
            .map(|t| new_null_array(t, 1))
            .collect();
        let mut held: Vec<Vec<ArrayRef>> = vec![nulls];
        // The view batch being read and the position in it.
        let mut current: Option<(ViewBatch, usize)> = None;
        let mut exhausted = false;
        // The last view row at or before the spine's time, for the spine's key:
        // (its key, its time, index into `held`, row).
        let mut candidate: Option<(Vec<u8>, i64, usize, usize)> = None;
        let mut current_slot: Option<usize> = None;

        while let Some(batch) = spine.next().await {
            let batch = batch?;
            let (keys, key_nulls) = self.keys(&batch)?;
            let times = micros_array(batch.column(batch.schema().index_of(&self.time)?))?;
            let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch.num_rows());
            for (i, key_null) in key_nulls.iter().enumerate() {
                if *key_null || times.is_null(i) {
                    picks.push((0, 0));
                    continue;
                }
                let key = keys.row(i);
                let t = times.value(i);
                if candidate
                    .as_ref()
                    .is_some_and(|c| c.0.as_slice() != key.as_ref())
                {
                    candidate = None;
                }
                // Advance over view rows before (key, t).
                loop {
                    if current.as_ref().is_none_or(|(b, at)| *at >= b.times.len()) {
                        if exhausted {
                            break;
                        }
                        match rows.next().await {
                            Some(b) => {
                                let b = b?;
                                if b.num_rows() == 0 {
                                    continue;
                                }
                                let vb = self.view_batch(&b)?;
                                held.push(vb.features.clone());
                                current_slot = Some(held.len() - 1);
                                current = Some((vb, 0));
                            }
                            None => {
                                exhausted = true;
                                break;
                            }
                        }
                        continue;
                    }
                    let Some((b, at)) = current.as_mut() else {
                        break;
                    };
                    let row = *at;
                    if b.key_nulls[row] {
                        *at += 1;
                        continue;
                    }
                    let vk = b.keys.row(row);
                    let before = match vk.cmp(&key) {
                        std::cmp::Ordering::Less => true,
                        std::cmp::Ordering::Equal => b.times.value(row) <= t,
                        std::cmp::Ordering::Greater => false,
                    };
                    if !before {
                        break;
                    }
                    if vk == key {
                        let slot = current_slot.unwrap_or(0);
                        candidate = Some((vk.as_ref().to_vec(), b.times.value(row), slot, row));
                    }
                    *at += 1;
                }
                let pick = match &candidate {
                    Some((_, ct, slot, row))
                        if self.ttl.is_none_or(|ttl| *ct >= t.saturating_sub(ttl)) =>
                    {
                        (*slot, *row)
                    }
                    _ => (0, 0),
                };
                picks.push(pick);
            }
            let mut columns = batch.columns().to_vec();
            for f in 0..self.n_features {
                let arrays: Vec<&dyn Array> = held.iter().map(|h| h[f].as_ref()).collect();
                columns.push(interleave(&arrays, &picks)?);
            }
            let out = RecordBatch::try_new(self.out_schema.clone(), columns)?;
            if tx.send(Ok(out)).await.is_err() {
                return Ok(());
            }
            // Keep only what a later spine row can still pick: the candidate's batch
            // and the batch being read.
            let keep: Vec<usize> = {
                let mut k = vec![0];
                if let Some((_, _, slot, _)) = &candidate {
                    k.push(*slot);
                }
                if let Some(s) = current_slot {
                    k.push(s);
                }
                k.sort_unstable();
                k.dedup();
                k
            };
            let remap = |old: usize| keep.iter().position(|k| *k == old).unwrap_or(0);
            if let Some(c) = candidate.as_mut() {
                c.2 = remap(c.2);
            }
            current_slot = current_slot.map(remap);
            held = keep.iter().map(|k| held[*k].clone()).collect();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::TimeUnit;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::memory::MemoryStream;
    use datafusion::prelude::SessionConfig;
    use proptest::prelude::*;

    use super::*;

    /// A feature row: key, event time, created time, value.
    type FRow = (Option<i64>, i64, i64, f64);
    /// A spine row: key, time, label.
    type SRow = (Option<i64>, Option<i64>, i64);
    /// An output row: label, key, time, one feature per view.
    type OutRow = (i64, Option<i64>, Option<i64>, Vec<Option<f64>>);

    const SECOND: i64 = 1_000_000;

    fn ts_field(name: &str, nullable: bool) -> Field {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            nullable,
        )
    }

    fn view_batches(rows: &[FRow], chunk: usize) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            ts_field("ts", false),
            ts_field("created", false),
            Field::new("f", DataType::Float64, true),
        ]));
        let batches = rows
            .chunks(chunk.max(1))
            .map(|c| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter(c.iter().map(|r| r.0))),
                        Arc::new(TimestampMicrosecondArray::from_iter_values(
                            c.iter().map(|r| r.1 * SECOND),
                        )),
                        Arc::new(TimestampMicrosecondArray::from_iter_values(
                            c.iter().map(|r| r.2 * SECOND),
                        )),
                        Arc::new(Float64Array::from_iter_values(c.iter().map(|r| r.3))),
                    ],
                )
                .unwrap()
            })
            .collect();
        (schema, batches)
    }

    fn spine_batches(rows: &[SRow], chunk: usize) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::Int64, false),
            Field::new("k", DataType::Int64, true),
            ts_field("t", true),
        ]));
        let batches = rows
            .chunks(chunk.max(1))
            .map(|c| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(c.iter().map(|r| r.2))),
                        Arc::new(Int64Array::from_iter(c.iter().map(|r| r.0))),
                        Arc::new(TimestampMicrosecondArray::from_iter(
                            c.iter().map(|r| r.1.map(|t| t * SECOND)),
                        )),
                    ],
                )
                .unwrap()
            })
            .collect();
        (schema, batches)
    }

    /// Runs the join; returns per spine row (label, k, t, feature).
    fn join(spine: &[SRow], views: &[(Vec<FRow>, Option<i64>)], batch_size: usize) -> Vec<OutRow> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let ctx = SessionContext::new_with_config(
                SessionConfig::new()
                    .with_batch_size(batch_size)
                    .with_target_partitions(2),
            );
            let mut inputs = vec![];
            for (i, (rows, ttl)) in views.iter().enumerate() {
                let (schema, batches) = view_batches(rows, batch_size);
                // Two partitions, so the sort merges.
                let half = batches.len() / 2;
                let parts = vec![batches[..half].to_vec(), batches[half..].to_vec()];
                let table = MemTable::try_new(schema, parts).unwrap();
                inputs.push(ViewInput {
                    view: format!("v{i}"),
                    rows: ctx.read_table(Arc::new(table)).unwrap(),
                    entity: vec!["k".into()],
                    timestamp: "ts".into(),
                    created: Some("created".into()),
                    ttl: ttl.map(|t| Duration::from_secs(t as u64)),
                    features: vec![("f".into(), format!("f{i}"))],
                });
            }
            let (schema, batches) = spine_batches(spine, batch_size);
            let stream = MemoryStream::try_new(batches, schema, None).unwrap();
            let out = point_in_time_join(&ctx, Box::pin(stream), "t", &inputs)
                .await
                .unwrap();
            let batches: Vec<RecordBatch> = out.map(|b| b.unwrap()).collect().await;
            let mut rows = vec![];
            for b in batches {
                assert_eq!(b.num_columns(), 3 + views.len());
                let label = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                let k = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
                let t = b
                    .column(2)
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                for i in 0..b.num_rows() {
                    let feats = (0..views.len())
                        .map(|v| {
                            let f = b
                                .column(3 + v)
                                .as_any()
                                .downcast_ref::<Float64Array>()
                                .unwrap();
                            (!f.is_null(i)).then(|| f.value(i))
                        })
                        .collect();
                    rows.push((
                        label.value(i),
                        (!k.is_null(i)).then(|| k.value(i)),
                        (!t.is_null(i)).then(|| t.value(i) / SECOND),
                        feats,
                    ));
                }
            }
            rows
        })
    }

    /// Feast's definition, row by row, with no cleverness.
    fn naive(spine: &[SRow], views: &[(Vec<FRow>, Option<i64>)]) -> Vec<OutRow> {
        spine
            .iter()
            .map(|&(k, t, label)| {
                let feats = views
                    .iter()
                    .map(|(rows, ttl)| {
                        let (Some(k), Some(t)) = (k, t) else {
                            return None;
                        };
                        rows.iter()
                            .filter(|r| r.0 == Some(k) && r.1 <= t)
                            .filter(|r| ttl.is_none_or(|ttl| r.1 >= t - ttl))
                            .max_by_key(|r| (r.1, r.2))
                            .map(|r| r.3)
                    })
                    .collect();
                (label, k, t, feats)
            })
            .collect()
    }

    fn feature_rows() -> impl Strategy<Value = Vec<FRow>> {
        prop::collection::vec(
            (prop::option::weighted(0.9, 0i64..6), 0i64..20, 0i64..3),
            0..60,
        )
        .prop_map(|mut rows| {
            // One row per (key, event, created): a tie on all three has no winner.
            rows.sort();
            rows.dedup();
            // Out of order, with values that identify the row.
            let n = rows.len();
            let mut out: Vec<FRow> = rows
                .into_iter()
                .enumerate()
                .map(|(i, (k, t, c))| (k, t, c, i as f64 + 0.5))
                .collect();
            out.reverse();
            if n > 2 {
                out.swap(0, n / 2);
            }
            out
        })
    }

    fn spine_rows() -> impl Strategy<Value = Vec<SRow>> {
        prop::collection::vec(
            (
                prop::option::weighted(0.9, 0i64..7),
                prop::option::weighted(0.95, -2i64..23),
            ),
            0..50,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (k, t))| (k, t, i as i64))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        #[test]
        fn matches_the_naive_reference(
            spine in spine_rows(),
            a in feature_rows(),
            b in feature_rows(),
            ttl_a in prop::option::of(0i64..8),
            batch in 1usize..8,
        ) {
            let views = vec![(a, ttl_a), (b, None)];
            prop_assert_eq!(join(&spine, &views, batch), naive(&spine, &views));
        }
    }

    /// Every rule, with the expected rows written out by hand.
    #[test]
    fn fixed_cases() {
        let view: Vec<FRow> = vec![
            // key 1: events at 10 (two created times), 5 and 20 (the future for T=15).
            (Some(1), 10, 1, 1.0),
            (Some(1), 10, 2, 2.0),
            (Some(1), 5, 0, 3.0),
            (Some(1), 20, 0, 4.0),
            // key 2: one event at 3.
            (Some(2), 3, 0, 5.0),
            // a row without a key matches nothing.
            (None, 1, 0, 6.0),
        ];
        let spine: Vec<SRow> = vec![
            (Some(1), Some(15), 0), // greatest event <= 15 is 10; tie -> created 2 -> 2.0
            (Some(1), Some(10), 1), // event exactly at T counts -> 2.0
            (Some(1), Some(9), 2),  // only 5 is <= 9 -> 3.0
            (Some(1), Some(4), 3),  // nothing at or before 4 -> null
            (Some(2), Some(13), 4), // ttl 10: 3 >= 13 - 10 -> at the edge, kept -> 5.0
            (Some(2), Some(14), 5), // 3 < 14 - 10 -> too old -> null
            (Some(3), Some(30), 6), // entity absent from the view -> null
            (None, Some(30), 7),    // null key -> null
            (Some(1), None, 8),     // null time -> null
            (Some(1), Some(25), 9), // 20 -> 4.0 (spine rows keep their order)
        ];
        let got = join(&spine, &[(view, Some(10))], 2);
        let expected: Vec<Option<f64>> = vec![
            Some(2.0),
            Some(2.0),
            Some(3.0),
            None,
            Some(5.0),
            None,
            None,
            None,
            None,
            Some(4.0),
        ];
        assert_eq!(got.len(), spine.len());
        for (i, row) in got.iter().enumerate() {
            assert_eq!(row.0, i as i64, "spine order");
            assert_eq!(row.3, vec![expected[i]], "spine row {i}");
        }
        // ttl 0 (unlimited) keeps the old row for key 2.
        let view2: Vec<FRow> = vec![(Some(2), 3, 0, 5.0)];
        let got = join(&[(Some(2), Some(1000), 0)], &[(view2, None)], 4);
        assert_eq!(got[0].3, vec![Some(5.0)]);
    }

    /// Rows from after a spine row's time never change its features.
    #[test]
    fn future_rows_do_not_change_the_training_set() {
        let past: Vec<FRow> = (0..30).map(|i| (Some(i % 4), i, 0, i as f64)).collect();
        let spine: Vec<SRow> = (0..20).map(|i| (Some(i % 5), Some(29), i)).collect();
        let before = join(&spine, &[(past.clone(), None)], 3);
        let mut with_future = past;
        for i in 0..40i64 {
            let at = (i as usize * 7) % with_future.len();
            with_future.insert(at, (Some(i % 5), 30 + i, 0, -1.0));
        }
        let after = join(&spine, &[(with_future, None)], 3);
        assert_eq!(before, after);
    }
}
