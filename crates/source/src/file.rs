//! A file source: the files a `[sources.NAME]` entry matches, their inferred or
//! declared schema, a content hash for staleness, and a DataFusion table that
//! streams them, one partition per file.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use sluice_project::{FileFormat, SourceDef};

use crate::readers::{CsvOptions, Reader, SharedReader};
use crate::{Error, Result};
use sluice_core::{parse_type, timestamp_in};

/// Records read to infer types when the project does not say.
const DEFAULT_INFER_ROWS: usize = 10_000;

/// The files of one source, ready to be read.
#[derive(Clone)]
pub struct FileSource {
    files: Vec<PathBuf>,
    reader: SharedReader,
    /// The schema the readers produce (timestamps in the source's time zone).
    read_schema: SchemaRef,
    /// The schema the table exposes (timestamps in UTC).
    schema: SchemaRef,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("files", &self.files)
            .field("schema", &self.schema)
            .finish()
    }
}

impl FileSource {
    /// Lists the source's files and works out its schema: declared column types
    /// first, inference for the rest.
    pub fn open(def: &SourceDef) -> Result<Self> {
        let files = def.files().map_err(|message| Error::ListFiles {
            pattern: def.pattern.display().to_string(),
            message,
        })?;
        let Some(first) = files.first() else {
            return Err(Error::NoFiles {
                pattern: def.pattern.display().to_string(),
            });
        };
        let config = &def.config;
        let timezone = config.timezone.clone().unwrap_or_else(|| "UTC".to_string());
        let reader = match def.format {
            FileFormat::Csv => {
                let tsv = first
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
                let default_delimiter = if tsv { '\t' } else { ',' };
                let null_regex = if config.null.is_empty() {
                    None
                } else {
                    let alternatives: Vec<_> =
                        config.null.iter().map(|s| regex::escape(s)).collect();
                    Some(
                        regex::Regex::new(&format!("^(?:{}|)$", alternatives.join("|")))
                            .expect("escaped alternatives always form a valid regex"),
                    )
                };
                Reader::Csv(CsvOptions {
                    header: config.header.unwrap_or(true),
                    delimiter: config.delimiter.unwrap_or(default_delimiter) as u8,
                    quote: config.quote.unwrap_or('"') as u8,
                    null_regex,
                })
            }
            FileFormat::Json => Reader::Json,
            FileFormat::Parquet => Reader::Parquet,
        };
        let infer_rows = match config.infer_rows {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(DEFAULT_INFER_ROWS),
        };
        let inferred = reader.infer(first, infer_rows)?;
        // Every file is read with the first file's schema: make sure they agree.
        let first_header = match &reader {
            Reader::Csv(o) if o.header => Some(crate::readers::header_line(first)?),
            _ => None,
        };
        for other in &files[1..] {
            reader.check_same_columns(other, first_header.as_deref(), &inferred)?;
        }
        let mut fields: Vec<Field> = inferred
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        if let Some(names) = &config.names {
            if names.len() != fields.len() {
                return Err(Error::SchemaMismatch {
                    path: first.clone(),
                    message: format!(
                        "`names` lists {} columns but the file has {}",
                        names.len(),
                        fields.len()
                    ),
                });
            }
            for (f, n) in fields.iter_mut().zip(names) {
                *f = f.clone().with_name(n);
            }
        }
        let mut declared = vec![false; fields.len()];
        for (column, word) in &config.columns {
            let ty = parse_type(word, &timezone).ok_or_else(|| Error::UnknownType {
                column: column.clone(),
                word: word.clone(),
            })?;
            let Some(i) = fields.iter().position(|f| f.name() == column) else {
                return Err(Error::UnknownColumn {
                    path: first.clone(),
                    column: column.clone(),
                    available: fields
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            fields[i] = fields[i].clone().with_data_type(ty);
            declared[i] = true;
        }
        for (f, declared) in fields.iter_mut().zip(&declared) {
            let ty = match f.data_type() {
                DataType::Timestamp(_, _) => timestamp_in(&timezone),
                DataType::Null => DataType::Utf8,
                other => other.clone(),
            };
            if !declared {
                *f = f.clone().with_data_type(ty).with_nullable(true);
            }
        }
        let read_schema = Arc::new(Schema::new(fields));
        let read_schema = refine_timestamps(&reader, first, read_schema, &declared, &timezone)?;
        let schema = Arc::new(Schema::new(
            read_schema
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Timestamp(unit, Some(_)) => f
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::Timestamp(*unit, Some(Arc::from("UTC")))),
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            files,
            reader: Arc::new(reader),
            read_schema,
            schema,
        })
    }

    /// The files read, sorted.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The schema of the rows the source yields.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// A table that streams the files, one partition per file.
    pub fn table_provider(&self) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        let partitions: Vec<Arc<dyn PartitionStream>> = self
            .files
            .iter()
            .map(|path| {
                Arc::new(FilePartition {
                    path: path.clone(),
                    reader: self.reader.clone(),
                    read_schema: self.read_schema.clone(),
                    schema: self.schema.clone(),
                }) as _
            })
            .collect();
        Ok(Arc::new(StreamingTable::try_new(
            self.schema.clone(),
            partitions,
        )?))
    }
}

/// Columns that Arrow inferred as text but whose sampled values all parse as
/// timestamps (for example `2013-01-01T10:00:00Z`) become timestamps.
fn refine_timestamps(
    reader: &Reader,
    path: &std::path::Path,
    schema: SchemaRef,
    declared: &[bool],
    timezone: &str,
) -> Result<SchemaRef> {
    let candidates: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, f)| !declared[*i] && f.data_type() == &DataType::Utf8)
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Ok(schema);
    }
    let mut sample = None;
    // A read error here is reported by the real read with its position.
    let _ = reader.read(path, &schema, &mut |batch| {
        sample = Some(batch);
        false
    });
    let Some(sample) = sample else {
        return Ok(schema);
    };
    let target = timestamp_in(timezone);
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for i in candidates {
        let column = sample.column(i);
        let Some(strings) = column.as_any().downcast_ref::<StringArray>() else {
            continue;
        };
        let looks_like_time = strings
            .iter()
            .flatten()
            .all(|s| s.len() >= 19 && s.as_bytes().get(4) == Some(&b'-') && s.contains(':'));
        if strings.null_count() == strings.len() || !looks_like_time {
            continue;
        }
        if let Ok(cast) = cast_with_options(column, &target, &options)
            && cast.null_count() == column.null_count()
        {
            fields[i] = fields[i].clone().with_data_type(target.clone());
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// One file as a partition of a [`StreamingTable`]: Arrow's synchronous reader
/// runs on a blocking thread and hands batches over a bounded channel.
#[derive(Debug)]
struct FilePartition {
    path: PathBuf,
    reader: SharedReader,
    read_schema: SchemaRef,
    schema: SchemaRef,
}

impl PartitionStream for FilePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStream::builder(self.schema.clone(), 2);
        let tx = builder.tx();
        let path = self.path.clone();
        let reader = self.reader.clone();
        let read_schema = self.read_schema.clone();
        let schema = self.schema.clone();
        builder.spawn_blocking(move || {
            let mut failed = None;
            let result = reader.read(&path, &read_schema, &mut |batch| {
                let batch = if read_schema == schema {
                    Ok(batch)
                } else {
                    relabel(batch, &schema)
                };
                match batch {
                    Ok(b) => tx.blocking_send(Ok(b)).is_ok(),
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            result.map_err(|e| DataFusionError::External(Box::new(e)))
        });
        builder.build()
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

/// A hash of the files' names and contents: equal hashes mean equal input. It
/// reads nothing else, so checking an unchanged source costs one pass of hashing.
pub fn content_hash(files: &[PathBuf]) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        let file = std::fs::File::open(path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        hasher.update_reader(file).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
    }
    Ok(hasher.finalize().to_hex()[..32].to_string())
}
