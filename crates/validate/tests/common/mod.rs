//! Running a contract over real data the way the runner does: the input plan's
//! partitions stream through the validated table, and the outcome is kept.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::error::Result;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use sluice_core::{DataType, Location};
use sluice_project::{Contract, ExpectKind, Expectation, Literal, RowRule, RuleKind, Severity};
use sluice_validate::{Finish, Finished, ValidationReport, Validator, validated_table};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A session with `flights` (testdata/contracts/flights.csv: 60 real flights of
/// 2013-01-01) and `weather` (examples/flights/data/weather.parquet: the hourly
/// weather at EWR, JFK and LGA in 2013), read in batches of `batch_size` rows.
pub async fn session(batch_size: usize) -> SessionContext {
    let config = datafusion::prelude::SessionConfig::new().with_batch_size(batch_size);
    let ctx = SessionContext::new_with_config(config);
    let flights = repo().join("testdata/contracts/flights.csv");
    ctx.register_csv(
        "flights",
        flights.to_str().expect("path"),
        CsvReadOptions::new(),
    )
    .await
    .expect("flights");
    let weather = repo().join("examples/flights/data/weather.parquet");
    ctx.register_parquet(
        "weather",
        weather.to_str().expect("path"),
        ParquetReadOptions::default(),
    )
    .await
    .expect("weather");
    ctx
}

/// What validating an asset gave.
pub struct Outcome {
    /// The report.
    pub report: ValidationReport,
    /// The published rows.
    pub published: RecordBatch,
    /// The quarantined rows, with `rule`, `column`, `reason` and `run_id`.
    pub quarantine: Option<RecordBatch>,
}

/// Validates the rows of `sql` against `contract`, as the runner's gate does.
pub async fn validate(ctx: &SessionContext, sql: &str, contract: &Contract) -> Result<Outcome> {
    let plan = ctx.sql(sql).await?.into_unoptimized_plan();
    let validator = Validator::prepare(ctx, "asset", 7, contract, &plan, Vec::new())
        .await
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let validator = Arc::new(validator);
    let physical = ctx.state().create_physical_plan(&plan).await?;
    let slot: Arc<Mutex<Option<Finished>>> = Arc::default();
    let finish: Finish = {
        let slot = slot.clone();
        Arc::new(move |finished| {
            *slot.lock().expect("slot") = Some(finished);
            Box::pin(async { Ok(()) })
        })
    };
    let schema = validator.output_schema();
    let quarantine_schema = validator.quarantine_schema();
    let table = validated_table(validator, physical, ctx.task_ctx(), finish)?;
    let batches = ctx.read_table(table)?.collect().await?;
    let published = concat_batches(&schema, &batches)?;
    let finished = slot
        .lock()
        .expect("slot")
        .take()
        .expect("every partition finished");
    let quarantine = (!finished.quarantine.is_empty())
        .then(|| concat_batches(&quarantine_schema, &finished.quarantine))
        .transpose()?;
    Ok(Outcome {
        report: finished.report,
        published,
        quarantine,
    })
}

/// One value of a batch as text (`null` for null).
pub fn value(batch: &RecordBatch, column: &str, row: usize) -> String {
    let c = batch.column_by_name(column).expect("column");
    if c.is_null(row) {
        "null".into()
    } else {
        array_value_to_string(c, row).expect("value")
    }
}

/// The values of one column, as text.
pub fn values(batch: &RecordBatch, column: &str) -> Vec<String> {
    (0..batch.num_rows())
        .map(|r| value(batch, column, r))
        .collect()
}

/// One number computed by DataFusion's own SQL, to check sluice's statistics
/// against.
pub async fn scalar(ctx: &SessionContext, sql: &str) -> f64 {
    let batches = ctx
        .sql(sql)
        .await
        .expect("sql")
        .collect()
        .await
        .expect("rows");
    let b = &batches[0];
    let v = datafusion::arrow::compute::cast(b.column(0), &DataType::Float64).expect("float");
    v.as_any()
        .downcast_ref::<datafusion::arrow::array::Float64Array>()
        .expect("float")
        .value(0)
}

fn at(line: usize) -> Location {
    Location::new("sluice.toml", line, 1)
}

/// A column rule.
pub fn rule(column: &str, kind: RuleKind, severity: Severity) -> RowRule {
    let word = match &kind {
        RuleKind::Type(..) => "type",
        RuleKind::Required => "required",
        RuleKind::Min(_) => "min",
        RuleKind::Max(_) => "max",
        RuleKind::Regex(_) => "regex",
        RuleKind::OneOf(_) => "one_of",
        RuleKind::MinLength(_) => "min_length",
        RuleKind::MaxLength(_) => "max_length",
        RuleKind::Unique => "unique",
        RuleKind::Sql(_) => panic!("use sql_rule"),
    };
    RowRule {
        rule: word.into(),
        column: Some(column.into()),
        kind,
        severity,
        location: at(10),
    }
}

/// `type = "<word>"` on a column.
pub fn type_rule(column: &str, word: &str) -> RowRule {
    let t = sluice_core::parse_type(word, "UTC").expect("a type word");
    rule(column, RuleKind::Type(word.into(), t), Severity::Quarantine)
}

/// A SQL rule.
pub fn sql_rule(name: &str, check: &str, severity: Severity) -> RowRule {
    RowRule {
        rule: name.into(),
        column: None,
        kind: RuleKind::Sql(check.into()),
        severity,
        location: at(20),
    }
}

/// An expectation named as the project file names it: `column.kind`.
pub fn expect(column: Option<&str>, kind: ExpectKind, severity: Severity) -> Expectation {
    let name = match column {
        Some(c) => format!("{c}.{}", kind.word()),
        None => kind.word().to_string(),
    };
    Expectation {
        name,
        column: column.map(str::to_string),
        kind,
        severity,
        location: at(30),
    }
}

/// A text literal.
pub fn text(s: &str) -> Literal {
    Literal::Str(s.into())
}
