//! The validator: runs a compiled contract over record batches, one partition at a
//! time. Each batch is split into published rows and quarantined rows with Arrow
//! kernels; expectations accumulate over the published rows; when the last
//! partition finishes, the totals become a [`ValidationReport`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    UInt32Array,
};
use datafusion::arrow::compute::{filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use sluice_project::{Contract, RuleKind, Severity};

use crate::judge::{failure, judge, sample};
use crate::repeated::repeated_values;
use crate::report::{CheckResult, ValidationReport, Verdict};
use crate::rules::{CompiledRule, compile_rules, output_schema, typed_schema, value_expr};
use crate::stats::{CompiledExpectation, ReferenceTable, References, Stats, compile_expectations};
use crate::{Error, Result};

/// The columns sluice adds to each quarantined row.
pub const QUARANTINE_COLUMNS: [&str; 4] = ["rule", "column", "reason", "run_id"];

/// How many example values a report keeps per broken rule.
const SAMPLES: usize = 5;

/// A contract compiled against an asset's input, ready to run over its partitions.
#[derive(Debug)]
pub struct Validator {
    asset: String,
    run_id: i64,
    input_schema: SchemaRef,
    /// The typed row the rules (but `type`) read.
    typed_schema: SchemaRef,
    output_schema: SchemaRef,
    quarantine_schema: SchemaRef,
    rules: Vec<CompiledRule>,
    outputs: Vec<Arc<dyn PhysicalExpr>>,
    expectations: Vec<CompiledExpectation>,
    references: References,
    /// Whether any rule quarantines rows.
    quarantines: bool,
    /// Per rule: its name and column as one-row-per-rule arrays, for `take`.
    labels: [ArrayRef; 2],
    open_partitions: AtomicUsize,
    totals: Mutex<Option<Totals>>,
}

/// What one partition (or, merged, all of them) saw.
#[derive(Debug)]
struct Totals {
    rows_in: u64,
    rows_out: u64,
    rows_quarantined: u64,
    broken: Vec<u64>,
    /// Per rule: rows it broke because it could not be evaluated on them.
    failed: Vec<u64>,
    /// Per rule: the first such row and the engine's error.
    first_failure: Vec<Option<String>>,
    samples: Vec<Vec<String>>,
    quarantine: Vec<RecordBatch>,
    stats: Stats,
}

impl Totals {
    fn merge(&mut self, other: Totals, expectations: &[CompiledExpectation]) -> Result<()> {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        self.rows_quarantined += other.rows_quarantined;
        for (a, b) in self.broken.iter_mut().zip(other.broken) {
            *a += b;
        }
        for (a, b) in self.failed.iter_mut().zip(other.failed) {
            *a += b;
        }
        for (a, b) in self.first_failure.iter_mut().zip(other.first_failure) {
            if a.is_none() {
                *a = b;
            }
        }
        for (a, b) in self.samples.iter_mut().zip(other.samples) {
            a.extend(b.into_iter().take(SAMPLES.saturating_sub(a.len())));
        }
        self.quarantine.extend(other.quarantine);
        self.stats.merge(other.stats, expectations)
    }
}

/// The outcome of validating every partition.
#[derive(Debug)]
pub struct Finished {
    /// The report.
    pub report: ValidationReport,
    /// The rejected rows, with the quarantine columns.
    pub quarantine: Vec<RecordBatch>,
}

impl Validator {
    /// Compiles `contract` against the schema of `input` without running anything
    /// (for `sluice check`), returning the schema of the rows it would publish.
    pub fn check(
        ctx: &SessionContext,
        contract: &Contract,
        input: &SchemaRef,
    ) -> Result<SchemaRef> {
        let v = Self::compile(
            ctx,
            "",
            0,
            contract,
            input,
            &|_| None,
            References::default(),
        )?;
        Ok(v.output_schema)
    }

    /// Prepares the validation of `input` (the asset's rows before the contract):
    /// values that break `unique` are found first, with one extra pass over the
    /// input, and drift references are read.
    pub async fn prepare(
        ctx: &SessionContext,
        asset: &str,
        run_id: i64,
        contract: &Contract,
        input: &LogicalPlan,
        references: Vec<ReferenceTable>,
    ) -> Result<Self> {
        let schema: SchemaRef = Arc::new(input.schema().as_arrow().clone());
        let mut unique: Vec<&str> = Vec::new();
        for rule in &contract.rules {
            if let (RuleKind::Unique, Some(column)) = (&rule.kind, &rule.column)
                && schema.field_with_name(column).is_ok()
                && !unique.contains(&column.as_str())
            {
                unique.push(column);
            }
        }
        let values: Vec<_> = unique
            .iter()
            .map(|c| value_expr(&contract.rules, c))
            .collect();
        let found = repeated_values(ctx, input, &values)
            .await
            .map_err(|source| Error::FindRepeated {
                column: unique.join("`, `"),
                source,
            })?;
        let duplicates: BTreeMap<String, ArrayRef> =
            unique.iter().map(|c| c.to_string()).zip(found).collect();
        let references = References::read(ctx, contract, references).await?;
        Self::compile(
            ctx,
            asset,
            run_id,
            contract,
            &schema,
            &|c| duplicates.get(c).cloned(),
            references,
        )
    }

    fn compile(
        ctx: &SessionContext,
        asset: &str,
        run_id: i64,
        contract: &Contract,
        input: &SchemaRef,
        duplicates: &dyn Fn(&str) -> Option<ArrayRef>,
        references: References,
    ) -> Result<Self> {
        let state = ctx.state();
        let typed_schema = typed_schema(&contract.rules, input);
        let rules = compile_rules(&contract.rules, input, &typed_schema, &state, duplicates)?;
        let output_schema = output_schema(&contract.rules, input);
        let df_schema = DFSchema::try_from(input.as_ref().clone())
            .map_err(|source| Error::Schema { source })?;
        let outputs = input
            .fields()
            .iter()
            .map(|f| {
                state
                    .create_physical_expr(value_expr(&contract.rules, f.name()), &df_schema)
                    .map_err(|source| Error::ConvertColumns {
                        column: f.name().clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let expectations = compile_expectations(&contract.expectations, &output_schema, &state)?;
        let quarantines = contract.quarantines();
        if quarantines {
            for name in QUARANTINE_COLUMNS {
                if input.field_with_name(name).is_ok() {
                    let at = rules
                        .iter()
                        .find(|r| r.rule.severity == Severity::Quarantine)
                        .map(|r| r.rule.location.clone())
                        .unwrap_or_else(|| sluice_core::Location::new("", 0, 0));
                    return Err(Error::compile(
                        &at,
                        format!(
                            "the asset has a column named `{name}`, which its quarantine table adds"
                        ),
                        "rename the column (`AS`, or `names` for a CSV source), or give the rules `severity = \"error\"` or `\"warn\"`",
                    ));
                }
            }
        }
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        let [rule_field, column_field, reason_field, run_field] = QUARANTINE_COLUMNS;
        fields.push(Field::new(rule_field, DataType::Utf8, false));
        fields.push(Field::new(column_field, DataType::Utf8, true));
        fields.push(Field::new(reason_field, DataType::Utf8, false));
        fields.push(Field::new(run_field, DataType::Int64, false));
        let labels: [ArrayRef; 2] = [
            Arc::new(StringArray::from_iter_values(
                rules.iter().map(|r| r.rule.rule.clone()),
            )),
            Arc::new(StringArray::from_iter(
                rules.iter().map(|r| r.rule.column.clone()),
            )),
        ];
        Ok(Self {
            asset: asset.to_string(),
            run_id,
            input_schema: input.clone(),
            typed_schema,
            output_schema,
            quarantine_schema: Arc::new(Schema::new(fields)),
            rules,
            outputs,
            expectations,
            references,
            quarantines,
            labels,
            open_partitions: AtomicUsize::new(0),
            totals: Mutex::new(None),
        })
    }

    /// The schema of the input rows.
    pub fn input_schema(&self) -> SchemaRef {
        self.input_schema.clone()
    }

    /// The schema of the published rows.
    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// The schema of the quarantine table.
    pub fn quarantine_schema(&self) -> SchemaRef {
        self.quarantine_schema.clone()
    }

    /// Whether any rule quarantines rows (the asset then has a quarantine table).
    pub fn quarantines(&self) -> bool {
        self.quarantines
    }

    /// Starts validating `n` partitions; the report is made when the last of them
    /// finishes.
    pub fn partitions(self: &Arc<Self>, n: usize) -> Vec<PartitionValidator> {
        self.open_partitions.store(n, Ordering::SeqCst);
        (0..n)
            .map(|_| PartitionValidator {
                validator: self.clone(),
                totals: Some(self.empty_totals()),
            })
            .collect()
    }

    /// The typed row of each input row: every column as its `type` rule
    /// converts it (null where it does not convert).
    fn typed(&self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let n = batch.num_rows();
        let columns = self
            .outputs
            .iter()
            .zip(self.typed_schema.fields())
            .map(|(e, f)| {
                e.evaluate(batch)
                    .and_then(|v| v.into_array(n))
                    .map_err(|e| e.context(format!("converting column `{}`", f.name())))
            })
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.typed_schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?)
    }

    fn empty_totals(&self) -> Totals {
        Totals {
            rows_in: 0,
            rows_out: 0,
            rows_quarantined: 0,
            broken: vec![0; self.rules.len()],
            failed: vec![0; self.rules.len()],
            first_failure: vec![None; self.rules.len()],
            samples: vec![Vec::new(); self.rules.len()],
            quarantine: Vec::new(),
            stats: Stats::new(&self.expectations),
        }
    }

    fn report(&self, totals: Totals) -> Result<Finished> {
        let mut checks = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let broken = totals.broken[i];
            let passed = totals.rows_in - broken;
            checks.push(CheckResult {
                name: r.rule.check_name(),
                rule: r.rule.rule.clone(),
                column: r.rule.column.clone(),
                severity: r.rule.severity,
                observed: Some(broken as f64),
                detail: match (broken, &totals.first_failure[i]) {
                    (0, _) => "no row breaks it".to_string(),
                    (_, Some(first)) => format!(
                        "{broken} of {} rows: {} ({} of them because it {first}{})",
                        totals.rows_in,
                        r.reason,
                        totals.failed[i],
                        if totals.failed[i] > 1 {
                            ", and others"
                        } else {
                            ""
                        }
                    ),
                    (_, None) => format!("{broken} of {} rows: {}", totals.rows_in, r.reason),
                },
                threshold: "0 rows".to_string(),
                score: if totals.rows_in == 0 {
                    1.0
                } else {
                    passed as f64 / totals.rows_in as f64
                },
                verdict: if broken == 0 {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                failing_rows: Some(broken),
                samples: totals.samples[i].clone(),
                histogram: None,
            });
        }
        checks.extend(totals.stats.evaluate(
            &self.expectations,
            totals.rows_out,
            &self.references,
            Utc::now(),
        ));
        Ok(Finished {
            report: ValidationReport {
                asset: self.asset.clone(),
                run_id: self.run_id,
                created_at: Utc::now(),
                rows_in: totals.rows_in,
                rows_out: totals.rows_out,
                rows_quarantined: totals.rows_quarantined,
                checks,
            },
            quarantine: totals.quarantine,
        })
    }
}

/// Validates the batches of one partition.
#[derive(Debug)]
pub struct PartitionValidator {
    validator: Arc<Validator>,
    totals: Option<Totals>,
}

impl PartitionValidator {
    /// Validates one batch; returns the rows to publish, converted to the output schema.
    pub fn process(&mut self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let v = &self.validator;
        let totals = self
            .totals
            .as_mut()
            .ok_or_else(|| DataFusionError::Internal("partition already finished".into()))?;
        let n = batch.num_rows();
        totals.rows_in += n as u64;
        let typed = v.typed(batch)?;
        // The first quarantine rule each row breaks, u32::MAX for none, and for
        // a row that rule could not be evaluated on, why.
        let mut first: Option<Vec<u32>> = None;
        let mut failures: BTreeMap<usize, String> = BTreeMap::new();
        for (i, rule) in v.rules.iter().enumerate() {
            let judged = judge(&rule.keeps, if rule.typed { &typed } else { batch })
                .map_err(|e| e.context(format!("contract rule `{}`", rule.rule.check_name())))?;
            let keeps = &judged.keeps;
            let mut broken = !keeps.values();
            if let Some(valid) = keeps.nulls() {
                broken = &broken & valid.inner();
            }
            let count = broken.count_set_bits();
            if count == 0 {
                continue;
            }
            totals.broken[i] += count as u64;
            totals.failed[i] += judged.failures.len() as u64;
            if totals.first_failure[i].is_none()
                && let Some((row, e)) = judged.failures.first()
            {
                totals.first_failure[i] = Some(failure(batch, rule, *row, e));
            }
            let samples = &mut totals.samples[i];
            for row in broken
                .set_indices()
                .take(SAMPLES.saturating_sub(samples.len()))
            {
                samples.push(sample(batch, rule, row));
            }
            if rule.rule.severity == Severity::Quarantine {
                let first = first.get_or_insert_with(|| vec![u32::MAX; n]);
                for row in broken.set_indices() {
                    if first[row] == u32::MAX {
                        first[row] = i as u32;
                    }
                }
                for (row, e) in &judged.failures {
                    if first[*row] == i as u32 {
                        failures.insert(*row, failure(batch, rule, *row, e));
                    }
                }
            }
        }
        let passed = match first {
            None => typed,
            Some(first) => {
                let rejected = UInt32Array::from(
                    first
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| **r != u32::MAX)
                        .map(|(row, _)| row as u32)
                        .collect::<Vec<u32>>(),
                );
                let rule_of = UInt32Array::from(
                    rejected
                        .values()
                        .iter()
                        .map(|row| first[*row as usize])
                        .collect::<Vec<u32>>(),
                );
                let mut columns: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .map(|c| take(c.as_ref(), &rejected, None))
                    .collect::<std::result::Result<_, _>>()?;
                for label in &v.labels {
                    columns.push(take(label.as_ref(), &rule_of, None)?);
                }
                let reasons: StringArray = rejected
                    .values()
                    .iter()
                    .zip(rule_of.values())
                    .map(|(row, rule)| {
                        Some(
                            failures
                                .remove(&(*row as usize))
                                .unwrap_or_else(|| v.rules[*rule as usize].reason.clone()),
                        )
                    })
                    .collect();
                columns.push(Arc::new(reasons));
                columns.push(Arc::new(Int64Array::from_value(v.run_id, rejected.len())));
                totals.rows_quarantined += rejected.len() as u64;
                totals
                    .quarantine
                    .push(RecordBatch::try_new(v.quarantine_schema.clone(), columns)?);
                let keep: BooleanArray = first.iter().map(|r| Some(*r == u32::MAX)).collect();
                filter_record_batch(&typed, &keep)?
            }
        };
        let out = RecordBatch::try_new_with_options(
            v.output_schema.clone(),
            passed.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(passed.num_rows())),
        )?;
        totals.rows_out += out.num_rows() as u64;
        totals.stats.update(&v.expectations, &out)?;
        Ok(out)
    }

    /// Ends the partition. The last partition to finish gets the report.
    pub fn finish(mut self) -> Result<Option<Finished>> {
        let v = self.validator.clone();
        let Some(mine) = self.totals.take() else {
            return Ok(None);
        };
        let mut shared = v
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match shared.as_mut() {
            Some(t) => t.merge(mine, &v.expectations)?,
            None => *shared = Some(mine),
        }
        if v.open_partitions.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Ok(None);
        }
        let totals = shared.take().unwrap_or_else(|| v.empty_totals());
        drop(shared);
        v.report(totals).map(Some)
    }
}
