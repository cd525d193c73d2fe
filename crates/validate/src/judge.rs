//! Judging rows: a compiled rule over a batch, row by row where its expression
//! fails, and how a broken row is shown in the report and the quarantine.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::concat;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::error::DataFusionError;
use datafusion::physical_expr::PhysicalExpr;
use sluice_core::ErrorClass;

use crate::rules::CompiledRule;

/// An example of a broken rule: the column's value, or for SQL rules the columns
/// the predicate reads.
pub(crate) fn sample(batch: &RecordBatch, rule: &CompiledRule, row: usize) -> String {
    match &rule.rule.column {
        Some(_) => rule
            .shown
            .first()
            .map(|i| show(batch, *i, row))
            .unwrap_or_default(),
        None => row_values(batch, rule, row),
    }
}

/// The values a rule reads in one row, as `column=value` pairs.
fn row_values(batch: &RecordBatch, rule: &CompiledRule, row: usize) -> String {
    rule.shown
        .iter()
        .map(|i| {
            format!(
                "{}={}",
                batch.schema().field(*i).name(),
                show(batch, *i, row)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(batch: &RecordBatch, column: usize, row: usize) -> String {
    let c = batch.column(column);
    if c.is_null(row) {
        "null".to_string()
    } else {
        array_value_to_string(c.as_ref(), row).unwrap_or_default()
    }
}

/// Why a row was rejected by a rule that could not be evaluated on it.
pub(crate) fn failure(
    batch: &RecordBatch,
    rule: &CompiledRule,
    row: usize,
    e: &DataFusionError,
) -> String {
    format!(
        "could not be evaluated on {}: {}",
        row_values(batch, rule, row),
        e.strip_backtrace()
    )
}

/// What a rule says of each row of a batch.
pub(crate) struct Judged {
    /// True or null keeps the row; false breaks it.
    pub keeps: BooleanArray,
    /// The rows the rule could not be evaluated on (false in `keeps`), with the
    /// engine's error.
    pub failures: Vec<(usize, DataFusionError)>,
}

/// Evaluates a rule over a batch. When the expression fails (a text that does
/// not parse as a date, say), the batch is split in halves until the rows it
/// fails on are found: those rows break the rule, the others are judged as
/// usual. A transient failure (reading, memory) is not the rows' fault and is
/// returned as an error.
pub(crate) fn judge(
    keeps: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> datafusion::error::Result<Judged> {
    let n = batch.num_rows();
    let error = match evaluate(keeps, batch) {
        Ok(keeps) => {
            return Ok(Judged {
                keeps,
                failures: Vec::new(),
            });
        }
        Err(e) => e,
    };
    if n == 0 || ErrorClass::of_error(&error).is_transient() {
        return Err(error);
    }
    if n == 1 {
        return Ok(Judged {
            keeps: BooleanArray::from(vec![false]),
            failures: vec![(0, error)],
        });
    }
    let half = n / 2;
    let head = judge(keeps, &batch.slice(0, half))?;
    let tail = judge(keeps, &batch.slice(half, n - half))?;
    let both = concat(&[&head.keeps as &dyn Array, &tail.keeps])?;
    let mut failures = head.failures;
    failures.extend(tail.failures.into_iter().map(|(row, e)| (row + half, e)));
    Ok(Judged {
        keeps: both.as_boolean().clone(),
        failures,
    })
}

fn evaluate(
    keeps: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
) -> datafusion::error::Result<BooleanArray> {
    let keeps = keeps.evaluate(batch)?.into_array(batch.num_rows())?;
    keeps
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("a rule gave no booleans".into()))
}
