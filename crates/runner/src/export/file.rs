//! File exports: an asset's rows written to a file on every refresh, replaced
//! atomically (a temporary file beside it, synced, then renamed), so a reader
//! never sees half a file and a crash leaves the previous one. JSON keyed by
//! entity is the seed's Firebase shape: `{"A-san": {...}, "B-san": {...}}`.

use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use serde_json::{Map, Value};
use sluice_project::{ExportFormat, FileTarget};

use crate::outcome::Failure;

/// Writes the rows through a temporary file and renames it over the target.
pub(super) async fn write(df: DataFrame, def: &FileTarget, key: &[String]) -> Result<u64, Failure> {
    let dir = def
        .path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::create_dir_all(&dir).map_err(|e| Failure {
        message: format!("cannot create {}: {e}", dir.display()),
        class: sluice_core::ErrorClass::of_io(&e),
    })?;
    let file_name = def
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.sluice-{}.tmp", std::process::id()));
    let result = write_to(df, def, key, &tmp).await;
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &def.path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::of(&e)
    })?;
    // The rename itself survives a crash once the folder is synced.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(rows)
}

async fn write_to(
    df: DataFrame,
    def: &FileTarget,
    key: &[String],
    tmp: &Path,
) -> Result<u64, Failure> {
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(|e| Failure::of(&e))?;
    let file = std::fs::File::create(tmp).map_err(|e| Failure::of(&e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut rows = 0u64;
    match (def.format, key.is_empty()) {
        (ExportFormat::Parquet, _) => {
            use datafusion::parquet::basic::{Compression, ZstdLevel};
            // zstd, as the warehouse's own tables: exports are snapshots people copy around.
            let props = datafusion::parquet::file::properties::WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let mut writer =
                datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props))
                    .map_err(|e| Failure::of(&e))?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Failure::of(&e))?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| Failure::of(&e))?;
            }
            writer.close().map_err(|e| Failure::of(&e))?;
        }
        (ExportFormat::Csv, _) => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Failure::of(&e))?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| Failure::of(&e))?;
            }
        }
        (ExportFormat::Json, true) => {
            let mut writer = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut out);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Failure::of(&e))?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| Failure::of(&e))?;
            }
            writer.finish().map_err(|e| Failure::of(&e))?;
        }
        (ExportFormat::Json, false) => {
            let mut root = Map::new();
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Failure::of(&e))?;
                for row in json_rows(std::slice::from_ref(&batch)).map_err(|e| Failure::of(&e))? {
                    rows += 1;
                    insert_keyed(&mut root, row, key, rows)?;
                }
            }
            serde_json::to_writer(&mut out, &root).map_err(|e| Failure::of(&e))?;
        }
    }
    out.flush().map_err(|e| Failure::of(&e))?;
    let file = out.into_inner().map_err(|e| Failure::of(&e))?;
    file.sync_all().map_err(|e| Failure::of(&e))?;
    Ok(rows)
}

/// Arrow batches as JSON objects, through Arrow's own JSON writer (dates and
/// times as text, nulls kept as `null`).
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>, ArrowError> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| ArrowError::JsonError(e.to_string()))
}

/// Puts `row` (without its key columns) under its key path; a row's key must be
/// present and unique.
fn insert_keyed(
    root: &mut Map<String, Value>,
    mut row: Map<String, Value>,
    key: &[String],
    row_number: u64,
) -> Result<(), String> {
    let mut path = Vec::with_capacity(key.len());
    for k in key {
        // `shift_remove`: the other columns keep the query's order
        // (`remove` is `swap_remove`, which moved the last column first).
        match row.shift_remove(k) {
            Some(Value::String(s)) => path.push(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => path.push(v.to_string()),
            _ => {
                return Err(format!(
                    "row {row_number} has no value in the key column `{k}`\n  help: filter out rows without a key (`WHERE {k} IS NOT NULL`), or key the export by another column"
                ));
            }
        }
    }
    let mut node = root;
    for (depth, part) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        if last {
            if node.contains_key(part) {
                return Err(format!(
                    "row {row_number} repeats the key {}\n  help: an export keyed by entity needs one row per key; aggregate the rows, or export a feature view (its newest row per entity)",
                    key.iter()
                        .zip(&path)
                        .map(|(k, v)| format!("{k} = \"{v}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            node.insert(part.clone(), Value::Object(std::mem::take(&mut row)));
            return Ok(());
        }
        let child = node
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        node = match child {
            Value::Object(m) => m,
            _ => {
                return Err(format!(
                    "row {row_number}: the key path collides with a row"
                ));
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn rows_nest_under_their_keys_and_bad_keys_are_errors() {
        let mut root = Map::new();
        let key = ["carrier".to_string(), "origin".to_string()];
        insert_keyed(
            &mut root,
            obj(json!({"carrier": "AA", "origin": "JFK", "n": 1})),
            &key,
            1,
        )
        .expect("first");
        insert_keyed(
            &mut root,
            obj(json!({"carrier": "AA", "origin": "LGA", "n": 2})),
            &key,
            2,
        )
        .expect("second");
        insert_keyed(
            &mut root,
            obj(json!({"carrier": 9, "origin": "EWR", "n": 3})),
            &key,
            3,
        )
        .expect("number key");
        assert_eq!(
            Value::Object(root.clone()),
            json!({"AA": {"JFK": {"n": 1}, "LGA": {"n": 2}}, "9": {"EWR": {"n": 3}}})
        );
        let dup = insert_keyed(
            &mut root,
            obj(json!({"carrier": "AA", "origin": "JFK", "n": 4})),
            &key,
            4,
        )
        .expect_err("duplicate");
        assert!(
            dup.contains("row 4 repeats the key carrier = \"AA\", origin = \"JFK\""),
            "{dup}"
        );
        let null = insert_keyed(
            &mut root,
            obj(json!({"carrier": null, "origin": "JFK"})),
            &key,
            5,
        )
        .expect_err("null");
        assert!(
            null.contains("row 5 has no value in the key column `carrier`"),
            "{null}"
        );
    }
}
