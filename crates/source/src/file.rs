//! A file source: the files a `[sources.NAME]` entry matches, their inferred or
//! declared schema and a content hash for staleness; [`crate::table`] is the
//! DataFusion table that streams them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::TableProvider;
use datafusion::error::DataFusionError;
use sluice_project::{Delimiter, FileFormat, FilesDef, TimeFormat};

use crate::convert::{Conversion, Kind, Target, TimeConversion};
use crate::infer;
use crate::layout::Layout;
use crate::readers::{CsvOptions, Reader, SharedReader};
use crate::table::FileTable;
use crate::{Error, Result};
use sluice_core::{parse_type, timestamp_in};

/// Records read to infer types when the project does not say.
const DEFAULT_INFER_ROWS: usize = 10_000;

/// The files of one source, ready to be read.
#[derive(Clone)]
pub struct FileSource {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) reader: SharedReader,
    /// The schema the readers produce (timestamps in the source's time zone,
    /// formatted columns as text).
    pub(crate) read_schema: SchemaRef,
    /// The columns read as text and converted: `formats`, and numbers inferred
    /// from a sample (checked past it).
    pub(crate) conversions: Arc<Vec<Conversion>>,
    /// The schema once those columns are converted.
    pub(crate) converted_schema: SchemaRef,
    /// The schema the table exposes (timestamps in UTC).
    pub(crate) schema: SchemaRef,
    /// See [`FileSource::warnings`].
    warnings: Vec<String>,
    /// The first file's own columns, before the source's settings apply.
    file_schema: SchemaRef,
    /// The zone a zone-less time is read in.
    timezone: String,
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
    pub fn open(def: &FilesDef) -> Result<Self> {
        let files = def.files().map_err(|source| Error::ListFiles { source })?;
        Self::open_files(def, files)
    }

    /// [`FileSource::open`] over the given files rather than the ones `def`
    /// matches (the payloads a network source stored), read with `def`'s options.
    pub fn open_files(def: &FilesDef, files: Vec<PathBuf>) -> Result<Self> {
        let Some(first) = files.first() else {
            return Err(Error::NoFiles {
                pattern: def.pattern.display().to_string(),
            });
        };
        let config = &def.config;
        let timezone = config.timezone.clone().unwrap_or_else(|| "UTC".to_string());
        let reader = reader_for(def, first);
        let infer_rows = match config.infer_rows {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(DEFAULT_INFER_ROWS),
        };
        let inferred = reader.infer(first, infer_rows)?;
        // Every file is read with the first file's schema: make sure they agree.
        let first_header = match &reader {
            Reader::Csv(o) if o.header => Some(o.header(first)?),
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
            let i = column_index(&fields, first, "columns", column)?;
            fields[i] = fields[i].clone().with_data_type(ty);
            declared[i] = true;
        }
        let mut conversions = conversions(def, first, &mut fields, &mut declared, &timezone)?;
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
        let refined = infer::refine(
            &reader,
            first,
            Arc::new(Schema::new(fields)),
            &declared,
            &timezone,
            infer_rows,
        )?;
        let read_schema = checked_numbers(&reader, &refined, &declared, &mut conversions);
        let converted_schema = Arc::new(Schema::new(
            read_schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| match conversions.iter().find(|c| c.index == i) {
                    Some(c) => f.as_ref().clone().with_data_type(c.data_type()),
                    None => f.as_ref().clone(),
                })
                .collect::<Vec<_>>(),
        ));
        let schema = Arc::new(Schema::new(
            converted_schema
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
        let warnings = one_column_warning(&reader, first, &schema)?
            .into_iter()
            .collect::<Vec<_>>();
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok(Self {
            files,
            reader: Arc::new(reader),
            read_schema,
            conversions: Arc::new(conversions),
            converted_schema,
            schema,
            warnings,
            file_schema: Arc::new(inferred),
            timezone,
        })
    }

    /// What the user should know about how the files were read, such as a
    /// file that came out as one column although its header has spaces. Also
    /// logged as warnings when the source is opened.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The files read, sorted.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The schema of the rows the source yields.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Whether the rows are the values of Parquet files exactly as stored:
    /// no column is converted, and each keeps the file's type, but for a
    /// timestamp becoming a UTC instant of the same value (a zone-less time
    /// read in UTC, or a zoned one). A store may then copy the files'
    /// encoded columns rather than encode the rows again; it checks each
    /// file's columns itself, as only the first file's were read here.
    pub fn parquet_as_stored(&self) -> bool {
        let utc = matches!(self.timezone.as_str(), "UTC" | "+00:00" | "Z");
        matches!(*self.reader, Reader::Parquet)
            && self.conversions.is_empty()
            && self.file_schema.fields().len() == self.schema.fields().len()
            && self
                .file_schema
                .fields()
                .iter()
                .zip(self.schema.fields())
                .all(|(file, row)| match (file.data_type(), row.data_type()) {
                    (a, b) if a == b => true,
                    (DataType::Timestamp(u, None), DataType::Timestamp(v, Some(_))) => {
                        u == v && utc
                    }
                    (DataType::Timestamp(u, Some(_)), DataType::Timestamp(v, Some(_))) => u == v,
                    _ => false,
                })
    }

    /// A table that streams the files, one partition per file, reading only
    /// the columns a query asks for.
    pub fn table_provider(&self) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        Ok(Arc::new(FileTable::new(self.clone())))
    }
}

/// How the source's files are read, from its settings and the first file's
/// extension.
fn reader_for(def: &FilesDef, first: &Path) -> Reader {
    let config = &def.config;
    match def.format {
        FileFormat::Csv => {
            let tsv = first
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
            let default_delimiter = if tsv { '\t' } else { ',' };
            let null_regex = if config.null.is_empty() {
                None
            } else {
                let alternatives: Vec<_> = config.null.iter().map(|s| regex::escape(s)).collect();
                Some(
                    regex::Regex::new(&format!("^(?:{}|)$", alternatives.join("|")))
                        .expect("escaped alternatives always form a valid regex"),
                )
            };
            let quote = config.quote.unwrap_or('"') as u8;
            let (delimiter, layout) = match (config.delimiter, &config.widths) {
                (_, Some(widths)) => (default_delimiter, Some(Layout::FixedWidth(widths.clone()))),
                (Some(Delimiter::Whitespace), None) => {
                    (default_delimiter, Some(Layout::Whitespace { quote }))
                }
                (Some(Delimiter::Char(c)), None) => (c, None),
                (None, None) => (default_delimiter, None),
            };
            Reader::Csv(CsvOptions {
                header: config.header.unwrap_or(true),
                delimiter: delimiter as u8,
                quote,
                null_regex,
                layout,
            })
        }
        FileFormat::Json => Reader::Json,
        FileFormat::Parquet => Reader::Parquet,
    }
}

/// The index of `column` among `fields`, or which columns there are.
fn column_index(fields: &[Field], path: &Path, key: &'static str, column: &str) -> Result<usize> {
    fields
        .iter()
        .position(|f| f.name() == column)
        .ok_or_else(|| Error::UnknownColumn {
            path: path.to_path_buf(),
            key,
            column: column.to_string(),
            available: fields
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The columns of `formats`: read as text (and so `declared`), converted to a
/// date or a timestamp — the type `columns` gives, or else a timestamp when the
/// format has a time of day. With a `type` rule in the column's contract, to
/// ISO text that the rule converts, so that a value that does not match
/// quarantines its row instead of failing the read.
fn conversions(
    def: &FilesDef,
    path: &Path,
    fields: &mut [Field],
    declared: &mut [bool],
    timezone: &str,
) -> Result<Vec<Conversion>> {
    let config = &def.config;
    let mut out = Vec::with_capacity(config.formats.len());
    for (column, pattern) in &config.formats {
        let refuse = |message: String, help: &str| Error::Format {
            column: column.clone(),
            message,
            help: help.to_string(),
        };
        let format = TimeFormat::parse(pattern).map_err(|e| {
            refuse(
                e.to_string(),
                "write it in chrono's strftime syntax, e.g. `%m/%d/%y` or `%Y%m%d %H%M`",
            )
        })?;
        let index = column_index(fields, path, "formats", column)?;
        let rule_type = config
            .contract
            .as_ref()
            .and_then(|c| c.columns.get(column))
            .and_then(|rules| rules.get_ref().type_.as_deref())
            .and_then(|word| parse_type(word, timezone))
            .filter(|t| matches!(t, DataType::Date32 | DataType::Timestamp(_, _)));
        let as_text = rule_type.is_some();
        let wanted =
            rule_type.or_else(|| declared[index].then(|| fields[index].data_type().clone()));
        let timestamp = || -> Result<Target> {
            let zone = timezone.parse().map_err(|e| {
                refuse(
                    format!("the time zone `{timezone}` is unknown: {e}"),
                    "set `timezone` to a name such as `America/New_York` or an offset such as `+02:00`",
                )
            })?;
            Ok(Target::Timestamp {
                zone,
                data_type: timestamp_in(timezone),
            })
        };
        let target = match wanted {
            Some(DataType::Date32) if format.has_time() => {
                return Err(refuse(
                    format!("the format `{pattern}` has a time of day, and the column is a date"),
                    "declare it `timestamp`, or take the time out of the format",
                ));
            }
            Some(DataType::Date32) => Target::Date,
            Some(DataType::Timestamp(_, _)) => timestamp()?,
            None if format.has_time() => timestamp()?,
            None => Target::Date,
            Some(other) => {
                return Err(refuse(
                    format!(
                        "`formats` applies to date and timestamp columns, and `columns` makes it {other}"
                    ),
                    "remove its format, or declare it `date` or `timestamp`",
                ));
            }
        };
        fields[index] = Field::new(column, DataType::Utf8, true);
        declared[index] = true;
        out.push(Conversion {
            index,
            column: column.clone(),
            kind: Kind::Time(TimeConversion {
                format,
                target,
                as_text,
            }),
        });
    }
    Ok(out)
}

/// CSV columns inferred as numbers from a sample are read as text and checked
/// as they convert, so that a value past the sample that a number would change
/// (`007`) stops the read instead of becoming `7`. Not needed when the sample
/// was the whole file, or for JSON, whose numbers are typed.
fn checked_numbers(
    reader: &Reader,
    refined: &infer::Refined,
    declared: &[bool],
    conversions: &mut Vec<Conversion>,
) -> SchemaRef {
    if !matches!(reader, Reader::Csv(_)) || refined.whole_file {
        return refined.schema.clone();
    }
    let mut fields: Vec<Field> = refined
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for (index, f) in fields.iter_mut().enumerate() {
        let data_type = f.data_type().clone();
        if declared[index] || !matches!(data_type, DataType::Int64 | DataType::Float64) {
            continue;
        }
        conversions.push(Conversion {
            index,
            column: f.name().clone(),
            kind: Kind::Number {
                data_type,
                sampled: refined.sampled,
            },
        });
        *f = f.clone().with_data_type(DataType::Utf8);
    }
    Arc::new(Schema::new(fields))
}

/// A delimited file read as one column, whose header has spaces or tabs, is
/// most likely aligned with spaces: say how to read it.
fn one_column_warning(reader: &Reader, path: &Path, schema: &Schema) -> Result<Option<String>> {
    let Reader::Csv(o) = reader else {
        return Ok(None);
    };
    if o.layout.is_some() || !o.header || schema.fields().len() != 1 {
        return Ok(None);
    }
    let header = crate::readers::header_line(path)?;
    if !header.trim().contains([' ', '\t']) {
        return Ok(None);
    }
    let shown: String = header.trim().chars().take(60).collect();
    Ok(Some(format!(
        "{}:1: the file was read as one column, `{shown}`, and its header has spaces or tabs\n  \
         help: for columns aligned with spaces set `delimiter = \"whitespace\"`; for fixed-width \
         columns set `widths = [...]`; otherwise set the `delimiter` the file uses",
        path.display()
    )))
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
