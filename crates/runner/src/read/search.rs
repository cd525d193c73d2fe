//! Searching a collection: the question against the text index of the newest
//! version whose indexes are whole, a filter as a SQL predicate over that
//! version's chunk table, and the hits' rows read from the same version — one
//! version answers, never a mix.

use std::collections::{BTreeMap, HashSet};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_core::AssetKind;
use sluice_store::AsOf;

use super::{ReadError, printable};
use crate::Workspace;

/// How a search ranks chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// BM25 over the chunks' text and heading paths.
    Text,
    /// Nearest embeddings.
    Vector,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

impl SearchMode {
    /// The mode a word names (`text`, `vector`, `hybrid`).
    pub fn from_word(word: &str) -> Option<SearchMode> {
        match word {
            "text" => Some(SearchMode::Text),
            "vector" => Some(SearchMode::Vector),
            "hybrid" => Some(SearchMode::Hybrid),
            _ => None,
        }
    }

    /// Its word.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Text => "text",
            SearchMode::Vector => "vector",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

/// One chunk a search found.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// `<document>#<n>`.
    pub chunk_id: String,
    /// The document it is part of.
    pub document_id: String,
    /// The sections it is in: `Classes > Inheritance`.
    pub heading_path: String,
    /// Its text.
    pub text: String,
    /// How well it ranks (BM25 for text search).
    pub score: f64,
    /// The collection's metadata columns and the document's title, as text
    /// (null: absent).
    pub metadata: BTreeMap<String, Option<String>>,
}

/// What a search answered, from which version.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The collection's version the hits come from.
    pub version: u64,
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
}

/// Columns every chunk has, shown as fields of their own rather than metadata.
const CORE: [&str; 8] = [
    "document_id",
    "chunk_index",
    "chunk_id",
    "heading_path",
    "text",
    "tokens",
    "document_hash",
    "content_hash",
];

/// The `k` chunks of `collection` that best answer `question`.
pub async fn search(
    ws: &Workspace,
    collection: &str,
    question: &str,
    k: usize,
    mode: SearchMode,
    filter: Option<&str>,
) -> Result<SearchResult, ReadError> {
    let collections: Vec<String> = ws
        .project
        .assets
        .values()
        .filter(|a| a.kind() == AssetKind::Collection)
        .map(|a| a.name.to_string())
        .collect();
    if !collections.iter().any(|c| c == collection) {
        return Err(ReadError::NotACollection {
            name: collection.to_string(),
            collections,
        });
    }
    if mode != SearchMode::Text {
        return Err(ReadError::SearchMode {
            collection: collection.to_string(),
            mode: mode.as_str(),
        });
    }
    let published = ws.store.latest(collection).await?.map(|l| l.version);
    let Some(version) = published.and_then(|p| {
        ws.warehouse
            .index_versions(collection)
            .into_iter()
            .find(|v| *v <= p)
    }) else {
        return Err(ReadError::NotIndexed {
            collection: collection.to_string(),
        });
    };
    let ctx = sluice_transform::session();
    let provider = ws
        .table_provider(collection, AsOf::Version(version), &ctx.state())
        .await?;
    ctx.register_table("chunks", provider)
        .map_err(|e| read_rows(collection, &e))?;

    let allowed = match filter {
        Some(predicate) => Some(filtered(&ctx, collection, predicate).await?),
        None => None,
    };
    let dir = ws.warehouse.index_dir(collection, version).join("text");
    let question = question.to_string();
    let ranked = tokio::task::spawn_blocking(move || {
        let index = sluice_retrieve::TextIndex::open(&dir)?;
        let keep = |id: &str| allowed.as_ref().is_none_or(|a| a.contains(id));
        index.search(&question, k, &keep)
    })
    .await
    .map_err(|e| ReadError::ReadRows {
        table: collection.to_string(),
        message: e.to_string(),
    })?
    .map_err(|e| ReadError::ReadRows {
        table: collection.to_string(),
        message: e.to_string(),
    })?;
    let hits = rows_of(&ctx, collection, &ranked).await?;
    Ok(SearchResult { version, hits })
}

fn read_rows(collection: &str, e: &dyn std::fmt::Display) -> ReadError {
    ReadError::ReadRows {
        table: collection.to_string(),
        message: e.to_string(),
    }
}

/// The chunk ids for which `predicate` holds.
async fn filtered(
    ctx: &datafusion::prelude::SessionContext,
    collection: &str,
    predicate: &str,
) -> Result<HashSet<String>, ReadError> {
    let bad = |e: &dyn std::fmt::Display| ReadError::BadFilter {
        collection: collection.to_string(),
        filter: printable(predicate),
        reason: e.to_string(),
    };
    // The predicate is parsed on its own first, so that it cannot close the
    // query around it (`1=1) UNION ...`).
    let expr = ctx
        .parse_sql_expr(
            predicate,
            ctx.table("chunks").await.map_err(|e| bad(&e))?.schema(),
        )
        .map_err(|e| bad(&e))?;
    let batches = ctx
        .table("chunks")
        .await
        .and_then(|df| df.filter(expr))
        .and_then(|df| df.select_columns(&["chunk_id"]))
        .map_err(|e| bad(&e))?
        .collect()
        .await
        .map_err(|e| bad(&e))?;
    let mut out = HashSet::new();
    for batch in &batches {
        let ids = crate::kinds::utf8(batch.column(0)).map_err(|e| bad(&e))?;
        for i in 0..ids.len() {
            out.insert(ids.value(i).to_string());
        }
    }
    Ok(out)
}

/// The rows of the ranked chunks, in rank order.
async fn rows_of(
    ctx: &datafusion::prelude::SessionContext,
    collection: &str,
    ranked: &[(String, f32)],
) -> Result<Vec<SearchHit>, ReadError> {
    if ranked.is_empty() {
        return Ok(vec![]);
    }
    use datafusion::prelude::{col, lit};
    let ids: Vec<_> = ranked.iter().map(|(id, _)| lit(id.clone())).collect();
    let batches: Vec<RecordBatch> = ctx
        .table("chunks")
        .await
        .and_then(|df| df.filter(col("chunk_id").in_list(ids, false)))
        .map_err(|e| read_rows(collection, &e))?
        .collect()
        .await
        .map_err(|e| read_rows(collection, &e))?;
    let mut by_id: BTreeMap<String, SearchHit> = BTreeMap::new();
    let options = FormatOptions::default();
    for batch in &batches {
        let schema = batch.schema();
        let text_of = |name: &str, row: usize| -> Option<String> {
            let i = schema.index_of(name).ok()?;
            let column = batch.column(i);
            if column.is_null(row) {
                return None;
            }
            ArrayFormatter::try_new(column.as_ref(), &options)
                .ok()
                .map(|f| f.value(row).to_string())
        };
        for row in 0..batch.num_rows() {
            let chunk_id = text_of("chunk_id", row).unwrap_or_default();
            let metadata = schema
                .fields()
                .iter()
                .filter(|f| !CORE.contains(&f.name().as_str()))
                .map(|f| (f.name().clone(), text_of(f.name(), row)))
                .collect();
            by_id.insert(
                chunk_id.clone(),
                SearchHit {
                    chunk_id,
                    document_id: text_of("document_id", row).unwrap_or_default(),
                    heading_path: text_of("heading_path", row).unwrap_or_default(),
                    text: text_of("text", row).unwrap_or_default(),
                    score: 0.0,
                    metadata,
                },
            );
        }
    }
    Ok(ranked
        .iter()
        .filter_map(|(id, score)| {
            by_id.remove(id).map(|mut hit| {
                hit.score = f64::from(*score);
                hit
            })
        })
        .collect())
}
