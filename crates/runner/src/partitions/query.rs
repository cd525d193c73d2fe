//! A partition in the query and the commit: `$start` and `$end` bound to its
//! bounds, the plan's rows restricted to it, and the predicate its Delta
//! commit replaces — all typed as the partition column is.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{Column, ParamValues, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use sluice_core::partition::Partition;
use sluice_project::{Asset, Diagnostic, Partitioning};

use crate::kinds::Job;
use crate::outcome::Failure;

/// For a job building a partition: the rows of `plan` inside it (a filter on
/// the partition column, which DataFusion pushes down to the scans it can
/// prune) and the predicate its commit replaces. Other jobs: `plan` as it is.
pub(crate) fn restrict(
    plan: LogicalPlan,
    job: &Job<'_>,
) -> Result<(LogicalPlan, Option<Expr>), Failure> {
    let (Some(p), Some(x)) = (&job.asset.partitioned, &job.partition) else {
        return Ok((plan, None));
    };
    let schema = plan.schema().as_arrow().clone();
    let rows = range_of(&schema, job.asset, p, x, false)?;
    let replace = range_of(&schema, job.asset, p, x, true)?;
    let plan = LogicalPlanBuilder::from(plan)
        .filter(rows)
        .and_then(LogicalPlanBuilder::build)
        .map_err(|e| Failure::of(&e))?;
    Ok((plan, Some(replace)))
}

/// The rows of partition `x`: its column in `[start, end)`, with bounds of the
/// column's type in `schema` — or, `stored`, of the type the Delta table holds
/// it as (the predicate a partition's commit replaces).
fn range_of(
    schema: &Schema,
    asset: &Asset,
    p: &Partitioning,
    x: &Partition,
    stored: bool,
) -> Result<Expr, Failure> {
    let ty = column_type(schema, asset, p).map_err(|d| Failure::from(d.to_string()))?;
    let ty = if stored {
        sluice_store::delta_type(&ty)
    } else {
        ty
    };
    let (start, end) = (bound(&ty, x.start)?, bound(&ty, x.end)?);
    let column = || Expr::Column(Column::new_unqualified(&p.column));
    Ok(column().gt_eq(lit(start)).and(column().lt(lit(end))))
}

/// The type of the partition column in `schema`, which must be a date or a
/// timestamp (a date only for day and month partitions).
pub(crate) fn column_type(
    schema: &Schema,
    asset: &Asset,
    p: &Partitioning,
) -> Result<DataType, Diagnostic> {
    let at = asset.location.clone();
    let field = schema.field_with_name(&p.column).map_err(|_| {
        Diagnostic::new(
            at.clone(),
            format!(
                "{} `{}` is partitioned by `{}`, which it has no column named",
                asset.kind(),
                asset.name,
                p.column
            ),
        )
        .with_help(format!(
            "name one of its date or timestamp columns in `partitioned.column`: {}",
            schema
                .fields()
                .iter()
                .filter(|f| is_time(f.data_type()))
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let ty = field.data_type().clone();
    let fits = match ty {
        DataType::Timestamp(..) => true,
        DataType::Date32 | DataType::Date64 => p.grain != sluice_core::partition::Grain::Hour,
        _ => false,
    };
    if !fits {
        return Err(Diagnostic::new(
            at,
            format!(
                "{} `{}` is partitioned by `{}`, a {} column; {} partitions need {}",
                asset.kind(),
                asset.name,
                p.column,
                sluice_core::type_name(&ty),
                p.grain,
                if p.grain == sluice_core::partition::Grain::Hour {
                    "a timestamp"
                } else {
                    "a date or a timestamp"
                }
            ),
        )
        .with_help(
            "give the column that type in the source's `columns` (or cast it in the query)",
        ));
    }
    Ok(ty)
}

fn is_time(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    )
}

/// A partition bound as a value of type `ty`: a wall-clock time, read in UTC
/// for a column with a time zone.
fn bound(ty: &DataType, t: NaiveDateTime) -> Result<ScalarValue, Failure> {
    ScalarValue::TimestampMicrosecond(Some(t.and_utc().timestamp_micros()), Some("UTC".into()))
        .cast_to(ty)
        .map_err(|e| Failure::of(&e))
}

/// Gives a query's `$start` and `$end` the partition's bounds (typed as the
/// query uses them); a query of an asset that is not partitioned has none.
pub(crate) fn bind(
    plan: LogicalPlan,
    asset: &Asset,
    x: Option<&Partition>,
) -> Result<LogicalPlan, Diagnostic> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| Diagnostic::new(asset.location.clone(), e.to_string()))?;
    if types.is_empty() {
        return Ok(plan);
    }
    let mut names: Vec<&String> = types.keys().collect();
    names.sort();
    let Some(x) = x else {
        return Err(Diagnostic::new(
            asset.location.clone(),
            format!(
                "{} `{}` uses {}, which only partitioned tables are given",
                asset.kind(),
                asset.name,
                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_help("add `partitioned = { by = \"day\", column = \"...\", start = \"...\" }` to its entry, or remove the parameters"));
    };
    let mut values = HashMap::new();
    for (name, ty) in &types {
        let t = match name.as_str() {
            "$start" => x.start,
            "$end" => x.end,
            other => {
                return Err(Diagnostic::new(
                    asset.location.clone(),
                    format!("{} `{}` uses `{other}`, which sluice does not give", asset.kind(), asset.name),
                )
                .with_help("a partitioned table's query is given `$start` and `$end`, the bounds of its partition"));
            }
        };
        let ty = ty.clone().unwrap_or(DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            None,
        ));
        let value =
            bound(&ty, t).map_err(|e| Diagnostic::new(asset.location.clone(), e.message))?;
        values.insert(name.trim_start_matches('$').to_string(), value.into());
    }
    plan.with_param_values(ParamValues::Map(values))
        .map_err(|e| Diagnostic::new(asset.location.clone(), e.to_string()))
}
