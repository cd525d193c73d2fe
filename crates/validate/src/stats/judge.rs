//! Judging merged statistics: each expectation's observed value against its
//! bounds, with a verdict, a score between 0 and 1 and a sentence for the report.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use sluice_project::{Bounds, ExpectKind};

use super::reference::{References, Sample, no_reference};
use super::{Acc, CompiledExpectation, Stats};
use crate::drift::{bin_counts, ks_statistic, proportions, psi, quantile, quantile_edges};
use crate::report::{CheckResult, Histogram, Verdict};

impl Stats {
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
                                sluice_core::render::instant(t),
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

fn verdict(pass: bool) -> Verdict {
    if pass { Verdict::Pass } else { Verdict::Fail }
}

fn skip(check: &mut CheckResult, why: &str) {
    check.verdict = Verdict::Skipped;
    check.detail = why.to_string();
}

/// The lowest score an expectation passes with: its threshold in score space,
/// so that a score below it is exactly a failed check. Prometheus alert rules
/// compare `sluice_data_quality_score` with it (`sluice monitoring rules`); it
/// sits beside the scores above so that the two cannot drift apart. A row rule
/// passes only at 1 ([`ROW_RULE_PASSING_SCORE`]).
pub fn passing_score(kind: &ExpectKind) -> f64 {
    match kind {
        // Inside the bounds, or no older than `max_age`, scores 1; anything else less.
        ExpectKind::RowCount(_)
        | ExpectKind::Mean(_)
        | ExpectKind::Stddev(_)
        | ExpectKind::Quantile(..)
        | ExpectKind::DistinctCount(_)
        | ExpectKind::Freshness(_) => 1.0,
        // The score is `1 - null share`; at most `max` nulls pass.
        ExpectKind::NullFraction(max) => 1.0 - max,
        // The score is the share in the set; at least `min` passes.
        ExpectKind::InSet(_, min) => *min,
        // The score is `exp(-PSI)`; a PSI of at most `max` passes.
        ExpectKind::Psi { max, .. } => (-max).exp(),
        // The score is `1 - KS`; a statistic of at most `max` passes.
        ExpectKind::Ks { max, .. } => 1.0 - max,
    }
}

/// The lowest score a row rule passes with: it passes only when no row breaks it.
pub const ROW_RULE_PASSING_SCORE: f64 = 1.0;

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

    #[test]
    fn a_score_below_the_passing_score_is_exactly_a_failed_check() {
        // null_fraction <= 0.05: 5% nulls pass, 6% fail.
        let nulls = ExpectKind::NullFraction(0.05);
        assert!(1.0 - 0.05 >= passing_score(&nulls));
        assert!(1.0 - 0.06 < passing_score(&nulls));
        // in_set >= 0.9.
        let set = ExpectKind::InSet(Vec::new(), 0.9);
        assert!(0.9 >= passing_score(&set) && 0.89 < passing_score(&set));
        // psi <= 0.1: the score is exp(-psi).
        let psi = ExpectKind::Psi {
            reference: sluice_project::Reference::Previous,
            bins: 10,
            max: 0.1,
        };
        assert!((-0.1f64).exp() >= passing_score(&psi));
        assert!((-0.11f64).exp() < passing_score(&psi));
        // Bounds: inside scores 1, outside less.
        let b = Bounds {
            min: Some(0.0),
            max: Some(30.0),
        };
        let mean = ExpectKind::Mean(b);
        assert!(range_score(30.0, &b) >= passing_score(&mean));
        assert!(range_score(30.5, &b) < passing_score(&mean));
    }
}
