//! Feature views as DataFusion plans: the reference time and the pivot categories
//! are found in the data, then the view's SQL is planned like a table's.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use sluice_core::Location;
use sluice_project::features::Declared;
use sluice_project::features::quote;
use sluice_project::{
    AsOf, Asset, Diagnostic, FeatureBody, FeatureDef, SqlOrigin, TableDef, TimeLiteral,
};

use crate::{Error, Result, plan_sql, plan_table};

/// What is already known of a declared view's source, from its files rather
/// than a query over its rows (`sluice_store`'s footers and dictionary keys):
/// planning runs a query only for what is not here. Each fact must be what
/// its query would answer.
#[derive(Debug, Default, Clone)]
pub struct Known {
    /// The newest event (`SELECT max(timestamp)`), in microseconds since the
    /// epoch, for a view computed as of its newest event.
    pub newest: Option<i64>,
    /// The categories of pivot `i` (its discovery query's answer, in order),
    /// by `i`.
    pub categories: std::collections::HashMap<usize, Vec<String>>,
}

/// Plans feature view `asset` against the assets registered in `ctx`. `now` is the
/// build's time (microseconds since the epoch), used by `as_of = "now"` and when
/// the source has no event yet. What `known` holds of the source is not
/// queried again.
pub async fn plan_features(
    ctx: &SessionContext,
    asset: &Asset,
    def: &FeatureDef,
    now: i64,
    known: &Known,
) -> Result<LogicalPlan> {
    let fail = |message: String, help: &str| {
        Diagnostic::new(
            asset.location.clone(),
            format!("feature view `{}`: {message}", asset.name),
        )
        .with_help(help)
    };
    let (sql, origin) = match &def.body {
        FeatureBody::Sql { sql, origin } => (sql.clone(), origin.clone()),
        FeatureBody::Declared(d) => {
            let source = d.source.as_str();
            let table = ctx.table(source).await.map_err(|e| Error::ReadViewSource {
                diagnostic: fail(
                    e.strip_backtrace(),
                    "build the source first; `sluice run` does",
                ),
                source: e,
            })?;
            let schema = table.schema().as_arrow().clone();
            check_declared_columns(ctx, asset, def, d, &schema).await?;
            let ts_type = schema
                .field_with_name(&def.timestamp)
                .map(|f| f.data_type().clone())
                .unwrap_or(DataType::Null);
            if !is_time(&ts_type) {
                return Err(Error::TimeColumn {
                    diagnostic: fail(
                        not_a_time(&def.timestamp, &ts_type),
                        "cast the column in the source's `columns`, or use a SQL view",
                    ),
                });
            }
            // The newest event and the pivots' categories are looked up at
            // once: each query scans the source on its own.
            let newest = async {
                if d.as_of != AsOf::Newest {
                    return Ok(None);
                }
                if let Some(newest) = known.newest {
                    return Ok(Some(newest));
                }
                let sql = format!(
                    "SELECT max({}) AS t FROM {}",
                    quote(&def.timestamp),
                    quote(source)
                );
                let failed = |e: DataFusionError| Error::FindNewest {
                    diagnostic: fail(e.strip_backtrace(), "check the source"),
                    source: e,
                };
                let batches = run(ctx, &sql).await.map_err(failed)?;
                let newest = batches
                    .first()
                    .filter(|b| b.num_rows() > 0)
                    .map(|b| ScalarValue::try_from_array(b.column(0), 0))
                    .transpose()
                    .map_err(failed)?;
                Ok::<_, Error>(Some(newest.and_then(|v| micros(&v)).unwrap_or(now)))
            };
            let found = async {
                let mut categories = vec![vec![]; d.pivots.len()];
                for (i, query) in def.discovery_queries() {
                    if let Some(found) = known.categories.get(&i) {
                        categories[i].clone_from(found);
                        continue;
                    }
                    let batches = run(ctx, &query).await.map_err(|e| Error::FindCategories {
                        diagnostic: fail(
                            format!("pivot `{}`: {}", d.pivots[i].name, e.strip_backtrace()),
                            "check the pivot's `column`",
                        ),
                        source: e,
                    })?;
                    for b in batches {
                        let col = b.column(0).as_string_opt::<i32>().cloned();
                        let values: Vec<String> = match col {
                            Some(c) => c.iter().flatten().map(str::to_string).collect(),
                            None => {
                                let cast =
                                    datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
                                        .map_err(|e| Error::FindCategories {
                                            diagnostic: fail(
                                                e.to_string(),
                                                "check the pivot's `column`",
                                            ),
                                            source: e.into(),
                                        })?;
                                cast.as_string::<i32>()
                                    .iter()
                                    .flatten()
                                    .map(str::to_string)
                                    .collect()
                            }
                        };
                        categories[i].extend(values);
                    }
                }
                Ok::<_, Error>(categories)
            };
            let (newest, categories) = futures::future::try_join(newest, found).await?;
            let reference = match d.as_of {
                AsOf::Event => None,
                AsOf::Now => Some(now),
                AsOf::At(t) => Some(t),
                AsOf::Newest => newest,
            }
            .map(|micros| TimeLiteral {
                micros,
                data_type: ts_type.clone(),
            });
            (
                def.sql(reference.as_ref(), &categories, &|c| {
                    schema
                        .field_with_name(c)
                        .ok()
                        .map(|f| f.data_type().clone())
                }),
                SqlOrigin {
                    file: asset.location.file.clone(),
                    line: asset.location.line,
                    column: asset.location.column,
                },
            )
        }
    };
    let plan = match &def.body {
        FeatureBody::Sql { .. } => plan_table(ctx, asset, &TableDef { sql, origin }).await?,
        // The query is sluice's own: its columns and filters were checked at
        // their keys above, so what is left is reported at the view.
        FeatureBody::Declared(_) => {
            plan_sql(ctx, asset, &sql, &|_, _| asset.location.clone()).await?
        }
    };
    let schema = plan.schema().as_arrow().clone();
    for key in def.key_columns() {
        match schema.field_with_name(&key) {
            Err(_) => {
                return Err(Error::KeyColumn {
                    diagnostic: fail(
                        format!("its rows have no column `{key}`"),
                        "the query must return the entity, timestamp and created columns the view declares",
                    ),
                });
            }
            Ok(f) if key == def.timestamp || Some(&key) == def.created.as_ref() => {
                if !is_time(f.data_type()) {
                    return Err(Error::TimeColumn {
                        diagnostic: fail(
                            not_a_time(&key, f.data_type()),
                            "cast it with `CAST(... AS TIMESTAMP)` in the query",
                        ),
                    });
                }
            }
            Ok(_) => {}
        }
    }
    Ok(plan)
}

/// Whether a column of type `t` can serve as an event or created time.
/// Every column a declared view names is in its source, and every filter
/// plans against it; a mistake is reported at the key that names it.
async fn check_declared_columns(
    ctx: &SessionContext,
    asset: &Asset,
    def: &FeatureDef,
    d: &Declared,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<()> {
    let source = d.source.as_str();
    let missing = |column: &str, at: &Location, key: &str| {
        let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Error::KeyColumn {
            diagnostic: Diagnostic::new(
                at.clone(),
                format!(
                    "feature view `{}`: `{key}` names `{column}`, and its source `{source}` has no such column",
                    asset.name
                ),
            )
            .with_help(format!("the columns of `{source}` are: {}", known.join(", "))),
        }
    };
    let has = |column: &str| schema.field_with_name(column).is_ok();
    for (column, at) in &def.written_at {
        if !has(column) {
            let key = if def.entity.contains(column) {
                "entity"
            } else if *column == def.timestamp {
                "timestamp"
            } else {
                "created"
            };
            return Err(missing(column, at, key));
        }
    }
    for a in &d.aggregates {
        if let Some(c) = &a.column
            && !has(c)
        {
            return Err(missing(c, &a.column_at, "column"));
        }
    }
    for p in &d.pivots {
        if !has(&p.column) {
            return Err(missing(&p.column, &p.column_at, "column"));
        }
        if let (Some(v), Some(at)) = (&p.value, &p.value_at)
            && !has(v)
        {
            return Err(missing(v, at, "value"));
        }
    }
    let filters = d
        .aggregates
        .iter()
        .filter_map(|a| a.filter.as_ref().zip(a.filter_origin.as_ref()))
        .chain(
            d.pivots
                .iter()
                .filter_map(|p| p.filter.as_ref().zip(p.filter_origin.as_ref())),
        );
    for (filter, origin) in filters {
        check_filter(ctx, asset, source, filter, origin).await?;
    }
    Ok(())
}

/// Plans `SELECT 1 FROM source WHERE filter`, reporting a mistake at its place
/// inside the filter as written.
async fn check_filter(
    ctx: &SessionContext,
    asset: &Asset,
    source: &str,
    filter: &str,
    origin: &SqlOrigin,
) -> Result<()> {
    let prefix = format!("SELECT 1 AS ok FROM {} WHERE ", quote(source));
    let sql = format!("{prefix}{filter}");
    let shift = prefix.chars().count() as u64;
    let locate = |line: u64, column: u64| match line {
        0 => origin.locate(0, 0),
        1 => origin.locate(1, column.saturating_sub(shift).max(1)),
        _ => origin.locate(line, column),
    };
    plan_sql(ctx, asset, &sql, &locate).await.map(|_| ())
}

fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    )
}

/// What is wrong with time column `column` of type `t`.
fn not_a_time(column: &str, t: &DataType) -> String {
    format!("the time column `{column}` is {t}, not a timestamp or a date")
}

/// A timestamp or date scalar as microseconds since the epoch (UTC).
pub fn micros(v: &ScalarValue) -> Option<i64> {
    let cast = v
        .cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None))
        .ok()?;
    match cast {
        ScalarValue::TimestampMicrosecond(m, _) => m,
        _ => None,
    }
}

/// The values of a timestamp or date column as microseconds since the epoch.
pub fn micros_array(
    a: &dyn Array,
) -> datafusion::error::Result<datafusion::arrow::array::PrimitiveArray<TimestampMicrosecondType>> {
    let cast =
        datafusion::arrow::compute::cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(cast.as_primitive::<TimestampMicrosecondType>().clone())
}

async fn run(
    ctx: &SessionContext,
    sql: &str,
) -> datafusion::error::Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}
