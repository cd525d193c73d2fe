//! Parsing an HTTP source's stored pages into a table. JSON pages give their
//! records by the source's `records` path; NDJSON pages a record per line;
//! both become Arrow batches through arrow-json (schema inferred from the
//! records, `columns` laid over it). CSV pages are read by the file readers
//! (`FileSource`), so they take the same inference and errors as CSV files.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::infer_json_schema_from_iterator;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use serde_json::Value;
use sluice_project::raw::FileSourceSection;
use sluice_project::{FileFormat, FilesDef, HttpDef, HttpFormat, JsonPath, PathStep};

use crate::raw::RawPage;
use crate::{Error, FileSource};

/// Records decoded per batch.
const BATCH_ROWS: usize = 8192;

/// The value at `path` in `doc`.
pub fn select<'v>(doc: &'v Value, path: &JsonPath) -> Option<&'v Value> {
    path.steps.iter().try_fold(doc, |v, step| match step {
        PathStep::Key(k) => v.get(k.as_str()),
        PathStep::Index(i) => v.get(*i),
    })
}

/// A JSON page, or where it is malformed.
pub(crate) fn parse_json(url: &str, page: u64, body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Page {
        url: url.to_string(),
        page,
        line: e.line(),
        column: e.column(),
        record: 0,
        message: format!("the page is not valid JSON: {e}"),
        help: "the payload is kept in the raw zone (`sluice raw ls SOURCE`); if the API sends another format, set `format`".into(),
    })
}

/// The records of a JSON page: the array at the `records` path (the page
/// itself by default), one record when it is an object, none when null.
pub(crate) fn records_of<'d>(
    def: &HttpDef,
    url: &str,
    page: u64,
    doc: &'d Value,
) -> Result<Vec<&'d Value>, Error> {
    let refuse = |message: String, help: &str| Error::Page {
        url: url.to_string(),
        page,
        line: 0,
        column: 0,
        record: 0,
        message,
        help: help.to_string(),
    };
    let found = match &def.records {
        Some(p) => select(doc, p).ok_or_else(|| {
            let keys = match doc {
                Value::Object(o) => format!(
                    "; the page has the keys {}",
                    o.keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => String::new(),
            };
            refuse(
                format!("the page has nothing at `records` = `{}`{keys}", p.text),
                "set `records` to where the API puts its records, e.g. `$.data.items`",
            )
        })?,
        None => doc,
    };
    let records: Vec<&Value> = match found {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![found],
        Value::Null => vec![],
        other => {
            return Err(refuse(
                format!(
                    "the records are {}, not an array of objects",
                    kind_of(other)
                ),
                "set `records` to the path of the array of records",
            ));
        }
    };
    for (i, r) in records.iter().enumerate() {
        if !r.is_object() {
            return Err(Error::Page {
                url: url.to_string(),
                page,
                line: 0,
                column: 0,
                record: i + 1,
                message: format!("the record is {}, not an object", kind_of(r)),
                help: "set `records` to the path of the array of records".into(),
            });
        }
    }
    Ok(records)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One page's records, owned.
struct PageRecords {
    url: String,
    page: u64,
    records: Vec<Value>,
}

/// Reads the stored `pages` into a table: with `schema` when given (an
/// incremental read keeps its table's columns), else inferred and `columns`
/// laid over.
pub fn parse(
    def: &HttpDef,
    pages: &[RawPage],
    schema: Option<SchemaRef>,
) -> Result<(SchemaRef, Arc<dyn TableProvider>), Error> {
    if def.format == HttpFormat::Csv {
        return parse_csv(def, pages);
    }
    let mut all = vec![];
    for p in pages {
        let body = std::fs::read(&p.path).map_err(|source| Error::Open {
            path: p.path.clone(),
            source,
        })?;
        let records = match def.format {
            HttpFormat::Json => {
                let doc = parse_json(&p.url, p.page, &body)?;
                records_of(def, &p.url, p.page, &doc)?
                    .into_iter()
                    .cloned()
                    .collect()
            }
            _ => ndjson(&p.url, p.page, &body)?,
        };
        all.push(PageRecords {
            url: p.url.clone(),
            page: p.page,
            records,
        });
    }
    let schema = match schema {
        Some(s) => s,
        None => infer(def, &all)?,
    };
    let read_schema = schema.clone();
    let mut batches = vec![];
    for p in &all {
        for (n, chunk) in p.records.chunks(BATCH_ROWS).enumerate() {
            batches.push(decode(&read_schema, p, chunk, n * BATCH_ROWS)?);
        }
    }
    let table = MemTable::try_new(schema.clone(), vec![batches]).map_err(|e| Error::Setting {
        key: "columns".into(),
        message: e.to_string(),
        help: "check the declared column types".into(),
    })?;
    Ok((schema, Arc::new(table)))
}

/// The records of an NDJSON page, or the line that is not JSON.
fn ndjson(url: &str, page: u64, body: &[u8]) -> Result<Vec<Value>, Error> {
    let mut out = vec![];
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = serde_json::from_slice(line).map_err(|e| Error::Page {
            url: url.to_string(),
            page,
            line: i + 1,
            column: e.column(),
            record: out.len() + 1,
            message: format!("the line is not valid JSON: {e}"),
            help: "every line of an NDJSON page must be one JSON object".into(),
        })?;
        if !v.is_object() {
            return Err(Error::Page {
                url: url.to_string(),
                page,
                line: i + 1,
                column: 0,
                record: out.len() + 1,
                message: format!("the line is {}, not an object", kind_of(&v)),
                help: "every line of an NDJSON page must be one JSON object".into(),
            });
        }
        out.push(v);
    }
    Ok(out)
}

/// The records' schema: inferred from the records (the first `infer_rows`),
/// null-only columns as text, declared `columns` laid over (and added when
/// no record has them), timestamps labelled UTC.
fn infer(def: &HttpDef, pages: &[PageRecords]) -> Result<SchemaRef, Error> {
    let limit = match def.config.infer_rows {
        None | Some(0) => usize::MAX,
        Some(n) => n,
    };
    let sample = pages
        .iter()
        .flat_map(|p| p.records.iter())
        .take(limit)
        .map(Ok);
    let inferred = infer_json_schema_from_iterator(sample).map_err(|e| Error::Setting {
        key: "records".into(),
        message: format!("cannot infer the columns of the records: {e}"),
        help: "declare the columns' types in `columns`".into(),
    })?;
    let tz = def.config.timezone.clone().unwrap_or_else(|| "UTC".into());
    let mut fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone().with_nullable(true);
            if f.data_type() == &DataType::Null {
                f.with_data_type(DataType::Utf8)
            } else {
                f
            }
        })
        .collect();
    for (column, word) in &def.config.columns {
        let ty = crate::parse_type(word, &tz).ok_or_else(|| Error::UnknownType {
            column: column.clone(),
            word: word.clone(),
        })?;
        let ty = match ty {
            DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(unit, Some(Arc::from("UTC"))),
            other => other,
        };
        match fields.iter_mut().find(|f| f.name() == column) {
            Some(f) => *f = f.clone().with_data_type(ty),
            None => fields.push(Field::new(column, ty, true)),
        }
    }
    if fields.is_empty() {
        return Err(Error::Setting {
            key: "columns".into(),
            message: "no page held a record, so there are no columns to infer".into(),
            help: "declare the columns in `columns = { id = \"int64\", ... }`, or check `records`"
                .into(),
        });
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Decodes records into a batch; a record that does not fit its columns is an
/// error naming it.
fn decode(
    schema: &SchemaRef,
    p: &PageRecords,
    records: &[Value],
    first: usize,
) -> Result<RecordBatch, Error> {
    let attempt = |rows: &[Value]| -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let mut d = ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.len().max(1))
            .with_coerce_primitive(true)
            .build_decoder()?;
        d.serialize(rows)?;
        Ok(d.flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
    };
    attempt(records).map_err(|whole| {
        // Find the record: decode them one at a time (only on failure).
        let (record, message) = records
            .iter()
            .enumerate()
            .find_map(|(i, r)| {
                attempt(std::slice::from_ref(r))
                    .err()
                    .map(|e| (i, e.to_string()))
            })
            .unwrap_or((0, whole.to_string()));
        Error::Page {
            url: p.url.clone(),
            page: p.page,
            line: 0,
            column: 0,
            record: first + record + 1,
            message: format!("the record does not fit its columns: {message}"),
            help: "fix the type in `columns`, or leave the column out of `columns` to infer it"
                .into(),
        }
    })
}

/// CSV pages through the file readers: the pages' files as one source.
fn parse_csv(
    def: &HttpDef,
    pages: &[RawPage],
) -> Result<(SchemaRef, Arc<dyn TableProvider>), Error> {
    let c = &def.config;
    let first = pages.first().map(|p| p.path.clone()).unwrap_or_default();
    let config = FileSourceSection {
        path: toml::Spanned::new(0..0, first.display().to_string()),
        format: Some(FileFormat::Csv),
        delimiter: c.delimiter,
        quote: None,
        header: None,
        names: None,
        null: c.null.clone(),
        columns: c.columns.clone(),
        infer_rows: c.infer_rows,
        timezone: c.timezone.clone(),
        widths: None,
        formats: Default::default(),
        partitioned: None,
        contract: None,
        description: None,
    };
    let files = FilesDef {
        config,
        format: FileFormat::Csv,
        pattern: first,
    };
    let paths = pages.iter().map(|p| p.path.clone()).collect();
    let source = FileSource::open_files(&files, paths)?;
    let provider = source.table_provider().map_err(|e| Error::Setting {
        key: "format".into(),
        message: e.to_string(),
        help: "check the CSV options".into(),
    })?;
    Ok((source.schema(), provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_select_keys_and_indexes() {
        let doc: Value =
            serde_json::json!({"data": {"items": [{"id": 1}, {"id": 2}]}, "next": null});
        let p = JsonPath::parse("$.data.items[*]").expect("path");
        assert_eq!(
            select(&doc, &p).and_then(Value::as_array).map(Vec::len),
            Some(2)
        );
        let p = JsonPath::parse("data.items[1].id").expect("path");
        assert_eq!(select(&doc, &p), Some(&serde_json::json!(2)));
        assert_eq!(
            select(&doc, &JsonPath::parse("$").expect("root")),
            Some(&doc)
        );
        assert!(JsonPath::parse("$..items[?(@.id)]").is_err());
    }
}
