//! The point-in-time join of one view: spine and view rows sorted by keys and
//! time, then merged in one pass keeping, per spine key, the last view row at
//! or before the spine's time (within the ttl).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, RecordBatch, TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionContext, ident};
use futures::StreamExt;

use super::ViewInput;
use super::stream::{one_shot, tokio_stream};
use crate::micros_array;

pub(super) async fn join_one(
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
