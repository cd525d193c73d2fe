//! What an explorer (`[explorers.NAME]`) reads: the entities whose id or name
//! holds what a person typed, and one entity's chart columns over a period,
//! in time order — read from the table's newest version through DataFrame
//! expressions (no SQL text is built from what was typed).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{cast, kernels::cast_utils::string_to_datetime};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{Column, ScalarValue};
use datafusion::functions::expr_fn::{lower, strpos};
use datafusion::logical_expr::{Expr, cast as cast_expr, lit};
use sluice_project::ExplorerDef;
use sluice_store::AsOf;

use super::{ReadBounds, ReadError};
use crate::Workspace;

/// An entity found by what was typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Its id, as text.
    pub id: String,
    /// Its name, where the explorer has a label.
    pub label: Option<String>,
}

/// One entity's columns over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Whether `x` is time (seconds since the epoch) rather than a plain
    /// number such as a year.
    pub x_is_time: bool,
    /// The time of each row, in order.
    pub x: Vec<f64>,
    /// Each chart column's values, row by row (`None`: null, or not a number).
    pub columns: Vec<(String, Vec<Option<f64>>)>,
}

/// The explorer `name`.
pub fn explorer<'a>(ws: &'a Workspace, name: &str) -> Result<&'a ExplorerDef, ReadError> {
    ws.project
        .explorers
        .get(name)
        .ok_or_else(|| ReadError::UnknownExplorer {
            name: name.to_string(),
            known: ws.project.explorers.keys().cloned().collect(),
        })
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// `name`'s type in `table`'s schema, or an error naming the columns there are.
fn type_of(
    def: &ExplorerDef,
    table: &str,
    schema: &datafusion::arrow::datatypes::Schema,
    name: &str,
) -> Result<DataType, ReadError> {
    schema
        .field_with_name(name)
        .map(|f| f.data_type().clone())
        .map_err(|_| ReadError::ExplorerColumn {
            explorer: def.name.clone(),
            table: table.to_string(),
            column: name.to_string(),
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        })
}

async fn frame(
    ws: &Workspace,
    table: &str,
    bounds: ReadBounds,
) -> Result<datafusion::dataframe::DataFrame, ReadError> {
    let ctx = sluice_transform::session_with_memory_limit(bounds.memory);
    let provider: Arc<dyn datafusion::datasource::TableProvider> =
        ws.table_provider(table, AsOf::Latest, &ctx.state()).await?;
    ctx.read_table(provider).map_err(|e| rows_error(table, &e))
}

fn rows_error(table: &str, e: &datafusion::error::DataFusionError) -> ReadError {
    ReadError::ReadRows {
        table: table.to_string(),
        message: e.strip_backtrace(),
    }
}

async fn collect(
    table: &str,
    df: datafusion::dataframe::DataFrame,
    bounds: ReadBounds,
) -> Result<Vec<RecordBatch>, ReadError> {
    tokio::time::timeout(bounds.time, df.collect())
        .await
        .map_err(|_| ReadError::Timeout { limit: bounds.time })?
        .map_err(|e| rows_error(table, &e))
}

/// Text of each value of a column (nulls as `None`).
fn texts(a: &ArrayRef) -> Result<Vec<Option<String>>, datafusion::arrow::error::ArrowError> {
    let s = cast(a, &DataType::Utf8)?;
    let s = s
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .ok_or_else(|| datafusion::arrow::error::ArrowError::CastError("not text".into()))?;
    Ok((0..s.len())
        .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
        .collect())
}

/// At most `limit` entities whose id starts with `typed` or whose name holds
/// it (letter case aside), by name.
pub async fn explore_suggest(
    ws: &Workspace,
    name: &str,
    typed: &str,
    limit: usize,
    bounds: ReadBounds,
) -> Result<Vec<Suggestion>, ReadError> {
    let def = explorer(ws, name)?;
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(Vec::new());
    }
    let (table, key, label) = match &def.label {
        Some((t, k, l)) => (t.as_str(), k.as_str(), Some(l.as_str())),
        None => (def.from.as_str(), def.entity.as_str(), None),
    };
    let df = frame(ws, table, bounds).await?;
    let schema = df.schema().as_arrow().clone();
    type_of(def, table, &schema, key)?;
    if let Some(l) = label {
        type_of(def, table, &schema, l)?;
    }
    let id = cast_expr(column(key), DataType::Utf8);
    let needle = lit(typed.to_lowercase());
    let mut found = strpos(lower(id.clone()), needle.clone()).eq(lit(1i64));
    let mut select = vec![id.alias("id")];
    if let Some(l) = label {
        let text = cast_expr(column(l), DataType::Utf8);
        found = found.or(strpos(lower(text.clone()), needle).gt(lit(0i64)));
        select.push(text.alias("label"));
    }
    let order = if label.is_some() { "label" } else { "id" };
    let df = df
        .filter(found)
        .and_then(|d| d.select(select))
        .and_then(|d| d.distinct())
        .and_then(|d| {
            d.sort(vec![
                column(order).sort(true, false),
                column("id").sort(true, false),
            ])
        })
        .and_then(|d| d.limit(0, Some(limit)))
        .map_err(|e| rows_error(table, &e))?;
    let mut out = Vec::new();
    for b in collect(table, df, bounds).await? {
        let ids = texts(b.column(0)).map_err(|e| rows_error(table, &e.into()))?;
        let labels = match b.num_columns() {
            2 => texts(b.column(1)).map_err(|e| rows_error(table, &e.into()))?,
            _ => vec![None; ids.len()],
        };
        for (id, label) in ids.into_iter().zip(labels) {
            if let Some(id) = id {
                out.push(Suggestion { id, label });
            }
        }
    }
    Ok(out)
}

/// The name of entity `id`, where the explorer has a label.
pub async fn explore_label(
    ws: &Workspace,
    name: &str,
    id: &str,
    bounds: ReadBounds,
) -> Result<Option<String>, ReadError> {
    let def = explorer(ws, name)?;
    let Some((table, key, label)) = &def.label else {
        return Ok(None);
    };
    let df = frame(ws, table, bounds).await?;
    let schema = df.schema().as_arrow().clone();
    type_of(def, table, &schema, key)?;
    type_of(def, table, &schema, label)?;
    let df = df
        .filter(cast_expr(column(key), DataType::Utf8).eq(lit(id)))
        .and_then(|d| d.select(vec![cast_expr(column(label), DataType::Utf8)]))
        .and_then(|d| d.limit(0, Some(1)))
        .map_err(|e| rows_error(table, &e))?;
    let batches = collect(table, df, bounds).await?;
    Ok(batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| texts(b.column(0)).ok())
        .and_then(|t| t.into_iter().next().flatten()))
}

/// A period's end as the time column holds it: a number (a year) for a
/// numeric column, else a date or time (`2004`, `2004-06`, `2004-06-01`,
/// `2004-06-01T12:00`) in UTC.
fn bound(ty: &DataType, text: &str) -> Result<ScalarValue, ReadError> {
    let text = text.trim();
    let bad = |help: &str| ReadError::BadPeriod {
        given: text.to_string(),
        help: help.to_string(),
    };
    if ty.is_numeric() {
        let v: f64 = text
            .parse()
            .map_err(|_| bad("write a number, as the time column holds (a year: `2004`)"))?;
        return Ok(ScalarValue::Float64(Some(v)));
    }
    let full = match text.len() {
        4 => format!("{text}-01-01"),
        7 => format!("{text}-01"),
        _ => text.to_string(),
    };
    let t = string_to_datetime(&chrono::Utc, &full).map_err(|_| {
        bad("write a date or time: `2004`, `2004-06`, `2004-06-01` or `2004-06-01T12:00`")
    })?;
    Ok(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some("UTC".into()),
    ))
}

/// Entity `id`'s chart columns from `from` to `to` (both included; either may
/// be absent), in time order.
pub async fn explore_series(
    ws: &Workspace,
    name: &str,
    id: &str,
    from: Option<&str>,
    to: Option<&str>,
    bounds: ReadBounds,
) -> Result<Series, ReadError> {
    let def = explorer(ws, name)?;
    let table = def.from.as_str();
    let df = frame(ws, table, bounds).await?;
    let schema = df.schema().as_arrow().clone();
    type_of(def, table, &schema, &def.entity)?;
    let time_type = type_of(def, table, &schema, &def.time)?;
    let columns: Vec<String> =
        def.charts
            .iter()
            .flat_map(|(_, c)| c.iter().cloned())
            .fold(Vec::new(), |mut all, c| {
                if !all.contains(&c) {
                    all.push(c);
                }
                all
            });
    for c in &columns {
        type_of(def, table, &schema, c)?;
    }
    let x_is_time = !time_type.is_numeric();
    // Time compared as a UTC timestamp, or numbers as float.
    let time = if x_is_time {
        cast_expr(
            column(&def.time),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )
    } else {
        cast_expr(column(&def.time), DataType::Float64)
    };
    let mut keep = cast_expr(column(&def.entity), DataType::Utf8).eq(lit(id));
    if let Some(f) = from.filter(|f| !f.trim().is_empty()) {
        keep = keep.and(time.clone().gt_eq(lit(bound(&time_type, f)?)));
    }
    if let Some(t) = to.filter(|t| !t.trim().is_empty()) {
        keep = keep.and(time.clone().lt_eq(lit(bound(&time_type, t)?)));
    }
    let mut select = vec![time.clone().alias("__x")];
    select.extend(
        columns
            .iter()
            .map(|c| cast_expr(column(c), DataType::Float64).alias(c)),
    );
    let df = df
        .filter(keep)
        .and_then(|d| d.select(select))
        .and_then(|d| d.sort(vec![column("__x").sort(true, false)]))
        .and_then(|d| d.limit(0, Some(bounds.rows)))
        .map_err(|e| rows_error(table, &e))?;
    let mut x = Vec::new();
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::new(); columns.len()];
    for b in collect(table, df, bounds).await? {
        let xs = if x_is_time {
            cast(b.column(0), &DataType::Int64).map_err(|e| rows_error(table, &e.into()))?
        } else {
            b.column(0).clone()
        };
        for i in 0..xs.len() {
            if xs.is_null(i) {
                continue;
            }
            x.push(if x_is_time {
                xs.as_any()
                    .downcast_ref::<datafusion::arrow::array::PrimitiveArray<Int64Type>>()
                    .map_or(0.0, |a| a.value(i) as f64 / 1e6)
            } else {
                xs.as_any()
                    .downcast_ref::<datafusion::arrow::array::PrimitiveArray<Float64Type>>()
                    .map_or(0.0, |a| a.value(i))
            });
            for (k, v) in values.iter_mut().enumerate() {
                let a = b.column(k + 1);
                let a = a
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::PrimitiveArray<Float64Type>>();
                v.push(
                    a.and_then(|a| (!a.is_null(i)).then(|| a.value(i)))
                        .filter(|f| f.is_finite()),
                );
            }
        }
    }
    Ok(Series {
        x_is_time,
        x,
        columns: columns.into_iter().zip(values).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_read_as_the_time_column_holds_time() {
        assert_eq!(
            bound(&DataType::Int64, " 2004 ").ok(),
            Some(ScalarValue::Float64(Some(2004.0)))
        );
        assert!(bound(&DataType::Int64, "last year").is_err());
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        let start = bound(&ts, "2004").ok();
        assert_eq!(start, bound(&ts, "2004-01-01T00:00:00").ok());
        assert!(bound(&ts, "2004-13").is_err());
        assert!(bound(&DataType::Date32, "2004-06-01").is_ok());
    }
}
