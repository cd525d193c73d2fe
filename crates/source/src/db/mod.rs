//! Database sources: PostgreSQL (`postgres.rs`), MySQL and MariaDB
//! (`mysql.rs`) and SQLite (`sqlite.rs`)
//! read into Arrow record batches, streaming with bounded memory, behind one
//! DataFusion [`TableProvider`] ([`DbTable`]). The schema comes from the
//! query's description before any row is read. Filters of a column against a
//! literal are applied in the database with bound parameters (`filter.rs`);
//! `partitions = N` reads ranges of a column in parallel, one DataFusion
//! partition each. `sink.rs` holds the Arrow builders every connector fills.

mod filter;
mod mysql;
mod pg_errors;
mod pg_types;
mod postgres;
mod sink;
mod sqlite;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use sluice_project::{DatabaseDef, Engine};

use crate::Error;
pub(crate) use filter::{Condition, Literal};
pub(crate) use sink::{ArrowKind, Sink};

/// Rows per record batch read from a database.
pub(crate) const BATCH_ROWS: usize = 16_384;

/// One column of a database source: its name, its type in the database (for
/// messages and casts) and its Arrow type.
#[derive(Debug, Clone)]
pub(crate) struct DbColumn {
    pub(crate) name: String,
    pub(crate) db_type: String,
    pub(crate) kind: ArrowKind,
    /// Whether a comparison of this column with a literal means the same in
    /// the database as in DataFusion (text in byte order, numbers, times).
    pub(crate) pushable: bool,
}

/// What one partition reads: some columns of the source's query, under
/// conditions, within a range of the partition column.
#[derive(Debug, Clone, Default)]
pub(crate) struct Read {
    /// Indices of the columns read, in the source's schema.
    pub(crate) columns: Vec<usize>,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) range: Option<Range>,
    pub(crate) limit: Option<usize>,
}

/// A range of the partition column: `lo <= col < hi`, either end open; the
/// first range also takes the rows where the column is NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) column: String,
    pub(crate) lo: Option<i64>,
    pub(crate) hi: Option<i64>,
    pub(crate) nulls: bool,
}

/// A database the source reads from.
#[async_trait]
pub(crate) trait Backend: fmt::Debug + Send + Sync {
    /// The source's columns.
    fn columns(&self) -> &[DbColumn];
    /// Whether a literal written as text (date, timestamp, decimal) compares
    /// in the database exactly as in DataFusion.
    fn text_literals(&self) -> bool;
    /// The smallest and largest value of `column` among the rows `conditions`
    /// keep (`None`: no such rows).
    async fn min_max(
        &self,
        column: &str,
        conditions: &[Condition],
    ) -> Result<Option<(i64, i64)>, Error>;
    /// The rows of `read`, as batches of `schema`.
    fn stream(&self, read: Read, schema: SchemaRef) -> SendableRecordBatchStream;
}

/// A database source opened for reading: its columns are known.
#[derive(Debug, Clone)]
pub struct DbSource {
    backend: Arc<dyn Backend>,
    schema: SchemaRef,
    partitions: Option<(usize, String)>,
}

impl DbSource {
    /// Connects and describes the query of `def` (no row is read). `name` is
    /// the source's name, for messages.
    pub async fn open(name: &str, def: &DatabaseDef) -> Result<DbSource, Error> {
        let backend: Arc<dyn Backend> = match def.engine {
            Engine::Postgres => Arc::new(postgres::Postgres::open(name, def).await?),
            Engine::Sqlite => Arc::new(sqlite::Sqlite::open(name, def).await?),
            Engine::Mysql => Arc::new(mysql::Mysql::open(name, def).await?),
        };
        let mut fields = vec![];
        for c in backend.columns() {
            if fields.iter().any(|f: &Field| f.name() == &c.name) {
                return Err(Error::Database {
                    message: format!(
                        "source `{name}`: the query has two columns named `{}`\n  help: give one of them another name: `SELECT a.id, b.id AS b_id ...`",
                        c.name
                    ),
                    cause: None,
                });
            }
            fields.push(Field::new(&c.name, c.kind.data_type(), true));
        }
        let partitions = def.partitions.as_ref().map(|p| (p.count, p.column.clone()));
        if let Some((_, column)) = &partitions {
            let ok = backend.columns().iter().any(|c| {
                &c.name == column
                    && matches!(c.kind, ArrowKind::I16 | ArrowKind::I32 | ArrowKind::I64)
            });
            if !ok {
                return Err(Error::Database {
                    message: format!(
                        "source `{name}`: `partition_column` = `{column}` is not an integer column of the query\n  help: name an integer column (an id), or remove `partitions`"
                    ),
                    cause: None,
                });
            }
        }
        Ok(DbSource {
            backend,
            schema: Arc::new(Schema::new(fields)),
            partitions,
        })
    }

    /// The columns the source reads, as Arrow types.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The source as a DataFusion table.
    pub fn table_provider(&self) -> Arc<dyn TableProvider> {
        Arc::new(DbTable {
            source: self.clone(),
        })
    }
}

/// A database source as a DataFusion table: filters pushed down, one
/// partition per range of `partitions`.
#[derive(Debug)]
pub struct DbTable {
    source: DbSource,
}

impl DbTable {
    fn columns(&self) -> Vec<(String, Option<ArrowKind>)> {
        self.source
            .backend
            .columns()
            .iter()
            .map(|c| (c.name.clone(), c.pushable.then(|| c.kind.clone())))
            .collect()
    }
}

#[async_trait]
impl TableProvider for DbTable {
    fn schema(&self) -> SchemaRef {
        self.source.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let columns = self.columns();
        let text = self.source.backend.text_literals();
        Ok(filters
            .iter()
            .map(|f| match filter::conditions(f, &columns, text) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns = self.columns();
        let text = self.source.backend.text_literals();
        let mut conditions = vec![];
        for f in filters {
            // Only filters answered `Exact` reach here.
            let c = filter::conditions(f, &columns, text).ok_or_else(|| {
                DataFusionError::Internal(format!("a filter that cannot be pushed down: {f}"))
            })?;
            conditions.extend(c);
        }
        let all: Vec<usize> = (0..columns.len()).collect();
        let read_columns = projection.cloned().unwrap_or(all);
        let schema = Arc::new(self.source.schema.project(&read_columns)?);
        let ranges = match &self.source.partitions {
            Some((n, column)) if *n > 1 && limit.is_none() => {
                let bounds = self
                    .source
                    .backend
                    .min_max(column, &conditions)
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                split(column, *n, bounds)
            }
            _ => vec![None],
        };
        let partitions: Vec<Arc<dyn PartitionStream>> = ranges
            .into_iter()
            .map(|range| {
                Arc::new(DbPartition {
                    backend: self.source.backend.clone(),
                    schema: schema.clone(),
                    read: Read {
                        columns: read_columns.clone(),
                        conditions: conditions.clone(),
                        range,
                        limit,
                    },
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            partitions,
            None,
            vec![],
            false,
            limit,
        )?))
    }
}

/// `n` ranges of `column` between the bounds, the first open below (and
/// taking NULLs), the last open above, so that no row is left out.
fn split(column: &str, n: usize, bounds: Option<(i64, i64)>) -> Vec<Option<Range>> {
    let Some((lo, hi)) = bounds else {
        return vec![None];
    };
    let span = (i128::from(hi) - i128::from(lo) + 1).max(1);
    let n = (n as i128).min(span);
    let cut = |i: i128| (i128::from(lo) + span * i / n) as i64;
    (0..n)
        .map(|i| {
            Some(Range {
                column: column.to_string(),
                lo: (i > 0).then(|| cut(i)),
                hi: (i < n - 1).then(|| cut(i + 1)),
                nulls: i == 0,
            })
        })
        .collect()
}

/// One partition of a scan.
#[derive(Debug)]
struct DbPartition {
    backend: Arc<dyn Backend>,
    schema: SchemaRef,
    read: Read,
}

impl PartitionStream for DbPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.backend.stream(self.read.clone(), self.schema.clone())
    }
}

/// `SELECT cols FROM (query) AS q WHERE ...`: the conditions with
/// placeholders from `param` (given the parameter's number from 1 and the
/// column), the range with its integer bounds, the limit.
pub(crate) fn select_sql(
    engine: Engine,
    query: &str,
    columns: &[DbColumn],
    read: &Read,
    param: &dyn Fn(usize, &DbColumn) -> String,
) -> String {
    let q = |s: &str| engine.quote(s);
    let list = if read.columns.is_empty() {
        // Nothing to read but the rows: one constant column, dropped later.
        "1".to_string()
    } else {
        read.columns
            .iter()
            .map(|i| format!("q.{}", q(&columns[*i].name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut wheres = vec![];
    for (n, c) in read.conditions.iter().enumerate() {
        let column = &columns[c.column];
        wheres.push(format!(
            "q.{} {} {}",
            q(&column.name),
            c.op,
            param(n + 1, column)
        ));
    }
    if let Some(r) = &read.range {
        let col = format!("q.{}", q(&r.column));
        // The bounds are integers the database gave; written as numbers.
        let inside = match (r.lo, r.hi) {
            (Some(lo), Some(hi)) => format!("{col} >= {lo} AND {col} < {hi}"),
            (Some(lo), None) => format!("{col} >= {lo}"),
            (None, Some(hi)) => format!("{col} < {hi}"),
            (None, None) => "TRUE".to_string(),
        };
        wheres.push(if r.nulls {
            format!("({inside} OR {col} IS NULL)")
        } else {
            format!("({inside})")
        });
    }
    let mut sql = format!("SELECT {list} FROM ({query}) AS q");
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    if let Some(n) = read.limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_value_once() {
        let r = split("id", 4, Some((1, 10)));
        assert_eq!(r.len(), 4);
        let ranges: Vec<Range> = r.into_iter().flatten().collect();
        for v in -5..20i64 {
            let hits = ranges
                .iter()
                .filter(|r| r.lo.is_none_or(|lo| v >= lo) && r.hi.is_none_or(|hi| v < hi))
                .count();
            assert_eq!(hits, 1, "{v}");
        }
        assert!(ranges[0].nulls && !ranges[1].nulls);
        assert_eq!(
            split("id", 8, Some((5, 6))).len(),
            2,
            "no more ranges than values"
        );
        assert_eq!(split("id", 8, None), vec![None]);
        let wide = split("id", 3, Some((i64::MIN, i64::MAX)));
        assert_eq!(wide.len(), 3);
    }
}

#[cfg(test)]
mod live_tests;
