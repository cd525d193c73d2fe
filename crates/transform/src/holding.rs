//! `windows_holding(time, start, ...)`: how many of the `start`s the `time` is
//! at or after, as a `TINYINT`; null where `time` is null.
//!
//! A view's first step groups its rows by how many of its windows hold each
//! event (`partials.rs` in sluice-project). Written as a sum of
//! `CAST(time >= start AS TINYINT)`, that took a comparison, a boolean array
//! and a cast per window, and arrow's cast from booleans reads them one value
//! at a time: about an eighth of the first step's CPU at a million events.
//! Here it is one pass over the times' integers. The starts are constants of
//! the time's own type (a timestamp of any unit and zone, or a date).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int8Array};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Int8Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function, to register in every session that plans views.
pub(crate) fn windows_holding() -> ScalarUDF {
    ScalarUDF::new_from_impl(WindowsHolding {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowsHolding {
    signature: Signature,
}

fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    )
}

/// A start's value as the integer its type stores.
fn stored(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(v, _)
        | ScalarValue::TimestampMillisecond(v, _)
        | ScalarValue::TimestampMicrosecond(v, _)
        | ScalarValue::TimestampNanosecond(v, _)
        | ScalarValue::Date64(v) => *v,
        ScalarValue::Date32(v) => v.map(i64::from),
        _ => None,
    }
}

/// For each time of `times` (of primitive type `T`), how many `starts` it is at or after.
fn count<T: ArrowPrimitiveType>(times: &dyn Array, starts: &[i64]) -> Int8Array
where
    T::Native: Into<i64>,
{
    times.as_primitive::<T>().unary::<_, Int8Type>(|t| {
        let t: i64 = t.into();
        starts.iter().filter(|s| t >= **s).count() as i8
    })
}

impl ScalarUDFImpl for WindowsHolding {
    fn name(&self) -> &str {
        "windows_holding"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.split_first() {
            Some((time, starts))
                if is_time(time)
                    && !starts.is_empty()
                    && starts.len() <= i8::MAX as usize
                    && starts.iter().all(|s| s == time) =>
            {
                Ok(DataType::Int8)
            }
            _ => plan_err!(
                "windows_holding takes a time and 1 to 127 starts of the same type (a timestamp or a date), not {arg_types:?}"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some((times, starts)) = args.args.split_first() else {
            return exec_err!("windows_holding takes a time and its starts");
        };
        let starts = starts
            .iter()
            .map(|s| match s {
                ColumnarValue::Scalar(v) => stored(v),
                ColumnarValue::Array(_) => None,
            })
            .collect::<Option<Vec<i64>>>();
        let Some(starts) = starts else {
            return exec_err!("windows_holding's starts are constant times, none of them null");
        };
        let times = times.to_array(args.number_rows)?;
        let held = match times.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => {
                count::<TimestampSecondType>(&times, &starts)
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                count::<TimestampMillisecondType>(&times, &starts)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                count::<TimestampMicrosecondType>(&times, &starts)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                count::<TimestampNanosecondType>(&times, &starts)
            }
            DataType::Date32 => count::<Date32Type>(&times, &starts),
            DataType::Date64 => count::<Date64Type>(&times, &starts),
            other => return exec_err!("windows_holding takes a timestamp or a date, not {other}"),
        };
        Ok(ColumnarValue::Array(Arc::new(held) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// `windows_holding` equals the sum of casts it replaces, nulls included,
    /// for timestamps of each unit and for dates.
    #[tokio::test]
    async fn counts_as_the_sum_of_casts_did() {
        let ctx = SessionContext::new();
        ctx.register_udf(windows_holding());
        let zone = Some(Arc::from("UTC"));
        for (data_type, start) in [
            (DataType::Timestamp(TimeUnit::Second, None), 1_000),
            (DataType::Timestamp(TimeUnit::Millisecond, None), 1_000),
            (DataType::Timestamp(TimeUnit::Microsecond, zone), 1_000),
            (DataType::Timestamp(TimeUnit::Nanosecond, None), 1_000),
            (DataType::Date32, 1_000),
            (DataType::Date64, 1_000),
        ] {
            let t = data_type.to_string();
            let t = t.as_str();
            let cast_from = if t == "Date32" { "Int32" } else { "Int64" };
            let at = |v: i64| format!("arrow_cast(arrow_cast({v}, '{cast_from}'), '{t}')");
            let starts = [start, start - 10, start - 100];
            let sql = format!(
                "SELECT CAST(windows_holding(t, {s}) AS BIGINT), \
                   CAST({casts} AS BIGINT) \
                 FROM (SELECT CASE WHEN v = 0 THEN NULL ELSE arrow_cast(arrow_cast(v, '{cast_from}'), '{t}') END AS t \
                       FROM (VALUES (0), (1), (899), (900), (901), (989), (990), (999), (1000), (1001), (-5)) AS u(v))",
                s = starts.map(at).join(", "),
                casts = starts
                    .map(|s| format!("CAST(t >= {} AS TINYINT)", at(s)))
                    .join(" + "),
            );
            let batches = ctx
                .sql(&sql)
                .await
                .expect("plan")
                .collect()
                .await
                .expect("run");
            let (mut got, mut want) = (vec![], vec![]);
            for b in &batches {
                let column = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
                got.extend(column(0).iter());
                want.extend(column(1).iter());
            }
            assert_eq!(got, want, "{t}");
            assert_eq!(
                got,
                Int64Array::from(vec![
                    None,
                    Some(0),
                    Some(0),
                    Some(1),
                    Some(1),
                    Some(1),
                    Some(2),
                    Some(2),
                    Some(3),
                    Some(3),
                    Some(0)
                ])
                .iter()
                .collect::<Vec<_>>(),
                "{t}"
            );
        }
    }
}
