//! A declared window feature checked against the events' schema: which
//! columns it reads, how it aggregates, and the type it returns.

use std::time::Duration;

use datafusion::arrow::array::new_null_array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::error::{DataFusionError, Result};

use super::{Closed, EventWindows, WindowAgg, WindowFeature};

/// How a feature reads its events and what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum Kind {
    Count,
    Distinct,
    IntSum { zero: bool },
    FloatSum { zero: bool },
    Mean,
    Stddev,
    Extreme { max: bool },
    Last { nulls: bool },
}

/// A feature compiled against the events' schema.
pub(super) struct Spec {
    pub(super) kind: Kind,
    /// Index of the value column among the columns the merge reads.
    pub(super) column: Option<usize>,
    /// Index of the filter column.
    pub(super) filter: Option<usize>,
    /// The window in microseconds, cut to the ttl.
    pub(super) window: Option<i64>,
    pub(super) left: bool,
    /// For values kept as they are: their row converter and an encoded null.
    pub(super) values: Option<(RowConverter, OwnedRow)>,
}

fn micros_of(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

fn is_integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// Compiles `f` against `schema`; `index` gives a column's position among the
/// columns the merge reads (adding it). Returns the spec and its output field.
pub(super) fn compile(
    input: &EventWindows,
    f: &WindowFeature,
    schema: &Schema,
    index: &mut dyn FnMut(&str) -> usize,
) -> Result<(Spec, Field)> {
    let fail = |m: String| {
        DataFusionError::Plan(format!("feature `{}` over `{}`: {m}", f.name, input.name))
    };
    let column_type = match &f.column {
        Some(c) => Some(
            schema
                .field_with_name(c)
                .map_err(|_| fail(format!("the events have no column `{c}`")))?
                .data_type()
                .clone(),
        ),
        None if f.agg == WindowAgg::Count => None,
        None => return Err(fail("this aggregate needs a column".into())),
    };
    let filter = match &f.filter {
        Some(c) => {
            let t = schema
                .field_with_name(c)
                .map_err(|_| fail(format!("the events have no filter column `{c}`")))?
                .data_type();
            if t != &DataType::Boolean {
                return Err(fail(format!(
                    "the filter column `{c}` is {t}, not a boolean"
                )));
            }
            Some(index(c))
        }
        None => None,
    };
    let t = column_type.clone().unwrap_or(DataType::Int64);
    let numeric = |kind: Kind| {
        if t.is_numeric() {
            Ok(kind)
        } else {
            Err(fail(format!("the column is {t}, not a number")))
        }
    };
    let kind = match f.agg {
        WindowAgg::Count => Kind::Count,
        WindowAgg::CountDistinct => Kind::Distinct,
        WindowAgg::Sum | WindowAgg::ZeroFilledSum => {
            let zero = f.agg == WindowAgg::ZeroFilledSum;
            if is_integer(&t) {
                Kind::IntSum { zero }
            } else {
                numeric(Kind::FloatSum { zero })?
            }
        }
        WindowAgg::Mean => numeric(Kind::Mean)?,
        WindowAgg::Stddev => numeric(Kind::Stddev)?,
        WindowAgg::Min => Kind::Extreme { max: false },
        WindowAgg::Max => Kind::Extreme { max: true },
        WindowAgg::Last => Kind::Last { nulls: false },
        WindowAgg::LastWithNulls => Kind::Last { nulls: true },
    };
    let values = match kind {
        Kind::Distinct | Kind::Extreme { .. } | Kind::Last { .. } => {
            let converter = RowConverter::new(vec![SortField::new(t.clone())])
                .map_err(|e| fail(format!("values of type {t} cannot be compared: {e}")))?;
            let null = converter.convert_columns(&[new_null_array(&t, 1)])?;
            let null = null.row(0).owned();
            Some((converter, null))
        }
        _ => None,
    };
    let out_type = match (kind, &values) {
        (Kind::Count | Kind::Distinct | Kind::IntSum { .. }, _) => DataType::Int64,
        (Kind::FloatSum { .. } | Kind::Mean | Kind::Stddev, _) => DataType::Float64,
        // What the row format gives back: dictionaries come back as their values.
        (_, Some((converter, null))) => {
            converter.convert_rows([null.row()])?[0].data_type().clone()
        }
        (_, None) => t.clone(),
    };
    let window = match (f.window.map(micros_of), input.ttl.map(micros_of)) {
        (Some(w), Some(ttl)) => Some(w.min(ttl)),
        (w, ttl) => w.or(ttl),
    };
    let spec = Spec {
        kind,
        column: f.column.as_deref().map(&mut *index),
        filter,
        window,
        left: f.closed == Closed::Left,
        values,
    };
    Ok((spec, Field::new(&f.name, out_type, true)))
}
