//! Arrow columns as PostgreSQL columns: the type each becomes (the map the
//! README documents) and Arrow batches encoded as the rows of
//! `COPY ... FROM STDIN (FORMAT binary)`.
//!
//! Binary rather than text: values go over typed — no escaping, no NULL that
//! could be confused with an empty string, no float or time printed and parsed
//! again — and each column is encoded straight from its Arrow array, without a
//! value-by-value trait object.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, DurationMicrosecondArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, IntervalMonthDayNanoArray,
    RecordBatch, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, TimeUnit, UInt64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;
/// PostgreSQL's longest identifier, in bytes.
const PG_NAME_MAX: usize = 63;

/// The start of a binary `COPY` stream: signature, flags, header extension.
pub(super) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end of a binary `COPY` stream.
pub(super) const TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// A column of the export as PostgreSQL holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PgColumn {
    /// The column's name, as written.
    pub name: String,
    /// Its PostgreSQL type, as written in `CREATE TABLE`.
    pub pg_type: String,
}

/// The PostgreSQL type an Arrow type is written as, or `None` when there is none.
pub(crate) fn pg_type(dt: &DataType) -> Option<String> {
    use DataType as D;
    Some(match dt {
        D::Null | D::Utf8 | D::LargeUtf8 | D::Utf8View => "text".into(),
        D::Boolean => "boolean".into(),
        D::Int8 | D::Int16 | D::UInt8 => "smallint".into(),
        D::Int32 | D::UInt16 => "integer".into(),
        D::Int64 | D::UInt32 => "bigint".into(),
        D::UInt64 => "numeric(20, 0)".into(),
        D::Float16 | D::Float32 => "real".into(),
        D::Float64 => "double precision".into(),
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            if *s >= 0 && i16::from(*p) >= i16::from(*s) {
                format!("numeric({p}, {s})")
            } else {
                "numeric".into()
            }
        }
        D::Date32 | D::Date64 => "date".into(),
        D::Time32(_) | D::Time64(_) => "time".into(),
        D::Timestamp(_, None) => "timestamp".into(),
        D::Timestamp(_, Some(_)) => "timestamptz".into(),
        D::Duration(_) | D::Interval(_) => "interval".into(),
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => "bytea".into(),
        D::List(_)
        | D::LargeList(_)
        | D::ListView(_)
        | D::LargeListView(_)
        | D::FixedSizeList(..)
        | D::Struct(_)
        | D::Map(..) => "jsonb".into(),
        D::Dictionary(_, v) => return pg_type(v),
        _ => return None,
    })
}

/// The export's columns as PostgreSQL columns; an error names a column that has
/// no PostgreSQL type or name, and what to do.
pub(crate) fn pg_columns(schema: &Schema) -> Result<Vec<PgColumn>, String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name();
            if name.len() > PG_NAME_MAX {
                return Err(format!(
                    "column `{name}` is longer than PostgreSQL's {PG_NAME_MAX} bytes for a name\n  help: rename it in the export's `sql` (`SELECT ... AS shorter_name`)"
                ));
            }
            match pg_type(f.data_type()) {
                Some(pg_type) => Ok(PgColumn {
                    name: name.clone(),
                    pg_type,
                }),
                None => Err(format!(
                    "column `{name}` is {}, which has no PostgreSQL type\n  help: cast it in the export's `sql` (`CAST(\"{name}\" AS VARCHAR)`)",
                    f.data_type()
                )),
            }
        })
        .collect()
}

/// One column of a batch, in the Arrow type its PostgreSQL type is encoded from.
enum Column {
    Null,
    Bool(BooleanArray),
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Text(StringArray),
    Bytes(BinaryArray),
    Date(Date32Array),
    Time(Time64MicrosecondArray),
    Timestamp(TimestampMicrosecondArray),
    Interval(IntervalMonthDayNanoArray),
    Duration(DurationMicrosecondArray),
    /// `numeric`, from each value's decimal text.
    Numeric(Vec<Option<String>>),
    /// `jsonb`, from each value's JSON text.
    Json(Vec<Option<String>>),
}

/// Casts that fail on a value rather than turn it into a null.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: FormatOptions::new(),
};

fn to(array: &ArrayRef, dt: DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == &dt {
        Ok(array.clone())
    } else {
        cast_with_options(array, &dt, &STRICT)
    }
}

impl Column {
    fn of(name: &str, array: &ArrayRef) -> Result<Column, ArrowError> {
        use DataType as D;
        Ok(match array.data_type() {
            D::Dictionary(_, v) => return Column::of(name, &to(array, v.as_ref().clone())?),
            D::Null => Column::Null,
            D::Boolean => Column::Bool(array.as_boolean().clone()),
            D::Int8 | D::Int16 | D::UInt8 => {
                Column::I16(to(array, D::Int16)?.as_primitive().clone())
            }
            D::Int32 | D::UInt16 => Column::I32(to(array, D::Int32)?.as_primitive().clone()),
            D::Int64 | D::UInt32 => Column::I64(to(array, D::Int64)?.as_primitive().clone()),
            D::UInt64 => Column::Numeric(
                array
                    .as_primitive::<UInt64Type>()
                    .iter()
                    .map(|v| v.map(|v| v.to_string()))
                    .collect(),
            ),
            D::Float16 | D::Float32 => Column::F32(to(array, D::Float32)?.as_primitive().clone()),
            D::Float64 => Column::F64(array.as_primitive().clone()),
            D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..) => {
                let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
                Column::Numeric(
                    (0..array.len())
                        .map(|i| array.is_valid(i).then(|| formatter.value(i).to_string()))
                        .collect(),
                )
            }
            D::Utf8 | D::LargeUtf8 | D::Utf8View => {
                Column::Text(to(array, D::Utf8)?.as_string::<i32>().clone())
            }
            D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => {
                Column::Bytes(to(array, D::Binary)?.as_binary::<i32>().clone())
            }
            D::Date32 | D::Date64 => Column::Date(to(array, D::Date32)?.as_primitive().clone()),
            D::Time32(_) | D::Time64(_) => Column::Time(
                to(array, D::Time64(TimeUnit::Microsecond))?
                    .as_primitive()
                    .clone(),
            ),
            D::Timestamp(_, tz) => Column::Timestamp(
                to(array, D::Timestamp(TimeUnit::Microsecond, tz.clone()))?
                    .as_primitive()
                    .clone(),
            ),
            D::Duration(_) => Column::Duration(
                to(array, D::Duration(TimeUnit::Microsecond))?
                    .as_primitive()
                    .clone(),
            ),
            D::Interval(_) => Column::Interval(
                to(array, D::Interval(IntervalUnit::MonthDayNano))?
                    .as_primitive()
                    .clone(),
            ),
            dt if pg_type(dt).as_deref() == Some("jsonb") => {
                let field = Field::new(name, dt.clone(), true);
                let batch =
                    RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array.clone()])?;
                let rows = super::json_rows(&[batch])?;
                Column::Json(
                    rows.into_iter()
                        .enumerate()
                        .map(|(i, mut row)| {
                            array
                                .is_valid(i)
                                .then(|| row.remove(name).unwrap_or_default().to_string())
                        })
                        .collect(),
                )
            }
            dt => {
                return Err(ArrowError::CastError(format!(
                    "column `{name}` is {dt}, which has no PostgreSQL type"
                )));
            }
        })
    }

    /// Appends the value of `row`: its length (-1: NULL) and its bytes.
    fn put(&self, row: usize, out: &mut Vec<u8>) {
        fn value(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        macro_rules! fixed {
            ($a:expr, $f:expr) => {
                if $a.is_null(row) {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                } else {
                    value(out, &$f($a.value(row)));
                }
            };
        }
        match self {
            Column::Null => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Column::Bool(a) => fixed!(a, |v: bool| [u8::from(v)]),
            Column::I16(a) => fixed!(a, i16::to_be_bytes),
            Column::I32(a) => fixed!(a, i32::to_be_bytes),
            Column::I64(a) => fixed!(a, i64::to_be_bytes),
            Column::F32(a) => fixed!(a, f32::to_be_bytes),
            Column::F64(a) => fixed!(a, f64::to_be_bytes),
            Column::Text(a) if a.is_valid(row) => value(out, a.value(row).as_bytes()),
            Column::Bytes(a) if a.is_valid(row) => value(out, a.value(row)),
            Column::Text(_) | Column::Bytes(_) => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Column::Date(a) => fixed!(a, |d: i32| d.wrapping_sub(PG_EPOCH_DAYS).to_be_bytes()),
            Column::Time(a) => fixed!(a, i64::to_be_bytes),
            Column::Timestamp(a) => {
                fixed!(a, |t: i64| t.saturating_sub(PG_EPOCH_MICROS).to_be_bytes())
            }
            Column::Duration(a) => fixed!(a, |us: i64| interval(us, 0, 0)),
            Column::Interval(a) => fixed!(
                a,
                |v: datafusion::arrow::datatypes::IntervalMonthDayNano| interval(
                    v.nanoseconds / 1000,
                    v.days,
                    v.months
                )
            ),
            Column::Numeric(v) => match &v[row] {
                Some(text) => numeric(text, out),
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            },
            Column::Json(v) => match &v[row] {
                // jsonb's binary form: a version byte, then the text.
                Some(text) => {
                    out.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
                    out.push(1);
                    out.extend_from_slice(text.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            },
        }
    }
}

/// `interval`'s binary form: microseconds, days, months.
fn interval(micros: i64, days: i32, months: i32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&micros.to_be_bytes());
    b[8..12].copy_from_slice(&days.to_be_bytes());
    b[12..].copy_from_slice(&months.to_be_bytes());
    b
}

/// `numeric`'s binary form of a decimal written as text (`-123.4500`): base
/// 10,000 digits with the weight of the first, the sign and the scale.
fn numeric(text: &str, out: &mut Vec<u8>) {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int = int.trim_start_matches('0');
    let pad_left = (4 - int.len() % 4) % 4;
    let pad_right = (4 - frac.len() % 4) % 4;
    let all: Vec<u8> = std::iter::repeat_n(b'0', pad_left)
        .chain(int.bytes())
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', pad_right))
        .collect();
    let mut digits: Vec<u16> = all
        .chunks(4)
        .map(|c| {
            c.iter()
                .fold(0u16, |n, d| n * 10 + u16::from(d.wrapping_sub(b'0')))
        })
        .collect();
    let mut weight = ((pad_left + int.len()) / 4) as i16 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let sign: u16 = if negative && !digits.is_empty() {
        0x4000
    } else {
        0
    };
    if digits.is_empty() {
        weight = 0;
    }
    let scale = frac.len() as u16;
    out.extend_from_slice(&(8 + 2 * digits.len() as i32).to_be_bytes());
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// Appends `batch`'s rows to `out` as binary `COPY` tuples.
pub(super) fn encode(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| Column::of(f.name(), a))
        .collect::<Result<Vec<_>, _>>()?;
    let count = (columns.len() as i16).to_be_bytes();
    for row in 0..batch.num_rows() {
        out.extend_from_slice(&count);
        for c in &columns {
            c.put(row, out);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_of(text: &str) -> (i16, i16, u16, u16, Vec<u16>) {
        let mut out = vec![];
        numeric(text, &mut out);
        let n = |i: usize| u16::from_be_bytes([out[i], out[i + 1]]);
        let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        assert_eq!(len, out.len() - 4);
        let ndigits = n(4) as i16;
        let digits = (0..ndigits as usize).map(|i| n(12 + 2 * i)).collect();
        (ndigits, n(6) as i16, n(8), n(10), digits)
    }

    #[test]
    fn numerics_are_base_10000_digits_with_their_weight_and_scale() {
        assert_eq!(numeric_of("123.45"), (2, 0, 0, 2, vec![123, 4500]));
        assert_eq!(numeric_of("-123.4500"), (2, 0, 0x4000, 4, vec![123, 4500]));
        assert_eq!(numeric_of("0.0001"), (1, -1, 0, 4, vec![1]));
        assert_eq!(numeric_of("0.00001"), (1, -2, 0, 5, vec![1000]));
        assert_eq!(numeric_of("100000000"), (1, 2, 0, 0, vec![1]));
        assert_eq!(
            numeric_of("18446744073709551615").4,
            vec![1844, 6744, 737, 955, 1615]
        );
        assert_eq!(numeric_of("-0.00"), (0, 0, 0, 2, vec![]));
    }

    #[test]
    fn every_common_type_has_a_postgres_type_and_the_rest_a_help() {
        use DataType as D;
        for (dt, want) in [
            (D::Int8, "smallint"),
            (D::UInt32, "bigint"),
            (D::Decimal128(12, 2), "numeric(12, 2)"),
            (
                D::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                "timestamptz",
            ),
            (D::Timestamp(TimeUnit::Second, None), "timestamp"),
            (D::Utf8View, "text"),
            (D::Dictionary(Box::new(D::Int32), Box::new(D::Utf8)), "text"),
            (D::new_list(D::Int64, true), "jsonb"),
        ] {
            assert_eq!(pg_type(&dt).as_deref(), Some(want), "{dt}");
        }
        let schema = Schema::new(vec![Field::new(
            "u",
            D::Union(
                datafusion::arrow::datatypes::UnionFields::empty(),
                datafusion::arrow::datatypes::UnionMode::Dense,
            ),
            true,
        )]);
        let e = pg_columns(&schema).expect_err("no type");
        assert!(
            e.contains("column `u` is") && e.contains("CAST(\"u\" AS VARCHAR)"),
            "{e}"
        );
    }
}
