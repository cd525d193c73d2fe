//! File sources end to end: a `[sources.X]` section, files in a folder, the rows
//! and types the table yields. Issue 15, items 4 and 5.

mod formats;
mod http;
mod inference;
mod layouts;
mod projection;

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use sluice_project::FilesDef;
use sluice_project::compile::format_of;
use sluice_project::raw::FileSourceSection;
use sluice_source::FileSource;

/// The repository's `testdata/`.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The source `[sources.x]` with `path = file` and `options`, in `dir`.
pub fn source(dir: &Path, file: &str, options: &str) -> FilesDef {
    let config: FileSourceSection = toml::from_str(&format!("path = {file:?}\n{options}"))
        .unwrap_or_else(|e| panic!("a valid section: {e}"));
    FilesDef {
        format: config
            .format
            .or_else(|| format_of(Path::new(file)))
            .expect("a known extension"),
        config,
        pattern: dir.join(file),
    }
}

/// A folder holding `files`.
pub fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

/// Every row of the source, as one batch.
pub async fn read(source: &FileSource) -> Result<RecordBatch, String> {
    let ctx = SessionContext::new();
    let provider = source.table_provider().map_err(|e| e.to_string())?;
    let batches = ctx
        .read_table(provider)
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    concat_batches(&source.schema(), &batches).map_err(|e| e.to_string())
}

/// Opens and reads in one go.
pub async fn rows(def: &FilesDef) -> RecordBatch {
    let source = FileSource::open(def).unwrap_or_else(|e| panic!("opens: {e}"));
    read(&source).await.unwrap_or_else(|e| panic!("reads: {e}"))
}

/// A column's type.
pub fn type_of(batch: &RecordBatch, column: &str) -> DataType {
    batch
        .schema()
        .field_with_name(column)
        .expect("the column")
        .data_type()
        .clone()
}

/// A column's values as Arrow displays them (`null` for a missing one).
pub fn shown(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).expect("the column");
    let options = FormatOptions::default().with_null("null");
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options).expect("displayable");
    (0..array.len())
        .map(|i| formatter.value(i).to_string())
        .collect()
}

/// A text column's values.
pub fn texts(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .expect("the column")
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("text")
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}
