//! The Delta statistics of a copied file, written from its Parquet footer
//! (delta-rs's own `stats_from_parquet_metadata` is `pub(crate)` in 1.1.3),
//! and the table setting that says how many columns get them.

use chrono::DateTime;
use datafusion::arrow::datatypes::Schema;
use deltalake_core::DeltaTable;
use deltalake_core::parquet::basic::{LogicalType, TimeUnit};
use deltalake_core::parquet::file::metadata::ParquetMetaData;
use deltalake_core::parquet::file::statistics::Statistics;
use deltalake_core::parquet::schema::types::ColumnDescriptor;
use serde_json::{Map, Value};

use super::logical;

/// How many of the first columns a file of `table` has statistics for, as
/// its `delta.dataSkippingNumIndexedCols` says (32 by default); `None` when
/// the table names the columns instead, which copies do not follow.
pub(crate) fn indexed_columns(table: &DeltaTable) -> Option<usize> {
    let Ok(state) = table.snapshot() else {
        return Some(32);
    };
    let config = state.metadata().configuration();
    if config.contains_key("delta.dataSkippingStatsColumns") {
        return None;
    }
    match config.get("delta.dataSkippingNumIndexedCols") {
        None => Some(32),
        Some(n) => match n.trim().parse::<i64>() {
            Ok(n) if n < 0 => Some(usize::MAX),
            Ok(n) => Some(n as usize),
            Err(_) => None,
        },
    }
}

/// The Delta statistics of a file from its footer: its rows, and for each of
/// the first `indexed` columns its nulls and, where the footer has them for
/// every row group that has values, bounds. Bounds are left out where the
/// footer's are not exact (a truncated string) or for types whose Delta
/// form is not plain (decimals, binary); timestamps are bounded to the
/// millisecond, outward.
pub(super) fn stats(footer: &ParquetMetaData, schema: &Schema, indexed: usize) -> Value {
    let mut mins = Map::new();
    let mut maxs = Map::new();
    let mut nulls = Map::new();
    for (i, field) in schema.fields().iter().enumerate().take(indexed) {
        let column = footer.file_metadata().schema_descr().column(i);
        let mut null_count = Some(0u64);
        let mut bounds: Option<Option<(Value, Value)>> = Some(None);
        for group in footer.row_groups() {
            let chunk = group.column(i);
            let Some(s) = chunk.statistics() else {
                null_count = None;
                bounds = None;
                break;
            };
            null_count = null_count.zip(s.null_count_opt()).map(|(a, b)| a + b);
            let all_null = s.null_count_opt() == Some(group.num_rows() as u64);
            if all_null {
                continue;
            }
            let Some(here) = bound(s, &column) else {
                bounds = None;
                continue;
            };
            if let Some(held) = &mut bounds {
                *held = Some(match held.take() {
                    None => here,
                    Some((lo, hi)) => (least(lo, here.0, true), least(hi, here.1, false)),
                });
            }
        }
        let name = field.name().clone();
        if let Some(n) = null_count {
            nulls.insert(name.clone(), Value::from(n));
        }
        if let Some(Some((lo, hi))) = bounds {
            mins.insert(name.clone(), lo);
            maxs.insert(name, hi);
        }
    }
    serde_json::json!({
        "numRecords": footer.file_metadata().num_rows(),
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    })
}

/// Of two bounds of one column (both numbers or both text), the lower
/// (`lower`) or the higher.
fn least(a: Value, b: Value, lower: bool) -> Value {
    let a_first = match (&a, &b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x <= y,
            _ => x.as_f64().unwrap_or(f64::NAN) <= y.as_f64().unwrap_or(f64::NAN),
        },
        (Value::String(x), Value::String(y)) => x <= y,
        _ => true,
    };
    if a_first == lower { a } else { b }
}

/// A row group's bounds of `column` as Delta writes them, where they are
/// exact and plain.
fn bound(s: &Statistics, column: &ColumnDescriptor) -> Option<(Value, Value)> {
    if !s.min_is_exact() || !s.max_is_exact() {
        return None;
    }
    let logical = logical(column);
    match (s, logical) {
        (Statistics::Int32(v), None) => Some(((*v.min_opt()?).into(), (*v.max_opt()?).into())),
        (Statistics::Int32(v), Some(LogicalType::Date)) => {
            let day = |d: i32| {
                chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|e| e.checked_add_signed(chrono::Duration::days(d.into())))
                    .map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
            };
            Some((day(*v.min_opt()?)?, day(*v.max_opt()?)?))
        }
        (Statistics::Int32(v), Some(LogicalType::Integer(i))) if i.is_signed => {
            Some(((*v.min_opt()?).into(), (*v.max_opt()?).into()))
        }
        (Statistics::Int64(v), None) => Some(((*v.min_opt()?).into(), (*v.max_opt()?).into())),
        (Statistics::Int64(v), Some(LogicalType::Integer(i))) if i.is_signed => {
            Some(((*v.min_opt()?).into(), (*v.max_opt()?).into()))
        }
        (Statistics::Int64(v), Some(LogicalType::Timestamp(t))) if t.is_adjusted_to_u_t_c => {
            let per_milli = match t.unit {
                TimeUnit::MILLIS => 1,
                TimeUnit::MICROS => 1_000,
                TimeUnit::NANOS => 1_000_000,
            };
            let millis = |x: i64, up: bool| {
                let m = if up {
                    x.div_euclid(per_milli) + i64::from(x.rem_euclid(per_milli) != 0)
                } else {
                    x.div_euclid(per_milli)
                };
                DateTime::from_timestamp_millis(m)
                    .map(|d| Value::from(d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
            };
            Some((millis(*v.min_opt()?, false)?, millis(*v.max_opt()?, true)?))
        }
        (Statistics::Float(v), None) => finite(f64::from(*v.min_opt()?), f64::from(*v.max_opt()?)),
        (Statistics::Double(v), None) => finite(*v.min_opt()?, *v.max_opt()?),
        (Statistics::ByteArray(v), Some(LogicalType::String)) => {
            let lo = std::str::from_utf8(v.min_opt()?.data()).ok()?;
            let hi = std::str::from_utf8(v.max_opt()?.data()).ok()?;
            Some((lo.into(), hi.into()))
        }
        _ => None,
    }
}

/// Float bounds, where both are numbers JSON can hold.
fn finite(lo: f64, hi: f64) -> Option<(Value, Value)> {
    (lo.is_finite() && hi.is_finite()).then(|| (lo.into(), hi.into()))
}
