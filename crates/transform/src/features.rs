//! Feature views as DataFusion plans: the reference time and the pivot categories
//! are found in the data, then the view's SQL is planned like a table's.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use sluice_project::features::quote;
use sluice_project::{AsOf, Asset, Diagnostic, FeatureBody, FeatureDef, TableDef, TimeLiteral};

use crate::{Error, Result, plan_table};

/// Plans feature view `asset` against the assets registered in `ctx`. `now` is the
/// build's time (microseconds since the epoch), used by `as_of = "now"` and when
/// the source has no event yet.
pub async fn plan_features(
    ctx: &SessionContext,
    asset: &Asset,
    def: &FeatureDef,
    now: i64,
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
            let ts_type = match schema.field_with_name(&def.timestamp) {
                Ok(f) => f.data_type().clone(),
                Err(_) => {
                    return Err(Error::TimeColumn {
                        diagnostic: fail(
                            format!("`{source}` has no column `{}`", def.timestamp),
                            "set `timestamp` to the event-time column of the source",
                        ),
                    });
                }
            };
            if !is_time(&ts_type) {
                return Err(Error::TimeColumn {
                    diagnostic: fail(
                        not_a_time(&def.timestamp, &ts_type),
                        "cast the column in the source's `columns`, or use a SQL view",
                    ),
                });
            }
            let reference = match d.as_of {
                AsOf::Event => None,
                AsOf::Now => Some(now),
                AsOf::At(t) => Some(t),
                AsOf::Newest => {
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
                    Some(newest.and_then(|v| micros(&v)).unwrap_or(now))
                }
            }
            .map(|micros| TimeLiteral {
                micros,
                data_type: ts_type.clone(),
            });
            let mut categories = vec![vec![]; d.pivots.len()];
            for (i, query) in def.discovery_queries() {
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
            (
                def.sql(reference.as_ref(), &categories),
                sluice_project::SqlOrigin {
                    file: asset.location.file.clone(),
                    line: asset.location.line,
                    column: asset.location.column,
                },
            )
        }
    };
    let plan = plan_table(ctx, asset, &TableDef { sql, origin }).await?;
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
