//! A collection's embeddings: which chunks need a vector (by content hash,
//! against the previous version's) and making them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;

use super::{chunk_schema, utf8};
use crate::outcome::Failure;

/// Chunks embedded at once, between two reports of a long build's progress.
const EMBED_PART: usize = 256;

/// Chunks embedded, at least, between two log lines of a long build.
const EMBED_LOG: usize = 1024;

/// A list of f32, its item named as Delta's reader names it (so that rows
/// read back and rows made now are one type).
pub(super) fn embedding_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Float32, true)))
}

/// The vectors of the previous version's chunks whose content a chunk of
/// `fresh` has, embedded by the same model: by content hash.
pub(super) async fn reusable(
    ctx: &SessionContext,
    fresh: &RecordBatch,
    identity: &str,
) -> Result<HashMap<String, Vec<f32>>, Failure> {
    let previous = ctx
        .table("previous")
        .await
        .map_err(|e| Failure::from(e.to_string()))?;
    if previous
        .schema()
        .field_with_unqualified_name("embedding")
        .is_err()
        || fresh.num_rows() == 0
    {
        return Ok(HashMap::new());
    }
    let wanted: BTreeSet<&str> = utf8_values(fresh, "content_hash")?;
    let mut b = StringBuilder::new();
    for h in &wanted {
        b.append_value(h);
    }
    let wanted = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "wanted",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(b.finish()) as ArrayRef],
    )
    .map_err(|e| Failure::from(e.to_string()))?;
    let wanted = ctx
        .read_batch(wanted)
        .map_err(|e| Failure::from(e.to_string()))?;
    use datafusion::prelude::{col, lit};
    let batches = previous
        .filter(col("embedded_by").eq(lit(identity.to_string())))
        .and_then(|df| df.select_columns(&["content_hash", "embedding"]))
        .and_then(|df| {
            df.join(
                wanted,
                datafusion::common::JoinType::LeftSemi,
                &["content_hash"],
                &["wanted"],
                None,
            )
        })
        .map_err(|e| Failure::from(e.to_string()))?
        .collect()
        .await
        .map_err(|e| Failure::from(e.to_string()))?;
    let mut out = HashMap::new();
    for batch in &batches {
        let hashes = utf8(batch.column(0)).map_err(|e| Failure::of(&e))?;
        let lists = batch.column(1).as_list::<i32>();
        for i in 0..batch.num_rows() {
            if lists.is_null(i) {
                continue;
            }
            let values = lists.value(i);
            let values = values.as_primitive::<datafusion::arrow::datatypes::Float32Type>();
            out.entry(hashes.value(i).to_string())
                .or_insert_with(|| values.values().to_vec());
        }
    }
    Ok(out)
}

/// The distinct values of string column `name` of `batch`.
fn utf8_values<'b>(batch: &'b RecordBatch, name: &str) -> Result<BTreeSet<&'b str>, Failure> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Failure::from(format!("no column `{name}`")))?;
    let values = column
        .as_string_opt::<i32>()
        .ok_or_else(|| Failure::from(format!("`{name}` is not a string column")))?;
    Ok((0..values.len()).map(|i| values.value(i)).collect())
}

/// `fresh` with its `embedding` and `embedded_by` columns: vectors of
/// `reuse` where a chunk's content hash is there, the others embedded now
/// (each distinct input once), shortest first in parts, `report`ing after each
/// part how many of how many are done. Returns how many chunks were embedded.
pub(super) fn embed(
    collection: &str,
    fresh: &RecordBatch,
    inputs: &[String],
    mut reuse: HashMap<String, Vec<f32>>,
    embedder: &dyn sluice_retrieve::Embedder,
    report: &dyn Fn(u64, u64),
) -> Result<(RecordBatch, u64), Failure> {
    let hashes = utf8(
        fresh
            .column_by_name("content_hash")
            .ok_or_else(|| Failure::from("no content_hash".to_string()))?,
    )
    .map_err(|e| Failure::of(&e))?;
    let mut todo: Vec<usize> = vec![];
    let mut queued = BTreeSet::new();
    for (i, _) in inputs.iter().enumerate() {
        let hash = hashes.value(i);
        if !reuse.contains_key(hash) && queued.insert(hash) {
            todo.push(i);
        }
    }
    // Texts of about one length share the model's padded batches whichever
    // part they fall in: sorting here costs nothing and lets a long first
    // build say how far it is.
    todo.sort_by_key(|&i| inputs[i].len());
    let total = todo.len() as u64;
    let mut logged = 0;
    for (n, part) in todo.chunks(EMBED_PART).enumerate() {
        let texts: Vec<&str> = part.iter().map(|&i| inputs[i].as_str()).collect();
        let vectors = embedder.embed(&texts).map_err(|e| Failure::of(&e))?;
        let dim = vectors.len() / texts.len().max(1);
        for (&i, vector) in part.iter().zip(vectors.chunks_exact(dim.max(1))) {
            reuse.insert(hashes.value(i).to_string(), vector.to_vec());
        }
        let done = n * EMBED_PART + part.len();
        report(done as u64, total);
        if done >= logged + EMBED_LOG {
            logged = done;
            tracing::info!("collection `{collection}`: {done} of {total} chunks embedded");
        }
    }
    let mut list = ListBuilder::new(Float32Builder::new()).with_field(Arc::new(Field::new(
        "element",
        DataType::Float32,
        true,
    )));
    let mut by = StringBuilder::new();
    for i in 0..fresh.num_rows() {
        let vector = reuse
            .get(hashes.value(i))
            .ok_or_else(|| Failure::from("a chunk was left without a vector".to_string()))?;
        list.values().append_slice(vector);
        list.append(true);
        by.append_value(embedder.identity());
    }
    let mut columns = fresh.columns().to_vec();
    columns.push(Arc::new(list.finish()));
    columns.push(Arc::new(by.finish()));
    let batch = RecordBatch::try_new(chunk_schema(true), columns)
        .map_err(|e| Failure::from(e.to_string()))?;
    Ok((batch, todo.len() as u64))
}
