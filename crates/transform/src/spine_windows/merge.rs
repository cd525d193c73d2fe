//! The merge of one input: spine rows and events, both sorted by keys then time,
//! in one pass. Per spine row, the entity's events up to its time are taken from
//! the stream into each feature's pending queue, enter its window when inside
//! (an event at `T` waits there for a window closed on the left), and leave it
//! when older than the window's start.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, Rows};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use super::compile::{Kind, Spec};
use super::state::{Item, Moments, State};
use crate::micros_array;
use crate::training::key_rows;

/// How the events of one input are read: their keys, times and what each
/// feature takes of them. Shared by the merge and the tile builder.
pub(super) struct EventReader {
    pub(super) converter: RowConverter,
    pub(super) entity: Vec<String>,
    pub(super) key_types: Vec<DataType>,
    /// Index of the event time among the events' columns.
    pub(super) time_at: usize,
    pub(super) specs: Vec<Spec>,
}

/// The merge of one input: spine rows and events, both sorted by keys then time.
pub(super) struct Merge {
    pub(super) events: EventReader,
    pub(super) time: String,
    pub(super) out_schema: SchemaRef,
}

/// What one feature reads of a batch of events.
enum Values {
    /// Every event counts.
    Events,
    /// Events with a value count.
    Present(ArrayRef),
    Ints(Int64Array),
    Floats(Float64Array),
    /// Values kept as they are; `nulls`: null values count too.
    Encoded {
        array: ArrayRef,
        rows: Rows,
        nulls: bool,
    },
}

pub(super) struct SpecInput {
    filter: Option<BooleanArray>,
    values: Values,
}

impl SpecInput {
    /// What event `r` brings to the feature, if it counts.
    pub(super) fn item(&self, r: usize) -> Option<Item> {
        if let Some(f) = &self.filter
            && !(f.is_valid(r) && f.value(r))
        {
            return None;
        }
        match &self.values {
            Values::Events => Some(Item::Unit),
            Values::Present(a) => a.is_valid(r).then_some(Item::Unit),
            Values::Ints(a) => a.is_valid(r).then(|| Item::Int(a.value(r))),
            Values::Floats(a) => a.is_valid(r).then(|| Item::Float(a.value(r))),
            Values::Encoded { array, rows, nulls } => {
                (*nulls || array.is_valid(r)).then(|| Item::Row(rows.row(r).owned()))
            }
        }
    }
}

/// A batch of events, prepared for the merge.
pub(super) struct EventBatch {
    pub(super) keys: Rows,
    pub(super) times: TimestampMicrosecondArray,
    pub(super) inputs: Vec<SpecInput>,
}

/// A feature's window over the current entity: events taken from the stream but
/// not yet inside (at `T` itself, for a window closed on the left), and the state.
struct Slide {
    pending: VecDeque<(i64, Item)>,
    state: State,
}

impl Slide {
    fn new(kind: Kind) -> Self {
        let state = match kind {
            Kind::Count => State::Count {
                times: VecDeque::new(),
                total: 0,
            },
            Kind::Distinct => State::Distinct {
                items: VecDeque::new(),
                counts: Default::default(),
            },
            Kind::IntSum { .. } => State::IntSum {
                items: VecDeque::new(),
                sum: 0,
                n: 0,
            },
            Kind::FloatSum { .. } | Kind::Mean | Kind::Stddev => State::Floats {
                front: vec![],
                back: vec![],
                back_total: Moments::default(),
            },
            Kind::Extreme { max } => State::Extreme {
                max,
                items: VecDeque::new(),
            },
            Kind::Last { .. } => State::Last(None),
        };
        Slide {
            pending: VecDeque::new(),
            state,
        }
    }

    /// Moves the window to end at `t`.
    fn advance(&mut self, spec: &Spec, t: i64) {
        let windowed = spec.window.is_some();
        while let Some((e, _)) = self.pending.front() {
            let inside = if spec.left { *e < t } else { *e <= t };
            if !inside {
                break;
            }
            if let Some((e, item)) = self.pending.pop_front() {
                self.state.push(windowed, e, item);
            }
        }
        if let Some(w) = spec.window {
            self.state.evict(t.saturating_sub(w));
        }
    }
}

/// A feature's output column for one spine batch.
enum Out {
    Ints(Vec<Option<i64>>),
    Floats(Vec<Option<f64>>),
    Rows(Vec<Option<OwnedRow>>),
}

impl Out {
    fn new(kind: Kind, n: usize) -> Self {
        match kind {
            Kind::Count | Kind::Distinct | Kind::IntSum { .. } => Out::Ints(Vec::with_capacity(n)),
            Kind::FloatSum { .. } | Kind::Mean | Kind::Stddev => Out::Floats(Vec::with_capacity(n)),
            Kind::Extreme { .. } | Kind::Last { .. } => Out::Rows(Vec::with_capacity(n)),
        }
    }

    fn push_null(&mut self) {
        match self {
            Out::Ints(v) => v.push(None),
            Out::Floats(v) => v.push(None),
            Out::Rows(v) => v.push(None),
        }
    }

    /// Appends the feature's value over `state`'s window (`None`: no event).
    fn push(&mut self, kind: Kind, state: Option<&State>) {
        let moments = state.map_or(Moments::default(), State::moments);
        match (self, kind) {
            (Out::Ints(v), Kind::Count | Kind::Distinct) => {
                v.push(Some(state.map_or(0, State::count)));
            }
            (Out::Ints(v), Kind::IntSum { zero }) => {
                v.push(state.and_then(State::int_sum).or(zero.then_some(0)));
            }
            (Out::Floats(v), Kind::FloatSum { zero }) => v.push(if moments.n > 0 {
                Some(moments.sum)
            } else {
                zero.then_some(0.0)
            }),
            (Out::Floats(v), Kind::Mean) => {
                v.push((moments.n > 0).then(|| moments.sum / moments.n as f64));
            }
            (Out::Floats(v), Kind::Stddev) => v.push(moments.stddev()),
            (Out::Rows(v), _) => v.push(state.and_then(State::row).cloned()),
            (out, _) => out.push_null(),
        }
    }

    fn finish(self, spec: &Spec) -> Result<ArrayRef> {
        Ok(match self {
            Out::Ints(v) => Arc::new(Int64Array::from(v)),
            Out::Floats(v) => Arc::new(Float64Array::from(v)),
            Out::Rows(v) => {
                let Some((converter, null)) = &spec.values else {
                    return Err(DataFusionError::Internal(
                        "a kept value without its converter".into(),
                    ));
                };
                let rows = v.iter().map(|r| r.as_ref().unwrap_or(null).row());
                converter.convert_rows(rows)?.remove(0)
            }
        })
    }
}

impl EventReader {
    /// A batch of the events, prepared: key rows, times in microseconds, and
    /// per feature what it reads.
    pub(super) fn event_batch(&self, batch: &RecordBatch) -> Result<EventBatch> {
        let (keys, _) = key_rows(&self.converter, &self.entity, &self.key_types, batch)?;
        let times = micros_array(batch.column(self.time_at))?;
        let mut inputs = Vec::with_capacity(self.specs.len());
        for spec in &self.specs {
            let filter = spec.filter.map(|i| batch.column(i).as_boolean().clone());
            let column = spec.column.map(|i| batch.column(i).clone());
            let values = match (spec.kind, column) {
                (_, None) => Values::Events,
                (Kind::Count, Some(a)) => Values::Present(a),
                (Kind::IntSum { .. }, Some(a)) => Values::Ints(
                    cast(&a, &DataType::Int64)?
                        .as_primitive::<Int64Type>()
                        .clone(),
                ),
                (Kind::FloatSum { .. } | Kind::Mean | Kind::Stddev, Some(a)) => Values::Floats(
                    cast(&a, &DataType::Float64)?
                        .as_primitive::<Float64Type>()
                        .clone(),
                ),
                (Kind::Distinct | Kind::Extreme { .. } | Kind::Last { .. }, Some(array)) => {
                    let Some((converter, _)) = &spec.values else {
                        return Err(DataFusionError::Internal(
                            "a kept value without its converter".into(),
                        ));
                    };
                    Values::Encoded {
                        rows: converter.convert_columns(std::slice::from_ref(&array))?,
                        array,
                        nulls: spec.kind == Kind::Last { nulls: true },
                    }
                }
            };
            inputs.push(SpecInput { filter, values });
        }
        Ok(EventBatch {
            keys,
            times,
            inputs,
        })
    }
}

impl Merge {
    pub(super) async fn run(
        self,
        mut spine: SendableRecordBatchStream,
        mut events: SendableRecordBatchStream,
        tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        // The events batch being read and the position in it.
        let mut current: Option<(EventBatch, usize)> = None;
        let mut exhausted = false;
        // The entity whose windows `slides` hold.
        let mut entity: Option<OwnedRow> = None;
        let mut slides: Vec<Slide> = self
            .events
            .specs
            .iter()
            .map(|s| Slide::new(s.kind))
            .collect();

        while let Some(batch) = spine.next().await {
            let batch = batch?;
            let (keys, key_nulls) = key_rows(
                &self.events.converter,
                &self.events.entity,
                &self.events.key_types,
                &batch,
            )?;
            let times = micros_array(batch.column(batch.schema().index_of(&self.time)?))?;
            let mut outs: Vec<Out> = self
                .events
                .specs
                .iter()
                .map(|s| Out::new(s.kind, batch.num_rows()))
                .collect();
            for (i, key_null) in key_nulls.iter().enumerate() {
                if times.is_null(i) {
                    outs.iter_mut().for_each(Out::push_null);
                    continue;
                }
                if *key_null {
                    for (out, spec) in outs.iter_mut().zip(&self.events.specs) {
                        out.push(spec.kind, None);
                    }
                    continue;
                }
                let key = keys.row(i);
                let t = times.value(i);
                if entity.as_ref().is_none_or(|e| e.row() != key) {
                    slides = self
                        .events
                        .specs
                        .iter()
                        .map(|s| Slide::new(s.kind))
                        .collect();
                    entity = Some(key.owned());
                }
                // Take the entity's events up to `t`, skipping other entities'.
                loop {
                    if current.as_ref().is_none_or(|(b, at)| *at >= b.times.len()) {
                        if exhausted {
                            break;
                        }
                        match events.next().await {
                            Some(b) => {
                                let b = b?;
                                if b.num_rows() > 0 {
                                    current = Some((self.events.event_batch(&b)?, 0));
                                }
                            }
                            None => exhausted = true,
                        }
                        continue;
                    }
                    let Some((b, at)) = current.as_mut() else {
                        break;
                    };
                    let r = *at;
                    match b.keys.row(r).cmp(&key) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            let e = b.times.value(r);
                            if e > t {
                                break;
                            }
                            for (slide, input) in slides.iter_mut().zip(&b.inputs) {
                                if let Some(item) = input.item(r) {
                                    slide.pending.push_back((e, item));
                                }
                            }
                        }
                        std::cmp::Ordering::Greater => break,
                    }
                    *at += 1;
                }
                for ((slide, spec), out) in slides.iter_mut().zip(&self.events.specs).zip(&mut outs)
                {
                    slide.advance(spec, t);
                    out.push(spec.kind, Some(&slide.state));
                }
            }
            let mut columns = batch.columns().to_vec();
            for (out, spec) in outs.into_iter().zip(&self.events.specs) {
                columns.push(out.finish(spec)?);
            }
            let out = RecordBatch::try_new(self.out_schema.clone(), columns)?;
            if tx.send(Ok(out)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}
