//! How a write changes an asset's table ([`WriteMode`]), and what every
//! write of the offline store shares: the Parquet settings, sluice's commit
//! metadata, the column check, and the casts to types Delta holds.

use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Partitioning, cast};
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::parquet::basic::{Compression, ZstdLevel};
use deltalake_core::parquet::file::properties::WriterProperties;
use deltalake_core::{DeltaTable, DeltaTableError};

use crate::offline::{COMMIT_KEY, CommitMeta};
use crate::types::delta_type;

/// How a write changes the table.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// The rows replace the whole table (its columns may change).
    Whole,
    /// The rows replace those matching the predicate (one partition); every
    /// row written must match it.
    Where(Expr),
    /// The rows are added to the table.
    Append,
    /// The rows are merged into the table by the key columns: a row whose key
    /// is in the table replaces that row (unless `insert_only`), others are
    /// added. The rows' keys must be unique and not null.
    Merge {
        /// The key columns.
        keys: Vec<String>,
        /// Rows whose key is in the table are left out, not replaced.
        insert_only: bool,
    },
}

/// How sluice writes Parquet files: zstd at level 1, the default of arrow-rs,
/// Arrow C++ (pyarrow) and sluice's exports. Level 3 spent a third of the CPU
/// of writing 10M validated rows in zstd's `doubleFast` matcher.
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build()
}

/// A commit carrying sluice's provenance, and `more` beside it.
pub(crate) fn commit_properties(
    meta: &CommitMeta,
    more: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> Result<CommitProperties, DeltaTableError> {
    let sluice = serde_json::to_value(meta).map_err(DeltaTableError::from)?;
    Ok(CommitProperties::default()
        .with_metadata(std::iter::once((COMMIT_KEY.to_string(), sluice)).chain(more)))
}

/// Whether `table` holds the columns of `schema`, by name and type, in order.
pub(crate) fn same_columns(
    table: &DeltaTable,
    schema: &datafusion::arrow::datatypes::Schema,
) -> bool {
    table.snapshot().is_ok_and(|s| {
        let have = s.snapshot().arrow_schema();
        have.fields().len() == schema.fields().len()
            && have
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
    })
}

/// Casts the plan's columns to types Delta can hold, where they differ.
pub(crate) fn storable(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    let schema = plan.schema().clone();
    let needs_cast = schema
        .fields()
        .iter()
        .any(|f| delta_type(f.data_type()) != *f.data_type());
    if !needs_cast {
        return Ok(plan);
    }
    let exprs: Vec<Expr> = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::from((qualifier, field)));
            let target = delta_type(field.data_type());
            if target == *field.data_type() {
                column
            } else {
                cast(column, target).alias(field.name())
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// `plan` beneath its projections and aliases (and limits, with `limits`).
fn beneath_projections(plan: &LogicalPlan, limits: bool) -> &LogicalPlan {
    match plan {
        LogicalPlan::Projection(p) => beneath_projections(&p.input, limits),
        LogicalPlan::SubqueryAlias(a) => beneath_projections(&a.input, limits),
        LogicalPlan::Limit(l) if limits => beneath_projections(&l.input, limits),
        other => other,
    }
}

/// Whether `plan` ends in `ORDER BY` (under projections, aliases and limits).
pub(crate) fn sorted(plan: &LogicalPlan) -> bool {
    matches!(beneath_projections(plan, true), LogicalPlan::Sort(_))
}

/// Whether `plan` deals its rows out round-robin at its top (under
/// projections and aliases): a source read from fewer files than cores asks
/// so, and DataFusion's optimizer drops that repartition when nothing above
/// the scan needs it.
pub(crate) fn spread_asked(plan: &LogicalPlan) -> bool {
    matches!(
        beneath_projections(plan, false),
        LogicalPlan::Repartition(r)
            if matches!(r.partitioning_scheme, Partitioning::RoundRobinBatch(_))
    )
}
