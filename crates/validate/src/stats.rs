//! Table expectations: statistics accumulated batch by batch over the published
//! rows (per partition, merged at the end), then judged against their bounds.
//! Drift compares a column with the same column of a reference version.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::logical_expr::{Accumulator, Expr};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::prelude::SessionContext;
use sluice_project::{Bounds, Contract, ExpectKind, Expectation, Reference};

use crate::drift::{bin_counts, ks_statistic, proportions, psi, quantile, quantile_edges};
use crate::report::{CheckResult, Histogram, Verdict};
use crate::rules::{column, is_text, literal};
use crate::{Error, Result};

/// A reference version of the asset, for drift checks.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    /// Which reference the contract asked for.
    pub reference: Reference,
    /// The version it resolved to.
    pub version: u64,
    /// The table at that version.
    pub provider: Arc<dyn TableProvider>,
}

/// Sorted non-null values of reference columns, by reference and column.
#[derive(Debug, Default)]
pub(crate) struct References {
    values: BTreeMap<(ReferenceKey, String), (u64, Sample)>,
}

/// A column of a reference version: sorted numbers, or counts per category.
#[derive(Debug)]
enum Sample {
    Numbers(Vec<f64>),
    Categories(BTreeMap<String, u64>),
}

type ReferenceKey = Option<u64>;

fn key(r: Reference) -> ReferenceKey {
    match r {
        Reference::Previous => None,
        Reference::Version(v) => Some(v),
    }
}

impl References {
    /// Reads the columns that drift checks need from the references available.
    pub(crate) async fn read(
        ctx: &SessionContext,
        contract: &Contract,
        tables: Vec<ReferenceTable>,
    ) -> Result<Self> {
        let mut out = Self::default();
        for e in &contract.expectations {
            let reference = match e.kind {
                ExpectKind::Psi { reference, .. } | ExpectKind::Ks { reference, .. } => reference,
                _ => continue,
            };
            let Some(column_name) = &e.column else {
                continue;
            };
            let Some(table) = tables.iter().find(|t| t.reference == reference) else {
                continue;
            };
            let k = (key(reference), column_name.clone());
            if out.values.contains_key(&k)
                || table
                    .provider
                    .schema()
                    .field_with_name(column_name)
                    .is_err()
            {
                continue;
            }
            let text = table
                .provider
                .schema()
                .field_with_name(column_name)
                .is_ok_and(|f| is_text(f.data_type()));
            let target = if text {
                DataType::Utf8
            } else {
                DataType::Float64
            };
            let df = ctx
                .read_table(table.provider.clone())
                .and_then(|df| {
                    df.select(vec![
                        datafusion::logical_expr::cast(column(column_name), target).alias("v"),
                    ])
                })
                .map_err(|source| Error::ReadReference {
                    column: column_name.to_string(),
                    source,
                })?;
            let batches = df.collect().await.map_err(|source| Error::ReadReference {
                column: column_name.to_string(),
                source,
            })?;
            let sample = if text {
                let mut counts = BTreeMap::new();
                for b in &batches {
                    count_categories(b.column(0), &mut counts);
                }
                Sample::Categories(counts)
            } else {
                let mut values = Vec::new();
                for b in &batches {
                    values.extend(b.column(0).as_primitive::<Float64Type>().iter().flatten());
                }
                values.retain(|v| !v.is_nan());
                values.sort_by(f64::total_cmp);
                Sample::Numbers(values)
            };
            out.values.insert(k, (table.version, sample));
        }
        Ok(out)
    }

    fn get(&self, reference: Reference, column: &str) -> Option<&(u64, Sample)> {
        self.values.get(&(key(reference), column.to_string()))
    }
}

/// An expectation compiled against the published schema.
#[derive(Debug)]
pub(crate) struct CompiledExpectation {
    expectation: Expectation,
    /// Index of its column in the published schema.
    column: Option<usize>,
    /// `in_set`: membership of each row.
    member: Option<Arc<dyn PhysicalExpr>>,
    /// `distinct_count`: DataFusion's exact distinct counter.
    distinct: Option<datafusion::physical_expr::aggregate::AggregateFunctionExpr>,
    /// PSI over the categories of a text column.
    categorical: bool,
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
                        "`{}` needs a {what} column, and `{}` is {}",
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
                                format!("`in_set`: {}", err.strip_backtrace()),
                                "make the values the column's type",
                            )
                        })?,
                );
            }
            ExpectKind::DistinctCount(_) => {
                let name = e.column.as_deref().unwrap_or_default();
                let arg = state
                    .create_physical_expr(column(name), &df_schema)
                    .map_err(|source| Error::DistinctCount { source })?;
                distinct = Some(
                    AggregateExprBuilder::new(count_udaf(), vec![arg])
                        .schema(schema.clone())
                        .alias("distinct")
                        .distinct()
                        .build()
                        .map_err(|source| Error::DistinctCount { source })?,
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
            let values = batch.column(i);
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
                Acc::Categories(counts) => {
                    count_categories(&cast(values, &DataType::Utf8)?, counts)
                }
                Acc::Distinct(a) => a.update_batch(std::slice::from_ref(values))?,
                Acc::InSet { inside, non_null } => {
                    if let Some(member) = &e.member {
                        let m = member.evaluate(batch)?.into_array(batch.num_rows())?;
                        let m = m.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                            datafusion::error::DataFusionError::Internal(
                                "in_set gave no booleans".into(),
                            )
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
        }
        Ok(())
    }

    pub(crate) fn merge(&mut self, other: Stats) -> Result<()> {
        for (a, b) in self.accs.iter_mut().zip(other.accs) {
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
                    let state = y
                        .state()
                        .map_err(|source| Error::DistinctCount { source })?;
                    let arrays = state
                        .iter()
                        .map(ScalarValue::to_array)
                        .collect::<datafusion::error::Result<Vec<ArrayRef>>>()
                        .map_err(|source| Error::DistinctCount { source })?;
                    x.merge_batch(&arrays)
                        .map_err(|source| Error::DistinctCount { source })?;
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

    pub(crate) fn evaluate(
        mut self,
        expectations: &[CompiledExpectation],
        rows: u64,
        references: &References,
        now: DateTime<Utc>,
    ) -> Vec<CheckResult> {
        let mut out = Vec::new();
        for (acc, ce) in self.accs.iter_mut().zip(expectations) {
            let e = &ce.expectation;
            let mut check = CheckResult {
                name: e.name.clone(),
                rule: e.kind.word().to_string(),
                column: e.column.clone(),
                severity: e.severity,
                observed: None,
                detail: String::new(),
                threshold: String::new(),
                score: 1.0,
                verdict: Verdict::Pass,
                failing_rows: None,
                samples: Vec::new(),
                histogram: None,
            };
            let judge = |check: &mut CheckResult, v: Option<f64>, b: &Bounds, what: &str| {
                check.threshold = b.to_string();
                match v {
                    Some(v) if v.is_finite() => {
                        check.observed = Some(v);
                        check.detail = format!("{what} is {}", show(v));
                        let pass = b.contains(v);
                        check.verdict = if pass { Verdict::Pass } else { Verdict::Fail };
                        check.score = range_score(v, b);
                    }
                    _ => skip(check, &format!("no {what}: the column has no values")),
                }
            };
            match (&e.kind, acc) {
                (ExpectKind::RowCount(b), _) => {
                    judge(&mut check, Some(rows as f64), b, "the row count")
                }
                (ExpectKind::NullFraction(m), Acc::Nulls(n)) => {
                    let f = if rows == 0 {
                        0.0
                    } else {
                        *n as f64 / rows as f64
                    };
                    check.observed = Some(f);
                    check.threshold = format!("<= {m}");
                    check.detail = format!("{n} of {rows} values are null ({})", percent(f));
                    check.verdict = verdict(f <= *m);
                    check.score = 1.0 - f;
                }
                (ExpectKind::Mean(b), Acc::Moments { n, mean, .. }) => {
                    judge(&mut check, (*n > 0).then_some(*mean), b, "the mean")
                }
                (ExpectKind::Stddev(b), Acc::Moments { n, m2, .. }) => judge(
                    &mut check,
                    (*n > 1).then(|| (*m2 / (*n - 1) as f64).sqrt()),
                    b,
                    "the standard deviation",
                ),
                (ExpectKind::Quantile(q, b), Acc::Values(v)) => {
                    v.sort_by(f64::total_cmp);
                    judge(&mut check, quantile(v, *q), b, &format!("the {q} quantile"))
                }
                (ExpectKind::DistinctCount(b), Acc::Distinct(a)) => {
                    let n = match a.evaluate() {
                        Ok(ScalarValue::Int64(Some(n))) => Some(n as f64),
                        _ => None,
                    };
                    judge(&mut check, n, b, "the number of distinct values")
                }
                (ExpectKind::InSet(_, min), Acc::InSet { inside, non_null }) => {
                    let f = if *non_null == 0 {
                        1.0
                    } else {
                        *inside as f64 / *non_null as f64
                    };
                    check.observed = Some(f);
                    check.threshold = format!(">= {min}");
                    check.detail = format!(
                        "{inside} of {non_null} values are in the set ({})",
                        percent(f)
                    );
                    check.verdict = verdict(f >= *min);
                    check.score = f;
                }
                (ExpectKind::Freshness(max_age), Acc::Newest(newest)) => {
                    check.threshold = format!("newest value at most {} old", humanize(*max_age));
                    match newest.and_then(DateTime::from_timestamp_micros) {
                        Some(t) => {
                            let age = (now - t).to_std().unwrap_or(Duration::ZERO);
                            check.observed = Some(age.as_secs_f64());
                            check.detail = format!(
                                "the newest value, {}, is {} old",
                                t.to_rfc3339(),
                                humanize(age)
                            );
                            check.verdict = verdict(age <= *max_age);
                            check.score = if age <= *max_age {
                                1.0
                            } else {
                                max_age.as_secs_f64() / age.as_secs_f64()
                            };
                        }
                        None => skip(&mut check, "the column has no values"),
                    }
                }
                (
                    ExpectKind::Psi {
                        reference,
                        bins,
                        max,
                    },
                    acc,
                ) => {
                    check.threshold = format!("<= {max}");
                    let r = references.get(*reference, e.column.as_deref().unwrap_or_default());
                    let binned = match (r, acc) {
                        (Some((version, Sample::Numbers(r))), Acc::Values(v)) => {
                            v.sort_by(f64::total_cmp);
                            let edges = quantile_edges(r, *bins);
                            Some((
                                *version,
                                bin_counts(r, &edges),
                                bin_counts(v, &edges),
                                edges,
                                vec![],
                            ))
                        }
                        (Some((version, Sample::Categories(r))), Acc::Categories(c)) => {
                            // One bin per category seen in either version.
                            let labels: Vec<String> = r
                                .keys()
                                .chain(c.keys())
                                .cloned()
                                .collect::<std::collections::BTreeSet<_>>()
                                .into_iter()
                                .collect();
                            let count = |m: &BTreeMap<String, u64>| -> Vec<u64> {
                                labels
                                    .iter()
                                    .map(|l| m.get(l).copied().unwrap_or(0))
                                    .collect()
                            };
                            Some((*version, count(r), count(c), vec![], labels))
                        }
                        _ => None,
                    };
                    match binned {
                        None => skip(&mut check, &no_reference(*reference)),
                        Some((version, rc, cc, edges, labels)) => {
                            let p = psi(&rc, &cc);
                            check.observed = Some(p);
                            check.detail = format!("PSI is {} against version {version}", show(p));
                            check.verdict = verdict(p <= *max);
                            check.score = (-p).exp();
                            check.histogram = Some(Histogram {
                                reference_version: version,
                                edges,
                                labels,
                                reference: proportions(&rc),
                                current: proportions(&cc),
                            });
                        }
                    }
                }
                (ExpectKind::Ks { reference, max }, Acc::Values(v)) => {
                    check.threshold = format!("<= {max}");
                    match references.get(*reference, e.column.as_deref().unwrap_or_default()) {
                        Some((version, Sample::Numbers(r))) => {
                            v.sort_by(f64::total_cmp);
                            let d = ks_statistic(r, v);
                            check.observed = Some(d);
                            check.detail =
                                format!("KS statistic is {} against version {version}", show(d));
                            check.verdict = verdict(d <= *max);
                            check.score = 1.0 - d;
                        }
                        _ => skip(&mut check, &no_reference(*reference)),
                    }
                }
                _ => skip(&mut check, "not measured"),
            }
            out.push(check);
        }
        out
    }
}

/// Adds the non-null values of a text array to counts per value.
fn count_categories(values: &ArrayRef, counts: &mut BTreeMap<String, u64>) {
    for v in values.as_string::<i32>().iter().flatten() {
        match counts.get_mut(v) {
            Some(n) => *n += 1,
            None => {
                counts.insert(v.to_string(), 1);
            }
        }
    }
}

fn verdict(pass: bool) -> Verdict {
    if pass { Verdict::Pass } else { Verdict::Fail }
}

fn skip(check: &mut CheckResult, why: &str) {
    check.verdict = Verdict::Skipped;
    check.detail = why.to_string();
}

fn no_reference(r: Reference) -> String {
    match r {
        Reference::Previous => "no previous version to compare with yet".to_string(),
        Reference::Version(v) => {
            format!("version {v} (the pinned reference) cannot be read or lacks the column")
        }
    }
}

/// 1 inside the bounds; outside, `1 / (1 + distance / scale)` with the scale the
/// bound's magnitude (at least 1), so the score falls as the value moves away.
fn range_score(v: f64, b: &Bounds) -> f64 {
    let (distance, bound) = match (b.min, b.max) {
        (Some(lo), _) if v < lo => (lo - v, lo),
        (_, Some(hi)) if v > hi => (v - hi, hi),
        _ => return 1.0,
    };
    1.0 / (1.0 + distance / bound.abs().max(1.0))
}

fn floats(values: &ArrayRef) -> datafusion::error::Result<ArrayRef> {
    Ok(cast(values, &DataType::Float64)?)
}

/// Adds a part's count, mean and sum of squared deviations to running ones (Chan et al.).
fn merge_moments((n, mean, m2): (&mut u64, &mut f64, &mut f64), (bn, bmean, bm2): (u64, f64, f64)) {
    if bn == 0 {
        return;
    }
    let total = *n + bn;
    let delta = bmean - *mean;
    *m2 += bm2 + delta * delta * (*n as f64) * (bn as f64) / total as f64;
    *mean += delta * bn as f64 / total as f64;
    *n = total;
}

/// Count, mean and sum of squared deviations of one batch (two passes, for accuracy).
fn moments(values: &[f64]) -> (u64, f64, f64) {
    if values.is_empty() {
        return (0, 0.0, 0.0);
    }
    let n = values.len() as u64;
    let mean = values.iter().sum::<f64>() / n as f64;
    let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (n, mean, m2)
}

fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn percent(f: f64) -> String {
    format!("{:.2}%", f * 100.0)
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_merged_by_parts_equal_the_whole() {
        let all: Vec<f64> = (0..1000)
            .map(|i| ((i * 37) % 101) as f64 * 0.5 - 7.0)
            .collect();
        let (n, mean, m2) = moments(&all);
        let (mut pn, mut pmean, mut pm2) = (0u64, 0.0f64, 0.0f64);
        for part in all.chunks(97) {
            merge_moments((&mut pn, &mut pmean, &mut pm2), moments(part));
        }
        assert_eq!(pn, n);
        assert!((pmean - mean).abs() < 1e-12);
        assert!((pm2 - m2).abs() < 1e-9 * m2);
        // The sample standard deviation, as numpy.std(ddof=1) would give it.
        let direct = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        assert!(((pm2 / (pn - 1) as f64).sqrt() - direct).abs() < 1e-12);
    }

    #[test]
    fn scores_fall_with_distance_outside_the_bounds() {
        let b = Bounds {
            min: Some(0.0),
            max: Some(30.0),
        };
        assert_eq!(range_score(12.0, &b), 1.0);
        assert!((range_score(60.0, &b) - 0.5).abs() < 1e-12);
        assert!(range_score(90.0, &b) < range_score(60.0, &b));
        assert!((range_score(-1.0, &b) - 0.5).abs() < 1e-12);
    }
}
