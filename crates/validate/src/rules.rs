//! Row rules as DataFusion expressions: each rule becomes one boolean physical
//! expression over the input batch, "true or null" meaning the row keeps it.
//!
//! A column with a `type` rule is judged by its converted value (`try_cast`), so
//! that `type = "int64"` and `min = 0` on a text column mean what they say.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::functions::expr_fn::{character_length, regexp_like};
use datafusion::logical_expr::{Expr, ExprSchemable, TryCast, cast, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Literal as PhysicalLiteral, in_list};
use sluice_project::{Literal, RowRule, RuleKind};

use crate::{Error, Result};

/// A rule ready to run.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    /// The rule as written.
    pub rule: RowRule,
    /// True or null when the row keeps the rule.
    pub keeps: Arc<dyn PhysicalExpr>,
    /// Why a row that breaks it was rejected, for the quarantine and the report.
    pub reason: String,
    /// The columns a report shows for a row that breaks it.
    pub shown: Vec<usize>,
}

/// The column a rule reads: a plain column reference.
pub(crate) fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// The value rules judge: the column, converted when the contract gives it a type.
pub(crate) fn value_expr(rules: &[RowRule], name: &str) -> Expr {
    match type_of(rules, name) {
        Some(t) => Expr::TryCast(TryCast::new(Box::new(column(name)), t.clone())),
        None => column(name),
    }
}

fn type_of<'a>(rules: &'a [RowRule], name: &str) -> Option<&'a DataType> {
    rules.iter().find_map(|r| match &r.kind {
        RuleKind::Type(_, t) if r.column.as_deref() == Some(name) => Some(t),
        _ => None,
    })
}

/// The schema of the published rows: the input's, with converted column types.
pub(crate) fn output_schema(rules: &[RowRule], input: &Schema) -> SchemaRef {
    let fields: Vec<_> = input
        .fields()
        .iter()
        .map(|f| match type_of(rules, f.name()) {
            Some(t) => Arc::new(f.as_ref().clone().with_data_type(t.clone())),
            None => f.clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

pub(crate) fn literal(l: &Literal) -> Expr {
    match l {
        Literal::Int(v) => lit(*v),
        Literal::Float(v) => lit(*v),
        Literal::Str(v) => lit(v.clone()),
        Literal::Bool(v) => lit(*v),
    }
}

pub(crate) fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// Compiles every rule against the input schema. `duplicates` holds, per column
/// with a `unique` rule, the values that occur more than once.
pub(crate) fn compile_rules(
    rules: &[RowRule],
    input: &SchemaRef,
    state: &SessionState,
    duplicates: &dyn Fn(&str) -> Option<ArrayRef>,
) -> Result<Vec<CompiledRule>> {
    let df_schema =
        DFSchema::try_from(input.as_ref().clone()).map_err(|source| Error::Schema { source })?;
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let at = &rule.location;
        let name = rule.column.as_deref().unwrap_or_default();
        if let Some(c) = &rule.column
            && input.field_with_name(c).is_err()
        {
            let known: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::compile(
                at,
                format!("the contract names column `{c}`, which the asset does not have"),
                format!("its columns are: {}", known.join(", ")),
            ));
        }
        let value = value_expr(rules, name);
        let value_type = match &rule.column {
            Some(_) => value
                .get_type(&df_schema)
                .map_err(|source| Error::TypeRule { source })?,
            None => DataType::Boolean,
        };
        let text_only = |what: &str| -> Result<()> {
            if is_text(&value_type) {
                Ok(())
            } else {
                Err(Error::compile(
                    at,
                    format!("`{what}` applies to text, and column `{name}` is {value_type}"),
                    "remove the rule, or give the column a text type",
                ))
            }
        };
        let number_vs_text = |l: &Literal| -> Result<()> {
            if is_text(&value_type) && matches!(l, Literal::Int(_) | Literal::Float(_)) {
                Err(Error::compile(
                    at,
                    format!(
                        "column `{name}` is text, so it cannot be compared with the number {l}"
                    ),
                    "add `type = \"int64\"` (or another number type) to the column's rules, or quote the bound",
                ))
            } else {
                Ok(())
            }
        };
        let (keeps, reason): (Expr, String) = match &rule.kind {
            RuleKind::Type(word, t) => {
                let input_type = input
                    .field_with_name(name)
                    .map(|f| f.data_type().clone())
                    .unwrap_or(DataType::Null);
                let converted = Expr::TryCast(TryCast::new(Box::new(column(name)), t.clone()));
                let mut ok = converted.clone().is_not_null();
                // Text is parsed; anything else must come back unchanged.
                if !is_text(&input_type) {
                    ok = ok.and(cast(converted, input_type).eq(column(name)));
                }
                (
                    column(name).is_null().or(ok),
                    format!("cannot be converted to {word} without loss"),
                )
            }
            RuleKind::Required => (column(name).is_not_null(), "is missing".to_string()),
            RuleKind::Min(l) => {
                number_vs_text(l)?;
                (value.gt_eq(literal(l)), format!("is below the minimum {l}"))
            }
            RuleKind::Max(l) => {
                number_vs_text(l)?;
                (value.lt_eq(literal(l)), format!("is above the maximum {l}"))
            }
            RuleKind::Regex(re) => {
                text_only("regex")?;
                (
                    regexp_like(value, lit(re.clone()), None),
                    format!("does not match /{re}/"),
                )
            }
            RuleKind::OneOf(values) => {
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                (
                    value.in_list(values.iter().map(literal).collect(), false),
                    format!("is not one of {}", list.join(", ")),
                )
            }
            RuleKind::MinLength(n) => {
                text_only("min_length")?;
                (
                    character_length(value).gt_eq(lit(*n as i64)),
                    format!("is shorter than {n} characters"),
                )
            }
            RuleKind::MaxLength(n) => {
                text_only("max_length")?;
                (
                    character_length(value).lt_eq(lit(*n as i64)),
                    format!("is longer than {n} characters"),
                )
            }
            RuleKind::Unique => {
                let physical = state
                    .create_physical_expr(value, &df_schema)
                    .map_err(|e| compile_error(rule, &e))?;
                let list = duplicates(name).map_or_else(Vec::new, |dups| literals(&dups));
                let keeps: Arc<dyn PhysicalExpr> = if list.is_empty() {
                    Arc::new(PhysicalLiteral::new(ScalarValue::Boolean(Some(true))))
                } else {
                    in_list(physical, list, &true, input).map_err(|e| compile_error(rule, &e))?
                };
                out.push(CompiledRule {
                    rule: rule.clone(),
                    keeps,
                    reason: "occurs more than once".to_string(),
                    shown: input.index_of(name).into_iter().collect(),
                });
                continue;
            }
            RuleKind::Sql(sql) => {
                let expr = state
                    .create_logical_expr(sql, &df_schema)
                    .map_err(|e| compile_error(rule, &e))?;
                (expr, format!("breaks `{sql}`"))
            }
        };
        let keeps_columns: Vec<String> =
            keeps.column_refs().iter().map(|c| c.name.clone()).collect();
        let keeps = state
            .create_physical_expr(keeps, &df_schema)
            .map_err(|e| compile_error(rule, &e))?;
        let returns = keeps
            .data_type(input)
            .map_err(|e| compile_error(rule, &e))?;
        if returns != DataType::Boolean {
            return Err(Error::compile(
                &rule.location,
                format!(
                    "rule `{}` gives {returns}, not true or false",
                    rule.check_name()
                ),
                "write a predicate, such as `amount >= 0`",
            ));
        }
        let shown = match &rule.column {
            Some(c) => input.index_of(c).into_iter().collect(),
            None => {
                let mut used: Vec<usize> = keeps_columns
                    .iter()
                    .filter_map(|c| input.index_of(c).ok())
                    .collect();
                used.sort_unstable();
                used.dedup();
                used
            }
        };
        out.push(CompiledRule {
            rule: rule.clone(),
            keeps,
            reason,
            shown,
        });
    }
    Ok(out)
}

fn literals(values: &ArrayRef) -> Vec<Arc<dyn PhysicalExpr>> {
    (0..values.len())
        .filter(|i| values.is_valid(*i))
        .filter_map(|i| ScalarValue::try_from_array(values.as_ref(), i).ok())
        .map(|v| Arc::new(PhysicalLiteral::new(v)) as Arc<dyn PhysicalExpr>)
        .collect()
}

fn compile_error(rule: &RowRule, e: &datafusion::error::DataFusionError) -> Error {
    Error::compile(
        &rule.location,
        format!("rule `{}`: {}", rule.check_name(), e.strip_backtrace()),
        "fix the rule; `sluice check` compiles every contract against its asset's columns",
    )
}
