//! Windowed aggregates as of each spine row's own time, streamed.
//!
//! For each spine row (entity keys, a time `T`) and each declared feature, the
//! aggregate over the entity's events in `[T - w, T]` (`[T - w, T)` when the
//! window is closed on the left), or over every event at or before `T` (before
//! `T`) without a window. A feature's filter is a boolean column of the events
//! (null counts as false), so the caller compiles SQL conditions — and pivot
//! categories — into columns before calling. A ttl cuts every window to at most
//! the ttl: no event older than `T - ttl` is read.
//!
//! Results over a window without events are what the declared view's SQL gives
//! for an empty window: counts and distinct counts are 0, a zero-filled sum (a
//! pivot's) is 0, everything else is null. A spine row with a null key matches no
//! event (so it gets those same values); a spine row with a null time has no
//! window, and all its features are null. Events with a null key or time are
//! ignored. Ties at the same time go to the greatest created time for `last`.
//!
//! How: like [`crate::point_in_time_join`], the spine is numbered, spine and
//! events are sorted by keys and time (DataFusion's sort, spilling under its
//! memory limit), and merged in one pass: per spine row the entity's events up to
//! `T` enter each feature's window state and those before `T - w` leave it
//! (`state.rs`). Memory holds one entity's windows, not its history: an "all
//! time" feature keeps only its running result (for distinct counts, the
//! distinct values). A final sort by row number restores the spine's order.

mod compile;
mod merge;
mod state;
#[cfg(test)]
mod tests;
pub mod tiles;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, Expr, SessionContext, ident};

use crate::training::{in_spine_order, number_rows, one_shot, tokio_stream};
use compile::compile;
use merge::{EventReader, Merge};

/// Which end of a window is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Closed {
    /// `[T - w, T]`: an event at the spine row's time counts.
    #[default]
    Right,
    /// `[T - w, T)`: only events strictly before the spine row's time count.
    Left,
}

/// An aggregate over the events in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAgg {
    /// The sum of the values: Int64 for integer columns (wrapping, as DataFusion's
    /// `sum`), Float64 otherwise; null over no value.
    Sum,
    /// [`WindowAgg::Sum`], but 0 over no value (a pivot's sum column).
    ZeroFilledSum,
    /// The arithmetic mean, Float64.
    Mean,
    /// The smallest value, in the column's type (Arrow's row order: NaN above
    /// every number).
    Min,
    /// The largest value, in the column's type.
    Max,
    /// The number of non-null values, or of events without a column; Int64.
    Count,
    /// The number of distinct non-null values; Int64.
    CountDistinct,
    /// The sample standard deviation, Float64; null below two values.
    Stddev,
    /// The newest event's value, nulls skipped.
    Last,
    /// The newest event's value, even if null.
    LastWithNulls,
}

/// One feature computed over a window of events.
#[derive(Debug, Clone)]
pub struct WindowFeature {
    /// The output column's name.
    pub name: String,
    /// The aggregate.
    pub agg: WindowAgg,
    /// The events' column aggregated; only `Count` may go without.
    pub column: Option<String>,
    /// The window's length; `None` = all time.
    pub window: Option<Duration>,
    /// Which end of the window is open.
    pub closed: Closed,
    /// A boolean column of the events: only events where it is true count.
    pub filter: Option<String>,
}

impl WindowFeature {
    /// `agg` of `column` over all time, closed on the right, unfiltered.
    pub fn new(name: &str, agg: WindowAgg, column: Option<&str>) -> Self {
        WindowFeature {
            name: name.to_string(),
            agg,
            column: column.map(str::to_string),
            window: None,
            closed: Closed::Right,
            filter: None,
        }
    }

    /// The same feature over a window of length `w`.
    pub fn over(mut self, w: Duration) -> Self {
        self.window = Some(w);
        self
    }

    /// The same feature with its window closed on `closed`'s side.
    pub fn closed(mut self, closed: Closed) -> Self {
        self.closed = closed;
        self
    }

    /// The same feature over the events where boolean column `column` is true.
    pub fn filtered(mut self, column: &str) -> Self {
        self.filter = Some(column.to_string());
        self
    }
}

/// Events, and the features to compute over them for each spine row.
#[derive(Debug, Clone)]
pub struct EventWindows {
    /// What the events are (for messages): a source or view name.
    pub name: String,
    /// The events: keys, event time, created time, values and filter columns.
    pub events: DataFrame,
    /// The entity's key columns (the spine has columns of the same names).
    pub entity: Vec<String>,
    /// The event-time column (a timestamp or a date).
    pub timestamp: String,
    /// The created-time column, if any: breaks ties at one event time for `last`.
    pub created: Option<String>,
    /// How old an event may be at `T`; `None` = unlimited.
    pub ttl: Option<Duration>,
    /// The features, in output order.
    pub features: Vec<WindowFeature>,
}

/// Computes `inputs`' features as of each row of `spine` (whose time column is
/// `time`); returns the spine's columns, in its order, followed by each input's
/// features.
pub async fn spine_windows(
    ctx: &SessionContext,
    spine: SendableRecordBatchStream,
    time: &str,
    inputs: &[EventWindows],
) -> Result<SendableRecordBatchStream> {
    let mut stream = number_rows(spine);
    for input in inputs {
        stream = windows_one(ctx, stream, time, input).await?;
    }
    in_spine_order(ctx, stream).await
}

async fn windows_one(
    ctx: &SessionContext,
    spine: SendableRecordBatchStream,
    time: &str,
    input: &EventWindows,
) -> Result<SendableRecordBatchStream> {
    let spine_schema = spine.schema();
    spine_schema.index_of(time)?;
    for k in &input.entity {
        if spine_schema.field_with_name(k).is_err() {
            return Err(DataFusionError::Plan(format!(
                "the spine has no column `{k}`, a key of `{}`",
                input.name
            )));
        }
    }
    let (events, features, sorted_events) = sorted_events(input).await?;
    let mut fields: Vec<Arc<Field>> = spine_schema.fields().iter().cloned().collect();
    for field in features {
        if fields.iter().any(|x| x.name() == field.name()) {
            return Err(DataFusionError::Plan(format!(
                "feature `{}` over `{}`: the output already has a column of that name",
                field.name(),
                input.name
            )));
        }
        fields.push(Arc::new(field));
    }
    let out_schema = Arc::new(Schema::new(fields));

    let mut spine_order: Vec<_> = input
        .entity
        .iter()
        .zip(&events.key_types)
        .map(|(k, t)| datafusion::prelude::cast(ident(k), t.clone()).sort(true, true))
        .collect();
    spine_order.push(ident(time).sort(true, true));
    let sorted_spine = ctx
        .read_table(one_shot(spine))?
        .sort(spine_order)?
        .execute_stream()
        .await?;

    let merge = Merge {
        events,
        time: time.to_string(),
        out_schema: out_schema.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
    tokio::spawn(async move {
        if let Err(e) = merge.run(sorted_spine, sorted_events, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        out_schema,
        tokio_stream(rx),
    )))
}

/// `input`'s features compiled against its events, each feature's output
/// field, and the events with a key and a time, sorted by keys, time and created
/// time (DataFusion's sort, spilling under its memory limit).
async fn sorted_events(
    input: &EventWindows,
) -> Result<(EventReader, Vec<Field>, SendableRecordBatchStream)> {
    let events_schema = input.events.schema().as_arrow().clone();
    let mut key_types = vec![];
    for k in &input.entity {
        key_types.push(events_schema.field_with_name(k)?.data_type().clone());
    }
    // The columns read, each once: keys, time, then the features'.
    let mut columns: Vec<String> = input.entity.clone();
    columns.push(input.timestamp.clone());
    let time_at = columns.len() - 1;
    let mut specs = vec![];
    let mut fields = vec![];
    for f in &input.features {
        if fields.iter().any(|x: &Field| x.name() == &f.name) {
            return Err(DataFusionError::Plan(format!(
                "feature `{}` over `{}`: the output already has a column of that name",
                f.name, input.name
            )));
        }
        let mut index = |c: &str| match columns.iter().position(|x| x == c) {
            Some(i) => i,
            None => {
                columns.push(c.to_string());
                columns.len() - 1
            }
        };
        let (spec, field) = compile(input, f, &events_schema, &mut index)?;
        specs.push(spec);
        fields.push(field);
    }
    let mut order: Vec<_> = input
        .entity
        .iter()
        .map(|k| ident(k).sort(true, true))
        .collect();
    order.push(ident(&input.timestamp).sort(true, true));
    if let Some(c) = &input.created {
        order.push(ident(c).sort(true, true));
    }
    let present: Expr = input
        .entity
        .iter()
        .chain([&input.timestamp])
        .map(|c| ident(c).is_not_null())
        .reduce(Expr::and)
        .unwrap_or(datafusion::prelude::lit(true));
    let sorted = input
        .events
        .clone()
        .filter(present)?
        .sort(order)?
        .select(columns.iter().map(ident).collect::<Vec<_>>())?
        .execute_stream()
        .await?;
    let reader = EventReader {
        converter: RowConverter::new(
            key_types
                .iter()
                .map(|t| SortField::new(t.clone()))
                .collect(),
        )?,
        entity: input.entity.clone(),
        key_types,
        time_at,
        specs,
    };
    Ok((reader, fields, sorted))
}
