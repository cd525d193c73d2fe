//! Table expectations: statistics accumulated batch by batch over the published
//! rows (per partition, merged at the end), then judged against their bounds.
//! Drift compares a column with the same column of a reference version.
//!
//! `compile` checks each expectation against the published schema; the
//! accumulators here update per batch and merge per partition; `moments` holds
//! the parallel mean and variance; `reference` reads drift references; `judge`
//! turns the merged statistics into check results.

mod compile;
mod judge;
mod moments;
mod reference;

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use sluice_project::ExpectKind;

pub(crate) use compile::{CompiledExpectation, compile_expectations};
pub use judge::{ROW_RULE_PASSING_SCORE, passing_score};
use moments::{merge_moments, moments};
pub use reference::ReferenceTable;
pub(crate) use reference::References;
use reference::count_categories;

use crate::{Error, Result};

/// Running statistics of one expectation.
#[derive(Debug)]
enum Acc {
    None,
    Nulls(u64),
    /// Count, mean and sum of squared deviations (Chan et al.'s parallel merge).
    Moments {
        n: u64,
        mean: f64,
        m2: f64,
    },
    Values(Vec<f64>),
    Categories(BTreeMap<String, u64>),
    Distinct(Box<dyn Accumulator>),
    InSet {
        inside: u64,
        non_null: u64,
    },
    Newest(Option<i64>),
}

/// The running statistics of every expectation.
#[derive(Debug)]
pub(crate) struct Stats {
    accs: Vec<Acc>,
}

impl Stats {
    pub(crate) fn new(expectations: &[CompiledExpectation]) -> Self {
        let accs = expectations
            .iter()
            .map(|e| match &e.expectation.kind {
                ExpectKind::RowCount(_) => Acc::None,
                ExpectKind::NullFraction(_) => Acc::Nulls(0),
                ExpectKind::Mean(_) | ExpectKind::Stddev(_) => Acc::Moments {
                    n: 0,
                    mean: 0.0,
                    m2: 0.0,
                },
                ExpectKind::Psi { .. } if e.categorical => Acc::Categories(BTreeMap::new()),
                ExpectKind::Quantile(..) | ExpectKind::Psi { .. } | ExpectKind::Ks { .. } => {
                    Acc::Values(Vec::new())
                }
                ExpectKind::DistinctCount(_) => {
                    match e.distinct.as_ref().map(|d| d.create_accumulator()) {
                        Some(Ok(a)) => Acc::Distinct(a),
                        _ => Acc::None,
                    }
                }
                ExpectKind::InSet(..) => Acc::InSet {
                    inside: 0,
                    non_null: 0,
                },
                ExpectKind::Freshness(_) => Acc::Newest(None),
            })
            .collect();
        Self { accs }
    }

    pub(crate) fn update(
        &mut self,
        expectations: &[CompiledExpectation],
        batch: &RecordBatch,
    ) -> datafusion::error::Result<()> {
        for (acc, e) in self.accs.iter_mut().zip(expectations) {
            let Some(i) = e.column else { continue };
            update(acc, e, batch, batch.column(i)).map_err(|err| {
                err.context(format!(
                    "contract expectation `{}` on column `{}`",
                    e.expectation.name,
                    batch.schema().field(i).name()
                ))
            })?;
        }
        Ok(())
    }

    pub(crate) fn merge(
        &mut self,
        other: Stats,
        expectations: &[CompiledExpectation],
    ) -> Result<()> {
        for ((a, b), e) in self.accs.iter_mut().zip(other.accs).zip(expectations) {
            let distinct_count = |source| Error::DistinctCount {
                expectation: e.expectation.name.clone(),
                source,
            };
            match (a, b) {
                (Acc::Nulls(x), Acc::Nulls(y)) => *x += y,
                (
                    Acc::Moments { n, mean, m2 },
                    Acc::Moments {
                        n: bn,
                        mean: bmean,
                        m2: bm2,
                    },
                ) => merge_moments((n, mean, m2), (bn, bmean, bm2)),
                (Acc::Values(x), Acc::Values(y)) => x.extend(y),
                (Acc::Categories(x), Acc::Categories(y)) => {
                    for (k, v) in y {
                        *x.entry(k).or_insert(0) += v;
                    }
                }
                (Acc::Distinct(x), Acc::Distinct(mut y)) => {
                    let state = y.state().map_err(distinct_count)?;
                    let arrays = state
                        .iter()
                        .map(ScalarValue::to_array)
                        .collect::<datafusion::error::Result<Vec<ArrayRef>>>()
                        .map_err(distinct_count)?;
                    x.merge_batch(&arrays).map_err(distinct_count)?;
                }
                (
                    Acc::InSet { inside, non_null },
                    Acc::InSet {
                        inside: i2,
                        non_null: n2,
                    },
                ) => {
                    *inside += i2;
                    *non_null += n2;
                }
                (Acc::Newest(x), Acc::Newest(y)) => {
                    *x = match (*x, y) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Adds one batch's values of an expectation's column to its statistics.
fn update(
    acc: &mut Acc,
    e: &CompiledExpectation,
    batch: &RecordBatch,
    values: &ArrayRef,
) -> datafusion::error::Result<()> {
    match acc {
        Acc::None => {}
        Acc::Nulls(n) => *n += values.null_count() as u64,
        Acc::Moments { n, mean, m2 } => {
            let f = floats(values)?;
            let f: Vec<f64> = f.as_primitive::<Float64Type>().iter().flatten().collect();
            merge_moments((n, mean, m2), moments(&f));
        }
        Acc::Values(v) => {
            let f = floats(values)?;
            v.extend(
                f.as_primitive::<Float64Type>()
                    .iter()
                    .flatten()
                    .filter(|x| !x.is_nan()),
            );
        }
        Acc::Categories(counts) => count_categories(&cast(values, &DataType::Utf8)?, counts),
        Acc::Distinct(a) => a.update_batch(std::slice::from_ref(values))?,
        Acc::InSet { inside, non_null } => {
            if let Some(member) = &e.member {
                let m = member.evaluate(batch)?.into_array(batch.num_rows())?;
                let m = m.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal("in_set gave no booleans".into())
                })?;
                *inside += m.true_count() as u64;
            }
            *non_null += (values.len() - values.null_count()) as u64;
        }
        Acc::Newest(newest) => {
            let micros = cast(
                values,
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            )?;
            let micros = cast(&micros, &DataType::Int64)?;
            if let Some(m) = max(micros.as_primitive::<Int64Type>()) {
                *newest = Some(newest.map_or(m, |n| n.max(m)));
            }
        }
    }
    Ok(())
}

fn floats(values: &ArrayRef) -> datafusion::error::Result<ArrayRef> {
    Ok(cast(values, &DataType::Float64)?)
}
