//! A collection version's search indexes: the text index and the vector
//! index, each from the previous version's, made beside the warehouse's
//! published ones and renamed into place.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};

use super::{delta, utf8};
use crate::Workspace;
use crate::outcome::Failure;

/// Makes the search indexes of a collection's `version` from its chunk table,
/// unless they are in place, and removes those of versions before `keep_from`:
/// the text index, and the vector index when its chunks are `embedded`, each
/// from the index of version `keep_from` when there is one (only what changed
/// is added or deleted). They are made in a folder of their own and renamed
/// into place, so a search sees a version's indexes whole or not at all.
pub(super) async fn index(
    ws: &Workspace,
    name: &str,
    version: u64,
    keep_from: u64,
    embedded: bool,
) -> Result<(), Failure> {
    if ws.warehouse.index_dir(name, version).is_dir() {
        return Ok(());
    }
    let ctx = sluice_transform::session();
    let provider = delta::version_provider(ws, &ctx, name, version).await?;
    let mut columns = vec!["chunk_id", "heading_path", "text", "content_hash"];
    if embedded {
        columns.push("embedding");
    }
    let batches = ctx
        .read_table(provider)
        .and_then(|df| df.select_columns(&columns))
        .map_err(|e| Failure::of(&e))?
        .collect()
        .await
        .map_err(|e| Failure::of(&e))?;
    let building = ws
        .warehouse
        .index_building_dir(name, version)
        .map_err(|e| Failure::of(&e))?;
    let previous_dir = (keep_from != version).then(|| ws.warehouse.index_dir(name, keep_from));
    let previous_text = previous_dir
        .as_ref()
        .map(|dir| dir.join("text"))
        .filter(|dir| dir.is_dir());
    let previous = previous_dir
        .map(|dir| dir.join("vector"))
        .filter(|dir| embedded && sluice_retrieve::vector::VectorIndex::exists(dir));
    let warehouse = ws.warehouse.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let mut texts = vec![];
        for batch in &batches {
            let text = |i: usize| utf8(batch.column(i)).map_err(|e| Failure::of(&e));
            texts.push((text(0)?, text(1)?, text(2)?, text(3)?));
        }
        let chunks = texts.iter().flat_map(|(ids, headings, texts, hashes)| {
            (0..ids.len()).map(move |i| sluice_retrieve::TextChunk {
                chunk_id: ids.value(i),
                content_hash: hashes.value(i),
                heading_path: headings.value(i),
                text: texts.value(i),
            })
        });
        let report = sluice_retrieve::build_text_index(
            &building.join("text"),
            previous_text.as_deref(),
            chunks,
        )
        .map_err(|e| Failure::of(&e))?;
        if let Some(why) = &report.passed_over {
            tracing::info!("{why}; the text index was made from the chunk table");
        }
        tracing::info!(
            "text index: {} kept, {} added, {} deleted{}",
            report.kept,
            report.added,
            report.deleted,
            if report.rebuilt { " (made anew)" } else { "" }
        );
        if embedded {
            let ids: Vec<_> = texts.iter().map(|t| t.0.clone()).collect();
            build_vector_index(
                &batches,
                &ids,
                previous.as_deref(),
                &building.join("vector"),
            )?;
        }
        warehouse
            .publish_index(&name, version, &building, keep_from)
            .map_err(|e| Failure::of(&e))
    })
    .await
    .map_err(Failure::task)?
}

/// The vector index of the chunks in `batches` (columns chunk_id,
/// heading_path, text, content_hash, embedding; their `ids`), into folder
/// `dir`, starting from the index in `previous`. A previous index that cannot
/// be read is passed over: the index is built from the chunk table alone.
fn build_vector_index(
    batches: &[RecordBatch],
    ids: &[datafusion::arrow::array::StringArray],
    previous: Option<&std::path::Path>,
    dir: &std::path::Path,
) -> Result<(), Failure> {
    use sluice_retrieve::vector::{VectorChunk, VectorIndex};
    let mut hashes = vec![];
    for batch in batches {
        hashes.push(utf8(batch.column(3)).map_err(|e| Failure::of(&e))?);
    }
    let mut chunks = vec![];
    for ((batch, ids), hashes) in batches.iter().zip(ids).zip(&hashes) {
        let lists = batch.column(4).as_list::<i32>();
        let values = lists
            .values()
            .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
            .values();
        let offsets = lists.value_offsets();
        for i in 0..batch.num_rows() {
            if lists.is_null(i) {
                continue;
            }
            chunks.push(VectorChunk {
                chunk_id: ids.value(i),
                content_hash: hashes.value(i),
                vector: &values[offsets[i] as usize..offsets[i + 1] as usize],
            });
        }
    }
    let previous = previous.and_then(|p| match VectorIndex::open(p) {
        Ok(index) => Some(index),
        Err(e) => {
            tracing::warn!("{e}; building the vector index from the chunk table");
            None
        }
    });
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (index, report) = VectorIndex::build(previous, chunks, threads);
    tracing::info!(
        "vector index: {} kept, {} inserted, {} deleted{}",
        report.kept,
        report.inserted,
        report.deleted,
        if report.rebuilt { " (built anew)" } else { "" }
    );
    std::fs::create_dir_all(dir).map_err(|e| Failure::from(format!("{}: {e}", dir.display())))?;
    index.write(dir).map_err(|e| Failure::of(&e))
}
