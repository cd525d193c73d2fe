//! Expectations checked against the published schema before any row is read:
//! the column exists and has a type the expectation can measure; `in_set` and
//! `distinct_count` get their DataFusion expressions.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use sluice_project::{ExpectKind, Expectation};

use crate::rules::{column, is_text, literal};
use crate::{Error, Result};

/// An expectation compiled against the published schema.
#[derive(Debug)]
pub(crate) struct CompiledExpectation {
    pub(super) expectation: Expectation,
    /// Index of its column in the published schema.
    pub(super) column: Option<usize>,
    /// `in_set`: membership of each row.
    pub(super) member: Option<Arc<dyn PhysicalExpr>>,
    /// `distinct_count`: DataFusion's exact distinct counter.
    pub(super) distinct: Option<datafusion::physical_expr::aggregate::AggregateFunctionExpr>,
    /// PSI over the categories of a text column.
    pub(super) categorical: bool,
}

pub(crate) fn compile_expectations(
    expectations: &[Expectation],
    schema: &SchemaRef,
    state: &SessionState,
) -> Result<Vec<CompiledExpectation>> {
    let df_schema =
        DFSchema::try_from(schema.as_ref().clone()).map_err(|source| Error::Schema { source })?;
    let mut out = Vec::new();
    for e in expectations {
        let at = &e.location;
        let index = match &e.column {
            None => None,
            Some(c) => Some(schema.index_of(c).map_err(|_| {
                let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::compile(
                    at,
                    format!(
                        "expectation `{}` names column `{c}`, which the asset does not have",
                        e.name
                    ),
                    format!("its columns are: {}", known.join(", ")),
                )
            })?),
        };
        let data_type = index.map(|i| schema.field(i).data_type().clone());
        let needs = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::compile(
                    at,
                    format!(
                        "expectation `{}`: `{}` needs a {what} column, and `{}` is {}",
                        e.name,
                        e.kind.word(),
                        e.column.as_deref().unwrap_or_default(),
                        data_type.clone().unwrap_or(DataType::Null)
                    ),
                    "choose another column, or convert it with `type` in the column's rules",
                ))
            }
        };
        let t = data_type.clone().unwrap_or(DataType::Null);
        let mut member = None;
        let mut distinct = None;
        match &e.kind {
            ExpectKind::Mean(_) | ExpectKind::Stddev(_) | ExpectKind::Quantile(..) => {
                needs(t.is_numeric(), "numeric")?;
            }
            ExpectKind::Psi { .. } => needs(t.is_numeric() || is_text(&t), "numeric or text")?,
            ExpectKind::Ks { .. } => needs(t.is_numeric(), "numeric")?,
            ExpectKind::Freshness(_) => needs(
                matches!(
                    t,
                    DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                ),
                "timestamp or date",
            )?,
            ExpectKind::InSet(values, _) => {
                let name = e.column.as_deref().unwrap_or_default();
                let expr: Expr = column(name).in_list(values.iter().map(literal).collect(), false);
                member = Some(
                    state
                        .create_physical_expr(expr, &df_schema)
                        .map_err(|err| {
                            Error::compile(
                                at,
                                format!(
                                    "expectation `{}` on column `{name}`: {}",
                                    e.name,
                                    err.strip_backtrace()
                                ),
                                "make the values the column's type",
                            )
                        })?,
                );
            }
            ExpectKind::DistinctCount(_) => {
                let name = e.column.as_deref().unwrap_or_default();
                let arg = state
                    .create_physical_expr(column(name), &df_schema)
                    .map_err(|source| Error::DistinctCount {
                        expectation: e.name.clone(),
                        source,
                    })?;
                distinct = Some(
                    AggregateExprBuilder::new(count_udaf(), vec![arg])
                        .schema(schema.clone())
                        .alias("distinct")
                        .distinct()
                        .build()
                        .map_err(|source| Error::DistinctCount {
                            expectation: e.name.clone(),
                            source,
                        })?,
                );
            }
            ExpectKind::RowCount(_) | ExpectKind::NullFraction(_) => {}
        }
        out.push(CompiledExpectation {
            expectation: e.clone(),
            column: index,
            member,
            distinct,
            categorical: matches!(e.kind, ExpectKind::Psi { .. }) && is_text(&t),
        });
    }
    Ok(out)
}
