//! The validator as a DataFusion table: each partition of the input plan streams
//! through its [`PartitionValidator`], so validation runs inside whatever consumes
//! the table (the Delta writer) at the speed of the scan, with no extra pass.
//!
//! When the last partition ends, `finish` receives the report and the rejected
//! rows; an error it returns becomes the stream's last item, so the consumer
//! fails before it commits.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use futures::StreamExt;
use futures::future::BoxFuture;

use crate::validator::{Finished, PartitionValidator, Validator};

/// What to do with the outcome, once every partition is validated.
pub type Finish = Arc<dyn Fn(Finished) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A table whose rows are `input`'s rows that keep the contract, converted to the
/// published schema. Each partition can be read once.
pub fn validated_table(
    validator: Arc<Validator>,
    input: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    finish: Finish,
) -> Result<Arc<dyn TableProvider>> {
    let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() == 0 {
        Arc::new(EmptyExec::new(input.schema()))
    } else {
        input
    };
    let n = input.output_partitioning().partition_count();
    let schema = validator.output_schema();
    let partitions = validator
        .partitions(n)
        .into_iter()
        .enumerate()
        .map(|(index, pv)| {
            Arc::new(ValidatedPartition {
                schema: schema.clone(),
                input: input.clone(),
                index,
                task: task.clone(),
                validator: Mutex::new(Some(pv)),
                finish: FinishHook(finish.clone()),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    Ok(Arc::new(StreamingTable::try_new(schema, partitions)?))
}

struct FinishHook(Finish);

impl std::fmt::Debug for FinishHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FinishHook")
    }
}

#[derive(Debug)]
struct ValidatedPartition {
    schema: SchemaRef,
    input: Arc<dyn ExecutionPlan>,
    index: usize,
    task: Arc<TaskContext>,
    validator: Mutex<Option<PartitionValidator>>,
    finish: FinishHook,
}

enum State {
    Running(SendableRecordBatchStream, Box<PartitionValidator>, Finish),
    Done,
}

impl PartitionStream for ValidatedPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let pv = self
            .validator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // The input was planned in sluice's session; it runs in that session's context.
        let started = pv
            .ok_or_else(|| DataFusionError::Internal("a validated partition was read twice".into()))
            .and_then(|pv| Ok((self.input.execute(self.index, self.task.clone())?, pv)));
        let state = match started {
            Ok((input, pv)) => State::Running(input, Box::new(pv), self.finish.0.clone()),
            Err(e) => {
                let once = futures::stream::once(async move { Err(e) });
                return Box::pin(RecordBatchStreamAdapter::new(schema, once));
            }
        };
        let stream = futures::stream::unfold(state, |state| async move {
            let State::Running(mut input, mut pv, finish) = state else {
                return None;
            };
            loop {
                match input.next().await {
                    Some(Ok(batch)) => match pv.process(&batch) {
                        Ok(out) if out.num_rows() == 0 => continue,
                        Ok(out) => return Some((Ok(out), State::Running(input, pv, finish))),
                        Err(e) => return Some((Err(e), State::Done)),
                    },
                    Some(Err(e)) => return Some((Err(e), State::Done)),
                    None => {
                        return match (*pv).finish() {
                            Err(e) => {
                                Some((Err(DataFusionError::External(Box::new(e))), State::Done))
                            }
                            Ok(None) => None,
                            Ok(Some(finished)) => match finish(finished).await {
                                Ok(()) => None,
                                Err(e) => Some((Err(e), State::Done)),
                            },
                        };
                    }
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}
