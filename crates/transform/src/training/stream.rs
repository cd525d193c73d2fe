//! The stream plumbing of the point-in-time join, shared with
//! `spine_windows`: numbering the spine's rows and putting them back in order,
//! a stream as a table scanned once, and a channel as a stream.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionContext, ident};
use futures::StreamExt;

use super::ROW;

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

pub(crate) fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
