//! Arrow's CSV, JSON and Parquet readers, one file at a time, with their errors
//! turned into [`Error::Read`] that name the file, line and column.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::reader::Format as CsvFormat;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::reader::{
    ReaderBuilder as JsonReaderBuilder, infer_json_schema, infer_json_schema_from_iterator,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use regex::Regex;

use crate::layout::{FailureSlot, Layout, LayoutReader, NO_QUOTE, SEPARATOR};
use crate::{Error, Result};

pub(crate) const BATCH_SIZE: usize = 8192;

/// How to read one kind of file.
#[derive(Debug, Clone)]
pub(crate) enum Reader {
    Csv(CsvOptions),
    Json,
    Parquet,
}

/// CSV settings from the project file.
#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub null_regex: Option<Regex>,
    /// Whitespace-aligned or fixed-width lines, rewritten before Arrow reads
    /// them; `None` for a file delimited by one character.
    pub layout: Option<Layout>,
}

impl CsvOptions {
    fn format(&self) -> CsvFormat {
        let (delimiter, quote) = match &self.layout {
            None => (self.delimiter, self.quote),
            Some(Layout::Whitespace { quote }) => (SEPARATOR, *quote),
            Some(Layout::FixedWidth(_)) => (SEPARATOR, NO_QUOTE),
        };
        let format = CsvFormat::default()
            .with_header(self.header)
            .with_delimiter(delimiter)
            .with_quote(quote);
        match &self.null_regex {
            Some(r) => format.with_null_regex(r.clone()),
            None => format,
        }
    }

    /// What Arrow's reader reads of `file`: the file itself, or its lines
    /// rewritten by the layout (with the slot where a layout error is left).
    fn input(&self, file: File) -> (Box<dyn Read + Send>, Option<FailureSlot>) {
        match &self.layout {
            None => (Box::new(file), None),
            Some(layout) => {
                let reader = LayoutReader::new(BufReader::new(file), layout.clone());
                let slot = reader.failure();
                (Box::new(reader), Some(slot))
            }
        }
    }

    /// Arrow's error, or the layout's when the layout stopped the read.
    fn error(&self, path: &Path, error: ArrowError, slot: Option<&FailureSlot>) -> Error {
        let failed = slot.and_then(|s| s.lock().ok().and_then(|mut f| f.take()));
        match failed {
            Some(f) => read_error(path, f.line, f.field, f.message, Some(f.help)),
            None => csv_error(path, error, self.header),
        }
    }

    /// The header as the reader splits it: the first line, its fields joined
    /// by `|` when a layout splits it.
    pub(crate) fn header(&self, path: &Path) -> Result<String> {
        let line = header_line(path)?;
        let Some(layout) = &self.layout else {
            return Ok(line);
        };
        let mut split = Vec::new();
        LayoutReader::new(line.as_bytes(), layout.clone())
            .read_to_end(&mut split)
            .map_err(|e| io_error(path, e))?;
        Ok(String::from_utf8_lossy(&split)
            .trim_end()
            .replace(SEPARATOR as char, " | "))
    }
}

pub(crate) fn open(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

impl Reader {
    /// The schema Arrow infers from the first `max_records` records of `path`.
    pub fn infer(&self, path: &Path, max_records: Option<usize>) -> Result<Schema> {
        let file = open(path)?;
        match self {
            Reader::Csv(o) => {
                let (input, slot) = o.input(file);
                let (schema, _) = o
                    .format()
                    .infer_schema(input, max_records)
                    .map_err(|e| o.error(path, e, slot.as_ref()))?;
                Ok(schema)
            }
            Reader::Json => {
                let mut reader = BufReader::new(file);
                if is_json_array(&mut reader).map_err(|e| io_error(path, e))? {
                    let values = read_json_array(path, reader)?;
                    let limit = max_records.unwrap_or(usize::MAX);
                    infer_json_schema_from_iterator(values.iter().take(limit).map(Ok))
                        .map_err(|e| reader_error(path, e, None))
                } else {
                    infer_json_schema(reader, max_records)
                        .map(|(schema, _)| schema)
                        .map_err(|e| locate_ndjson_error(path, None, e))
                }
            }
            Reader::Parquet => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| reader_error(path, e, Some("is it a Parquet file?")))?;
                Ok(builder.schema().as_ref().clone())
            }
        }
    }

    /// Checks that `path` has the same columns as the file the schema came from
    /// (`first_header` is that file's CSV header line, `schema` its schema).
    pub fn check_same_columns(
        &self,
        path: &Path,
        first_header: Option<&str>,
        schema: &Schema,
    ) -> Result<()> {
        let mismatch = |message: String| Error::SchemaMismatch {
            path: path.to_path_buf(),
            message,
        };
        match self {
            Reader::Csv(o) if o.header => {
                let header = o.header(path)?;
                if Some(header.as_str()) != first_header {
                    return Err(mismatch(format!(
                        "its header `{header}` differs from the first file's `{}`",
                        first_header.unwrap_or_default()
                    )));
                }
            }
            Reader::Parquet => {
                let theirs = self.infer(path, None)?;
                let names = |s: &Schema| {
                    s.fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>()
                };
                if names(&theirs) != names(schema) {
                    return Err(mismatch(format!(
                        "its columns ({}) differ from the first file's ({})",
                        names(&theirs).join(", "),
                        names(schema).join(", ")
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads `path` with `schema`, handing each batch to `emit` until it returns false.
    pub fn read(
        &self,
        path: &Path,
        schema: &SchemaRef,
        emit: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        self.read_columns(path, schema, None, emit)
    }

    /// [`Reader::read`], keeping only the columns `projection` lists (indices
    /// into `schema`, in the order given). A Parquet file decodes only those
    /// columns and a CSV file builds only those; JSON is parsed whole.
    pub fn read_columns(
        &self,
        path: &Path,
        schema: &SchemaRef,
        projection: Option<&[usize]>,
        emit: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        let file = open(path)?;
        let projected = match projection {
            Some(p) => Arc::new(schema.project(p).map_err(|e| reader_error(path, e, None))?),
            None => schema.clone(),
        };
        match self {
            Reader::Csv(o) => {
                let (input, slot) = o.input(file);
                let mut builder = datafusion::arrow::csv::ReaderBuilder::new(schema.clone())
                    .with_format(o.format())
                    .with_batch_size(BATCH_SIZE);
                if let Some(p) = projection {
                    builder = builder.with_projection(p.to_vec());
                }
                let reader = builder
                    .build(input)
                    .map_err(|e| o.error(path, e, slot.as_ref()))?;
                for batch in reader {
                    if !emit(batch.map_err(|e| o.error(path, e, slot.as_ref()))?) {
                        break;
                    }
                }
            }
            Reader::Json => {
                let emit = &mut |batch: RecordBatch| match projection {
                    // The indices come from the table's own schema.
                    Some(p) => match batch.project(p) {
                        Ok(b) => emit(b),
                        Err(_) => false,
                    },
                    None => emit(batch),
                };
                let mut reader = BufReader::new(file);
                if is_json_array(&mut reader).map_err(|e| io_error(path, e))? {
                    let values = read_json_array(path, reader)?;
                    let mut decoder = JsonReaderBuilder::new(schema.clone())
                        .with_batch_size(BATCH_SIZE)
                        .with_strict_mode(true)
                        .build_decoder()
                        .map_err(|e| reader_error(path, e, None))?;
                    for (i, chunk) in values.chunks(BATCH_SIZE).enumerate() {
                        decoder.serialize(chunk).map_err(|e| {
                            read_error(
                                path,
                                0,
                                0,
                                format!(
                                    "in the array's elements from #{}: {e}",
                                    i * BATCH_SIZE + 1
                                ),
                                None,
                            )
                            .caused_by(e)
                        })?;
                        if let Some(batch) =
                            decoder.flush().map_err(|e| reader_error(path, e, None))?
                            && !emit(batch)
                        {
                            break;
                        }
                    }
                } else {
                    // Strict: a field that inference never saw is an error, not
                    // silently dropped.
                    let reader = JsonReaderBuilder::new(schema.clone())
                        .with_batch_size(BATCH_SIZE)
                        .with_strict_mode(true)
                        .build(reader)
                        .map_err(|e| reader_error(path, e, None))?;
                    for batch in reader {
                        match batch {
                            Ok(b) => {
                                if !emit(b) {
                                    break;
                                }
                            }
                            Err(e) => return Err(locate_ndjson_error(path, Some(schema), e)),
                        }
                    }
                }
            }
            Reader::Parquet => crate::parquet::read(path, file, &projected, projection, emit)?,
        }
        Ok(())
    }

    /// The 1-based line on which data record `record` (0-based, after the
    /// header) of `path` starts; 0 where the format has no lines (a JSON array,
    /// Parquet). Blank lines are skipped as the readers skip them; a CSV record
    /// is taken to hold one line (this path only serves error messages).
    pub fn line_of_record(&self, path: &Path, record: usize) -> usize {
        let skip = match self {
            Reader::Csv(o) => usize::from(o.header),
            Reader::Json => 0,
            Reader::Parquet => return 0,
        };
        let Ok(file) = File::open(path) else {
            return 0;
        };
        let mut reader = BufReader::new(file);
        if matches!(self, Reader::Json) && is_json_array(&mut reader).unwrap_or(true) {
            return 0;
        }
        let mut line = Vec::new();
        let (mut number, mut seen) = (0, 0);
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return 0,
                Ok(_) => number += 1,
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            seen += 1;
            if seen == record + skip + 1 {
                return number;
            }
        }
    }
}

/// The first line of a file, without its line ending.
pub(crate) fn header_line(path: &Path) -> Result<String> {
    let mut line = Vec::new();
    BufReader::new(open(path)?)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_error(path, e))?;
    Ok(String::from_utf8_lossy(&line)
        .trim_end_matches(['\r', '\n'])
        .to_string())
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Open {
        path: path.to_path_buf(),
        source,
    }
}

fn read_error(
    path: &Path,
    line: usize,
    column: usize,
    message: String,
    help: Option<&str>,
) -> Error {
    Error::Read {
        path: path.to_path_buf(),
        line,
        column,
        message,
        help: help.map(str::to_string),
        source: None,
    }
}

/// A reader's error at no known position, told in its own words.
pub(crate) fn reader_error(
    path: &Path,
    error: impl std::error::Error + Send + Sync + 'static,
    help: Option<&str>,
) -> Error {
    read_error(path, 0, 0, error.to_string(), help).caused_by(error)
}

impl Error {
    /// Keeps `source` as the cause of a [`Error::Read`] (other errors keep their own).
    fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        if let Error::Read { source, .. } = &mut self {
            *source = Some(Box::new(cause));
        }
        self
    }
}

fn invalid_utf8(path: &Path, line: usize, column: usize) -> Error {
    read_error(
        path,
        line,
        column,
        "invalid UTF-8".into(),
        Some("convert the file to UTF-8"),
    )
}

fn is_json_array(reader: &mut BufReader<File>) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    loop {
        if reader.read(&mut first)? == 0 {
            reader.seek(SeekFrom::Start(0))?;
            return Ok(false);
        }
        if !first[0].is_ascii_whitespace() {
            reader.seek(SeekFrom::Start(0))?;
            return Ok(first[0] == b'[');
        }
    }
}

fn read_json_array(path: &Path, reader: BufReader<File>) -> Result<Vec<serde_json::Value>> {
    serde_json::from_reader::<_, Vec<serde_json::Value>>(reader).map_err(|e| {
        read_error(
            path,
            e.line(),
            e.column(),
            e.to_string(),
            Some("a JSON source is one array of objects or one object per line"),
        )
        .caused_by(e)
    })
}

/// Arrow's JSON errors carry no position; on this (rare) path, find the first
/// line that fails on its own and report it.
fn locate_ndjson_error(path: &Path, schema: Option<&SchemaRef>, error: ArrowError) -> Error {
    let Ok(file) = File::open(path) else {
        return reader_error(path, error, None);
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => number += 1,
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t,
            Err(e) => {
                let column = String::from_utf8_lossy(&line[..e.valid_up_to()])
                    .chars()
                    .count()
                    + 1;
                return invalid_utf8(path, number, column);
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            return read_error(path, number, e.column(), format!("invalid JSON: {e}"), None)
                .caused_by(e);
        }
        if let Some(schema) = schema {
            let decoded = JsonReaderBuilder::new(schema.clone())
                .with_strict_mode(true)
                .build(text.as_bytes())
                .and_then(|r| r.collect::<std::result::Result<Vec<_>, _>>());
            if let Err(e) = decoded {
                return read_error(
                    path,
                    number,
                    0,
                    strip_arrow_prefix(&e.to_string()).to_string(),
                    Some(
                        "fix the value, declare the field's type in `columns`, or raise `infer_rows` (0 reads every record)",
                    ),
                )
                .caused_by(e);
            }
        }
    }
    read_error(
        path,
        0,
        0,
        strip_arrow_prefix(&error.to_string()).to_string(),
        None,
    )
    .caused_by(error)
}

fn strip_arrow_prefix(s: &str) -> &str {
    s.trim_start_matches("Json error: ")
        .trim_start_matches("Csv error: ")
        .trim_start_matches("Parser error: ")
}

/// Turns Arrow's CSV messages into file positions. Field numbers are 0-based in
/// every message; lines are 1-based physical lines except in value-parsing
/// messages, which count records after the header (`header` shifts them).
fn csv_error(path: &Path, error: ArrowError, header: bool) -> Error {
    let located = locate_csv_error(path, &error, header);
    located.caused_by(error)
}

fn locate_csv_error(path: &Path, error: &ArrowError, header: bool) -> Error {
    let text = error.to_string();
    let msg = strip_arrow_prefix(&text);
    let num = |after: &str| -> Option<usize> {
        let at = msg.find(after)? + after.len();
        msg[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    let shift = usize::from(header);
    // Schema inference goes through the `csv` crate, whose lines are already
    // 1-based physical lines.
    if let Some(line) = num("found ").and_then(|_| num(" records at line ")) {
        let expected = num("Expected ").unwrap_or(0);
        let got = num("found ").unwrap_or(0);
        return read_error(
            path,
            line,
            0,
            format!("expected {expected} fields, found {got}"),
            Some("check the delimiter and the quoting on that line"),
        );
    }
    if msg.contains("UTF-8 error")
        && let Some(line) = num(" at line ")
    {
        let field = num("in field ").map_or(0, |f| f + 1);
        return invalid_utf8(path, line, field);
    }
    if let Some(line) = num("incorrect number of fields for line ") {
        let expected = num("expected ").unwrap_or(0);
        let got = msg.rsplit(' ').next().unwrap_or("?");
        return read_error(
            path,
            line,
            0,
            format!("expected {expected} fields, found {got}"),
            Some("check the delimiter and the quoting on that line"),
        );
    }
    if let Some(line) = num("invalid UTF-8 data for line ") {
        let field = num(" and field ").unwrap_or(0);
        return invalid_utf8(path, line, field);
    }
    if msg.starts_with("Error while parsing value") || msg.starts_with("Error parsing column") {
        let line = num(" at line ").unwrap_or(0);
        let column = num("for column ")
            .or_else(|| num("Error parsing column "))
            .map_or(0, |c| c + 1);
        let value = msg
            .strip_prefix("Error while parsing value '")
            .and_then(|rest| rest.split_once("' as type '"))
            .map(|(v, rest)| (v, rest.split('\'').next().unwrap_or("")));
        let message = match value {
            Some((v, ty)) => {
                let shown: String = v.chars().take(80).collect();
                let more = if v.chars().count() > 80 { "…" } else { "" };
                format!("`{shown}{more}` is not a valid {ty}")
            }
            None => msg.split(". Row data").next().unwrap_or(msg).to_string(),
        };
        return read_error(
            path,
            line + shift,
            column,
            message,
            Some(
                "fix the value, declare the column's type in `columns`, or list the marker in `null`",
            ),
        );
    }
    read_error(path, 0, 0, msg.to_string(), None)
}

/// A shared reader, cheap to clone into partitions.
pub(crate) type SharedReader = Arc<Reader>;
