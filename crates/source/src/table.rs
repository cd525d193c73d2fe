//! A file source as a DataFusion table: one partition per file, each read on a
//! blocking thread, reading and converting only the columns a query uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};

use crate::Error;
use crate::convert::{Conversion, Mismatch, convert};
use crate::file::FileSource;
use crate::readers::{Reader, SharedReader};

/// The source as a DataFusion table whose scans read only the projected
/// columns (a `unique` rule's extra pass reads one column, not every one).
#[derive(Debug)]
pub(crate) struct FileTable {
    source: FileSource,
}

impl FileTable {
    pub(crate) fn new(source: FileSource) -> Self {
        Self { source }
    }
}

#[async_trait]
impl TableProvider for FileTable {
    fn schema(&self) -> SchemaRef {
        self.source.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let partitions = partitions(&self.source, projection)?;
        let schema = match projection {
            Some(p) => Arc::new(self.source.schema.project(p)?),
            None => self.source.schema.clone(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            partitions,
            None,
            Vec::<LexOrdering>::new(),
            false,
            limit,
        )?))
    }
}

/// The columns a scan reads: their indices in the file (`None`: all), and the
/// source's schemas and conversions narrowed to them.
#[derive(Debug, Clone)]
struct Columns {
    projection: Option<Arc<Vec<usize>>>,
    /// The schema the reader reads the whole file with.
    read_schema: SchemaRef,
    /// Indices are positions among the projected columns.
    conversions: Arc<Vec<Conversion>>,
    converted_schema: SchemaRef,
    schema: SchemaRef,
}

impl Columns {
    fn new(source: &FileSource, projection: Option<&Vec<usize>>) -> Result<Self, DataFusionError> {
        let Some(p) = projection else {
            return Ok(Self {
                projection: None,
                read_schema: source.read_schema.clone(),
                conversions: source.conversions.clone(),
                converted_schema: source.converted_schema.clone(),
                schema: source.schema.clone(),
            });
        };
        let conversions = p
            .iter()
            .enumerate()
            .filter_map(|(at, i)| {
                source
                    .conversions
                    .iter()
                    .find(|c| c.index == *i)
                    .map(|c| Conversion {
                        index: at,
                        ..c.clone()
                    })
            })
            .collect();
        Ok(Self {
            projection: Some(Arc::new(p.clone())),
            read_schema: source.read_schema.clone(),
            conversions: Arc::new(conversions),
            converted_schema: Arc::new(source.converted_schema.project(p)?),
            schema: Arc::new(source.schema.project(p)?),
        })
    }

    /// The column's index in the file (0-based) of projected column `at`.
    fn in_file(&self, at: usize) -> usize {
        self.projection.as_ref().map_or(at, |p| p[at])
    }
}

/// One partition per file, yielding the columns `projection` lists (all
/// when `None`).
fn partitions(
    source: &FileSource,
    projection: Option<&Vec<usize>>,
) -> Result<Vec<Arc<dyn PartitionStream>>, DataFusionError> {
    let columns = Columns::new(source, projection)?;
    Ok(source
        .files
        .iter()
        .map(|path| {
            Arc::new(FilePartition {
                path: path.clone(),
                reader: source.reader.clone(),
                columns: columns.clone(),
            }) as _
        })
        .collect())
}

/// One file as a partition of a [`StreamingTable`]: Arrow's synchronous reader
/// runs on a blocking thread and hands batches over a bounded channel.
#[derive(Debug)]
struct FilePartition {
    path: PathBuf,
    reader: SharedReader,
    columns: Columns,
}

impl PartitionStream for FilePartition {
    fn schema(&self) -> &SchemaRef {
        &self.columns.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let columns = self.columns.clone();
        let mut builder = RecordBatchReceiverStream::builder(columns.schema.clone(), 2);
        let tx = builder.tx();
        let path = self.path.clone();
        let reader = self.reader.clone();
        builder.spawn_blocking(move || {
            let mut failed = None;
            let mut records = 0;
            let result = reader.read_columns(
                &path,
                &columns.read_schema,
                columns.projection.as_deref().map(Vec::as_slice),
                &mut |batch| {
                    let rows = batch.num_rows();
                    let batch =
                        match convert(&columns.conversions, batch, &columns.converted_schema) {
                            Ok(b) => b,
                            Err(m) => {
                                failed = Some(DataFusionError::External(Box::new(mismatch_error(
                                    &reader, &path, &columns, records, m,
                                ))));
                                return false;
                            }
                        };
                    records += rows;
                    let batch = if columns.converted_schema == columns.schema {
                        Ok(batch)
                    } else {
                        relabel(batch, &columns.schema)
                    };
                    match batch {
                        Ok(b) => tx.blocking_send(Ok(b)).is_ok(),
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    }
                },
            );
            if let Some(e) = failed {
                return Err(e);
            }
            result.map_err(|e| DataFusionError::External(Box::new(e)))
        });
        builder.build()
    }
}

/// A value that does not match its column's format, at its place in the file.
fn mismatch_error(
    reader: &Reader,
    path: &Path,
    columns: &Columns,
    records_before: usize,
    m: Mismatch,
) -> Error {
    let record = records_before + m.row;
    let line = reader.line_of_record(path, record);
    let Some(c) = columns.conversions.iter().find(|c| c.index == m.index) else {
        unreachable!("a mismatch comes from one of the conversions");
    };
    let whereabouts = if line == 0 {
        format!(" (record {})", record + 1)
    } else {
        String::new()
    };
    let (message, help) = c.explain(&m.value);
    Error::Read {
        path: path.to_path_buf(),
        line,
        column: columns.in_file(m.index) + 1,
        message: format!("{message}{whereabouts}"),
        help: Some(help),
        source: None,
    }
}

/// Casts a batch to `schema` (only time zone labels differ, so this is cheap).
fn relabel(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                datafusion::arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
