//! Row rules as DataFusion expressions: each rule becomes one boolean physical
//! expression, "true or null" meaning the row keeps it.
//!
//! Rules read the typed row: every column as its `type` rule converts it
//! (`try_cast`), so that `type = "float64"` and `amount > 0` on a text column
//! mean what they say. A value that does not convert is null there, and its
//! `type` rule — the one rule that reads the input row — rejects it. SQL rules
//! are planned against the typed schema, so `sluice check` plans what runs.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::functions::expr_fn::character_length;
use datafusion::logical_expr::{Expr, ExprSchemable, Operator, TryCast, cast, lit};
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
    /// Whether `keeps` reads the typed row; a `type` rule reads the input row.
    pub typed: bool,
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
    converted_schema(rules, input, false)
}

/// The schema of the typed row the rules read: like the published schema, but a
/// converted column may hold nulls (the values that did not convert).
pub(crate) fn typed_schema(rules: &[RowRule], input: &Schema) -> SchemaRef {
    converted_schema(rules, input, true)
}

fn converted_schema(rules: &[RowRule], input: &Schema, nullable: bool) -> SchemaRef {
    let fields: Vec<_> = input
        .fields()
        .iter()
        .map(|f| match type_of(rules, f.name()) {
            Some(t) => {
                let f = f.as_ref().clone().with_data_type(t.clone());
                let f = if nullable { f.with_nullable(true) } else { f };
                Arc::new(f)
            }
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

/// Compiles every rule: a `type` rule against the input schema, every other
/// rule against `typed`, the schema of the typed row. `duplicates` holds, per
/// column with a `unique` rule, the values that occur more than once.
pub(crate) fn compile_rules(
    rules: &[RowRule],
    input: &SchemaRef,
    typed: &SchemaRef,
    state: &SessionState,
    duplicates: &dyn Fn(&str) -> Option<ArrayRef>,
) -> Result<Vec<CompiledRule>> {
    let input_df =
        DFSchema::try_from(input.as_ref().clone()).map_err(|source| Error::Schema { source })?;
    let typed_df =
        DFSchema::try_from(typed.as_ref().clone()).map_err(|source| Error::Schema { source })?;
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        let at = &rule.location;
        let check = rule.check_name();
        let fail = |message: String, help: &str| {
            Error::compile(at, format!("rule `{check}`: {message}"), help)
        };
        let name = rule.column.as_deref().unwrap_or_default();
        if let Some(c) = &rule.column
            && input.field_with_name(c).is_err()
        {
            let known: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(fail(
                format!("the contract names column `{c}`, which the asset does not have"),
                &format!("its columns are: {}", known.join(", ")),
            ));
        }
        let value = column(name);
        let value_type = match &rule.column {
            Some(_) => value
                .get_type(&typed_df)
                .map_err(|source| Error::TypeRule {
                    rule: check.clone(),
                    source,
                })?,
            None => DataType::Boolean,
        };
        let text_only = || -> Result<()> {
            if is_text(&value_type) {
                Ok(())
            } else {
                Err(fail(
                    format!("applies to text, and column `{name}` is {value_type}"),
                    "remove the rule, or give the column a text type",
                ))
            }
        };
        let number_vs_text = |l: &Literal| -> Result<()> {
            if is_text(&value_type) && matches!(l, Literal::Int(_) | Literal::Float(_)) {
                Err(fail(
                    format!(
                        "column `{name}` is text, so it cannot be compared with the number {l}"
                    ),
                    "add `type = \"int64\"` (or another number type) to the column's rules, or quote the bound",
                ))
            } else {
                Ok(())
            }
        };
        let typed_rule = !matches!(rule.kind, RuleKind::Type(..));
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
            RuleKind::Required => (value.is_not_null(), "is missing".to_string()),
            RuleKind::Min(l) => {
                number_vs_text(l)?;
                (value.gt_eq(literal(l)), format!("is below the minimum {l}"))
            }
            RuleKind::Max(l) => {
                number_vs_text(l)?;
                (value.lt_eq(literal(l)), format!("is above the maximum {l}"))
            }
            RuleKind::Regex(re) => {
                text_only()?;
                let keeps = crate::matches::matches(value, re).map_err(|e| {
                    fail(
                        format!("the regex /{re}/ does not compile: {e}"),
                        "fix the pattern (Rust `regex` syntax)",
                    )
                })?;
                (keeps, format!("does not match /{re}/"))
            }
            RuleKind::OneOf(values) => {
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                (
                    value.in_list(values.iter().map(literal).collect(), false),
                    format!("is not one of {}", list.join(", ")),
                )
            }
            RuleKind::MinLength(n) => {
                text_only()?;
                (
                    character_length(value).gt_eq(lit(*n as i64)),
                    format!("is shorter than {n} characters"),
                )
            }
            RuleKind::MaxLength(n) => {
                text_only()?;
                (
                    character_length(value).lt_eq(lit(*n as i64)),
                    format!("is longer than {n} characters"),
                )
            }
            RuleKind::Unique => {
                let physical = state
                    .create_physical_expr(value, &typed_df)
                    .map_err(|e| compile_error(rule, &e))?;
                let list = duplicates(name).map_or_else(Vec::new, |dups| literals(&dups));
                let keeps: Arc<dyn PhysicalExpr> = if list.is_empty() {
                    Arc::new(PhysicalLiteral::new(ScalarValue::Boolean(Some(true))))
                } else {
                    in_list(physical, list, &true, typed).map_err(|e| compile_error(rule, &e))?
                };
                out.push(CompiledRule {
                    rule: rule.clone(),
                    keeps,
                    typed: true,
                    reason: "occurs more than once".to_string(),
                    shown: input.index_of(name).into_iter().collect(),
                });
                continue;
            }
            RuleKind::Sql(sql) => {
                let expr = state
                    .create_logical_expr(sql, &typed_df)
                    .map_err(|e| compile_error(rule, &e))?;
                if let Some((text, number)) = text_against_number(&expr, &typed_df) {
                    return Err(fail(
                        format!(
                            "`{text}` is text and is compared with `{number}`, a number: every row whose text is not a number would be rejected"
                        ),
                        "give the column a number type with `type` in its column rules (rules see the converted values), or compare it with text",
                    ));
                }
                (expr, format!("breaks `{sql}`"))
            }
        };
        let (schema, df_schema) = if typed_rule {
            (typed, &typed_df)
        } else {
            (input, &input_df)
        };
        let keeps_columns: Vec<String> =
            keeps.column_refs().iter().map(|c| c.name.clone()).collect();
        let keeps = settled(keeps, df_schema)
            .and_then(|keeps| state.create_physical_expr(keeps, df_schema))
            .map_err(|e| compile_error(rule, &e))?;
        let returns = keeps
            .data_type(schema)
            .map_err(|e| compile_error(rule, &e))?;
        if returns != DataType::Boolean {
            return Err(fail(
                format!("gives {returns}, not true or false"),
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
            typed: typed_rule,
            reason,
            shown,
        });
    }
    Ok(out)
}

/// The first comparison in `expr` of a text expression with a number, as the two
/// sides written out. DataFusion would convert the text to the number's type row
/// by row, so every row whose text is not such a number would fail the rule.
fn text_against_number(expr: &Expr, schema: &DFSchema) -> Option<(String, String)> {
    // Text that is a constant is converted once, while planning, and fails there.
    let text_read =
        |e: &Expr| !e.column_refs().is_empty() && e.get_type(schema).is_ok_and(|t| is_text(&t));
    let number = |e: &Expr| e.get_type(schema).is_ok_and(|t| t.is_numeric());
    let mismatched = |a: &Expr, b: &Expr| -> Option<(String, String)> {
        if text_read(a) && number(b) {
            Some((a.to_string(), b.to_string()))
        } else if number(a) && text_read(b) {
            Some((b.to_string(), a.to_string()))
        } else {
            None
        }
    };
    let mut found = None;
    let _ = expr.apply(|e| {
        found = match e {
            Expr::BinaryExpr(b)
                if matches!(
                    b.op,
                    Operator::Eq
                        | Operator::NotEq
                        | Operator::Lt
                        | Operator::LtEq
                        | Operator::Gt
                        | Operator::GtEq
                        | Operator::IsDistinctFrom
                        | Operator::IsNotDistinctFrom
                ) =>
            {
                mismatched(&b.left, &b.right)
            }
            Expr::Between(b) => {
                mismatched(&b.expr, &b.low).or_else(|| mismatched(&b.expr, &b.high))
            }
            Expr::InList(l) => l.list.iter().find_map(|v| mismatched(&l.expr, v)),
            _ => None,
        };
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// `expr` coerced and simplified as a query's plan would be, with the time
/// of now: `now()`, `current_date()` and the like become literals, which
/// a physical expression cannot compute itself.
fn settled(expr: Expr, schema: &DFSchema) -> datafusion::error::Result<Expr> {
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    let context = SimplifyContext::builder()
        .with_schema(Arc::new(schema.clone()))
        .with_current_time()
        .build();
    let simplifier = ExprSimplifier::new(context);
    let expr = simplifier.coerce(expr, schema)?;
    simplifier.simplify(expr)
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
