//! Type inference that keeps data: Arrow infers types from the text of the
//! first records; this module reads the same records as text and takes back
//! what would change a value.
//!
//! - A column Arrow calls a number stays text when one sampled value would not
//!   survive the round trip: leading zeros (`007`, `00042`, but not `0` or
//!   `0.5`), a `+` sign, more digits than a float keeps. Ids, ZIP codes and
//!   account numbers keep their text; a user who wants numbers says so in
//!   `columns`.
//! - A text column whose sampled values are all RFC 3339-like times
//!   (`2013-01-01T10:00:00Z`) becomes a timestamp.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_core::timestamp_in;

use crate::Result;
use crate::readers::Reader;

/// The schema inference settled on, and how much of the file it saw.
pub(crate) struct Refined {
    /// The columns' types.
    pub schema: SchemaRef,
    /// Records sampled.
    pub sampled: usize,
    /// Whether the sample was the whole (first) file.
    pub whole_file: bool,
}

/// Refines the types of the columns not `declared`, from the first
/// `sample_rows` records of `path` (all of them when `None`).
pub(crate) fn refine(
    reader: &Reader,
    path: &Path,
    schema: SchemaRef,
    declared: &[bool],
    timezone: &str,
    sample_rows: Option<usize>,
) -> Result<Refined> {
    let unrefined = |schema: SchemaRef| Refined {
        schema,
        sampled: 0,
        whole_file: false,
    };
    let csv = matches!(reader, Reader::Csv(_));
    let numbers = |t: &DataType| csv && matches!(t, DataType::Int64 | DataType::Float64);
    let candidates: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            !declared[*i] && (f.data_type() == &DataType::Utf8 || numbers(f.data_type()))
        })
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Ok(unrefined(schema));
    }
    // CSV: every column as text, which cannot fail on a value. JSON has typed
    // values, so only its text columns are candidates and the schema stays.
    let text_schema = if csv {
        Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_data_type(DataType::Utf8))
                .collect::<Vec<_>>(),
        ))
    } else {
        schema.clone()
    };
    let limit = sample_rows.unwrap_or(usize::MAX);
    let mut sample: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    let mut stopped = false;
    // A read error here is reported by the real read with its position.
    let read = reader.read(path, &text_schema, &mut |batch| {
        let take = batch.num_rows().min(limit - rows);
        rows += take;
        sample.push(batch.slice(0, take));
        stopped = rows == limit;
        !stopped
    });
    if sample.is_empty() {
        return Ok(unrefined(schema));
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for i in candidates {
        let columns: Vec<&ArrayRef> = sample.iter().map(|b| b.column(i)).collect();
        let inferred = fields[i].data_type().clone();
        if inferred == DataType::Utf8 {
            if looks_like_timestamps(&columns, timezone) {
                fields[i] = fields[i].clone().with_data_type(timestamp_in(timezone));
            }
        } else if !all_survive(&columns, &inferred) {
            fields[i] = fields[i].clone().with_data_type(DataType::Utf8);
        }
    }
    Ok(Refined {
        schema: Arc::new(Schema::new(fields)),
        sampled: rows,
        whole_file: read.is_ok() && !stopped,
    })
}

/// Whether every non-null value reads as a timestamp, and some value is there.
fn looks_like_timestamps(columns: &[&ArrayRef], timezone: &str) -> bool {
    let target = timestamp_in(timezone);
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let mut values = 0;
    for column in columns {
        let Some(strings) = column.as_any().downcast_ref::<StringArray>() else {
            return false;
        };
        let shaped = strings
            .iter()
            .flatten()
            .all(|s| s.len() >= 19 && s.as_bytes().get(4) == Some(&b'-') && s.contains(':'));
        if !shaped {
            return false;
        }
        match cast_with_options(column, &target, &options) {
            Ok(cast) if cast.null_count() == column.null_count() => {}
            _ => return false,
        }
        values += strings.len() - strings.null_count();
    }
    values > 0
}

/// Whether every sampled text of a column Arrow typed `inferred` survives as
/// that number.
fn all_survive(columns: &[&ArrayRef], inferred: &DataType) -> bool {
    columns.iter().all(|c| {
        c.as_any()
            .downcast_ref::<StringArray>()
            .is_some_and(|s| s.iter().flatten().all(|v| survives(v, inferred)))
    })
}

/// Whether `text`, read as a number of type `ty`, can be written back as the
/// same number with nothing lost: no leading zeros (`0` and `0.5` are fine), no
/// `+` sign, no digits a float cannot hold. Integers too long for int64 Arrow
/// already leaves as text.
pub(crate) fn survives(text: &str, ty: &DataType) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if unsigned.starts_with('+') {
        return false;
    }
    let whole = unsigned.split(['.', 'e', 'E']).next().unwrap_or_default();
    if whole.len() > 1 && whole.starts_with('0') {
        return false;
    }
    match ty {
        DataType::Float64 => float_survives(text),
        _ => true,
    }
}

fn float_survives(text: &str) -> bool {
    if matches!(text, "NaN" | "nan" | "inf" | "-inf") {
        return true;
    }
    let Ok(v) = text.parse::<f64>() else {
        return false;
    };
    if !v.is_finite() {
        return false;
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    // Up to 15 significant digits always come back from a float, unless the
    // exponent is out of its range (then the value is 0 or subnormal).
    if digits <= 15 && (v == 0.0 || v.abs() >= f64::MIN_POSITIVE) {
        let zero = mantissa.bytes().all(|b| !b.is_ascii_digit() || b == b'0');
        return (v == 0.0) == zero;
    }
    // `{:e}` writes the shortest digits that read back as the same float.
    decimal(text) == decimal(&format!("{v:e}"))
}

/// A decimal number in text as (negative, significant digits, position of the
/// decimal point relative to the first of them): equal for equal numbers
/// however written (`1.50`, `1.5e0`, `0.15e1`). Zero is `(false, "", 0)`.
fn decimal(text: &str) -> (bool, String, i64) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let leading = (digits.len() - significant.len()) as i64;
    let significant = significant.trim_end_matches('0');
    if significant.is_empty() {
        return (false, String::new(), 0);
    }
    (
        negative,
        significant.to_string(),
        whole.len() as i64 - leading + exponent,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_and_plus_signs_do_not_survive() {
        for (text, ty) in [
            ("00001", DataType::Int64),
            ("007", DataType::Int64),
            ("-007", DataType::Int64),
            ("007.5", DataType::Float64),
            ("+5", DataType::Int64),
        ] {
            assert!(!survives(text, &ty), "{text} as {ty}");
        }
        for (text, ty) in [
            ("0", DataType::Int64),
            ("-0", DataType::Int64),
            ("42", DataType::Int64),
            ("-17", DataType::Int64),
            ("0.5", DataType::Float64),
            ("-0.5", DataType::Float64),
            (".5", DataType::Float64),
            ("1.50", DataType::Float64),
            ("16.989999999999995", DataType::Float64),
            ("0.30000000000000004", DataType::Float64),
            ("1e5", DataType::Float64),
            ("2.5E-3", DataType::Float64),
            ("NaN", DataType::Float64),
        ] {
            assert!(survives(text, &ty), "{text} as {ty}");
        }
    }

    #[test]
    fn digits_a_float_cannot_hold_do_not_survive() {
        // 20 digits: in a float column (an int64 column would overflow to text).
        assert!(!survives("12345678901234567890", &DataType::Float64));
        // 2^53 + 1 is the first integer a float cannot hold.
        assert!(survives("9007199254740992", &DataType::Float64));
        assert!(!survives("9007199254740993", &DataType::Float64));
        assert!(!survives("3.14159265358979323846", &DataType::Float64));
        assert!(!survives("1e400", &DataType::Float64));
        assert!(!survives("1e-400", &DataType::Float64));
        assert!(survives("0.0e5", &DataType::Float64));
    }

    #[test]
    fn decimals_compare_by_value_not_spelling() {
        assert_eq!(decimal("1.50"), decimal("1.5e0"));
        assert_eq!(decimal("0.1"), decimal("1e-1"));
        assert_eq!(decimal("1200"), decimal("1.2e3"));
        assert_ne!(decimal("-1.5"), decimal("1.5"));
        assert_eq!(decimal("0.000"), decimal("0e0"));
    }
}
