//! Failing expectations on real data: each test plants nothing, sets a bound the
//! real rows break, and checks the verdict and the observed value against the
//! same statistic computed by DataFusion's own SQL (or counted by hand).

mod common;

use common::*;
use sluice_project::{Bounds, Contract, ExpectKind, Severity};
use sluice_validate::{CheckResult, Verdict};

/// Validates `sql` with one expectation and returns its check.
async fn one(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
    column: Option<&str>,
    kind: ExpectKind,
) -> (CheckResult, Outcome) {
    let contract = Contract {
        rules: Vec::new(),
        expectations: vec![expect(column, kind, Severity::Error)],
    };
    let out = validate(ctx, sql, &contract).await.expect("validates");
    assert_eq!(out.report.checks.len(), 1);
    (out.report.checks[0].clone(), out)
}

fn assert_failed(check: &CheckResult, out: &Outcome, observed: f64) {
    assert_eq!(check.verdict, Verdict::Fail, "{check:?}");
    let got = check.observed.expect("an observed value");
    assert!(
        (got - observed).abs() <= 1e-9 * observed.abs().max(1.0),
        "{}: observed {got}, expected {observed}",
        check.name
    );
    assert!(check.score < 1.0, "{check:?}");
    // An error check closes the gate, naming itself.
    let gate = out.report.gate_message().expect("the gate closes");
    assert!(gate.contains(&check.name), "{gate}");
    // Expectations judge; they do not drop rows.
    assert_eq!(out.report.rows_in, out.report.rows_out);
}

fn at_most(max: f64) -> Bounds {
    Bounds {
        min: None,
        max: Some(max),
    }
}

#[tokio::test]
async fn failing_stddev_expectation_reports_the_sample_standard_deviation() {
    let ctx = session(8192).await;
    let (check, out) = one(
        &ctx,
        "SELECT * FROM flights",
        Some("arr_delay"),
        ExpectKind::Stddev(at_most(10.0)),
    )
    .await;
    let sql = scalar(&ctx, "SELECT stddev_samp(arr_delay) FROM flights").await;
    assert!(
        sql > 10.0,
        "the real delays spread more than 10 minutes: {sql}"
    );
    assert_failed(&check, &out, sql);
    assert_eq!(check.threshold, "<= 10");
}

#[tokio::test]
async fn failing_stddev_expectation_merges_partitions_and_batches_exactly() {
    // Seven-row batches: the moments are merged batch by batch (Chan et al.).
    let ctx = session(7).await;
    let (check, out) = one(
        &ctx,
        "SELECT * FROM flights",
        Some("dep_delay"),
        ExpectKind::Stddev(at_most(1.0)),
    )
    .await;
    let sql = scalar(&ctx, "SELECT stddev_samp(dep_delay) FROM flights").await;
    assert_failed(&check, &out, sql);
}

#[tokio::test]
async fn failing_distinct_count_expectation_counts_each_carrier_once() {
    let ctx = session(8192).await;
    let (check, out) = one(
        &ctx,
        "SELECT * FROM flights",
        Some("carrier"),
        ExpectKind::DistinctCount(at_most(5.0)),
    )
    .await;
    // By hand: AA, B6, DL, EV, MQ, UA, US and WN fly in the first 60 flights.
    assert_eq!(
        scalar(&ctx, "SELECT count(DISTINCT carrier) FROM flights").await,
        8.0
    );
    assert_failed(&check, &out, 8.0);
    assert_eq!(check.detail, "the number of distinct values is 8");
}

#[tokio::test]
async fn failing_in_set_expectation_reports_the_share_in_the_set() {
    let ctx = session(8192).await;
    let big_four = ["AA", "B6", "DL", "UA"].map(text).to_vec();
    let (check, out) = one(
        &ctx,
        "SELECT * FROM flights",
        Some("carrier"),
        ExpectKind::InSet(big_four, 0.9),
    )
    .await;
    // By hand: 10 AA + 15 B6 + 8 DL + 14 UA of 60 flights.
    let sql = scalar(
        &ctx,
        "SELECT avg(CASE WHEN carrier IN ('AA', 'B6', 'DL', 'UA') THEN 1.0 ELSE 0.0 END) FROM flights",
    )
    .await;
    assert!((sql - 47.0 / 60.0).abs() < 1e-12, "{sql}");
    assert_failed(&check, &out, 47.0 / 60.0);
    assert_eq!(check.detail, "47 of 60 values are in the set (78.33%)");
    assert_eq!(check.threshold, ">= 0.9");
}

#[tokio::test]
async fn failing_row_count_expectation_reports_the_rows_published() {
    let ctx = session(8192).await;
    let (check, out) = one(
        &ctx,
        "SELECT * FROM flights",
        None,
        ExpectKind::RowCount(Bounds {
            min: Some(100.0),
            max: None,
        }),
    )
    .await;
    assert_eq!(scalar(&ctx, "SELECT count(*) FROM flights").await, 60.0);
    assert_failed(&check, &out, 60.0);
    assert_eq!(check.detail, "the row count is 60");
    // 40 rows short of 100: the score falls with the distance.
    assert!((check.score - 1.0 / (1.0 + 40.0 / 100.0)).abs() < 1e-12);
}

#[tokio::test]
async fn failing_null_fraction_expectation_reports_the_share_of_nulls() {
    let ctx = session(8192).await;
    // Gusts are recorded in few of the hourly weather observations.
    let (check, out) = one(
        &ctx,
        "SELECT origin, time_hour, wind_gust FROM weather",
        Some("wind_gust"),
        ExpectKind::NullFraction(0.1),
    )
    .await;
    let sql = scalar(
        &ctx,
        "SELECT CAST(count(*) - count(wind_gust) AS DOUBLE) / count(*) FROM weather",
    )
    .await;
    assert!(sql > 0.1, "{sql}");
    assert_failed(&check, &out, sql);
    assert!((check.score - (1.0 - sql)).abs() < 1e-12);
}

#[tokio::test]
async fn failing_quantile_expectation_reports_the_interpolated_quantile() {
    let ctx = session(8192).await;
    let (check, out) = one(
        &ctx,
        "SELECT * FROM flights",
        Some("arr_delay"),
        ExpectKind::Quantile(0.9, at_most(10.0)),
    )
    .await;
    // Linear interpolation between the closest ranks, as numpy and SQL's
    // percentile_cont define it.
    let sql = scalar(
        &ctx,
        "SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY arr_delay) FROM flights",
    )
    .await;
    assert!(sql > 10.0, "{sql}");
    assert_failed(&check, &out, sql);
    assert_eq!(check.detail, format!("the 0.9 quantile is {sql:.4}"));
}
