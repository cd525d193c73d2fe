//! Searching a collection: the question against the text index (BM25), the
//! vector index (its embedding's nearest chunks) or both fused by their
//! relative scores, of the newest version whose indexes are whole; a filter as a SQL
//! predicate over that version's chunk table; and the hits' rows read from the
//! same version — one version answers, never a mix.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_core::AssetKind;
use sluice_project::{Definition, Embedding};
use sluice_retrieve::vector::VectorIndex;
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
    /// Both, fused by relative score: each list's scores scaled to 0..1,
    /// weighted 3:1 for the vector list.
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
    /// How well it ranks: BM25 (text), cosine similarity (vector), or
    /// 0.75 · its scaled vector score + 0.25 · its scaled BM25 (hybrid, 0..1).
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
    /// How they were ranked.
    pub mode: SearchMode,
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
}

/// Columns every chunk has, shown as fields of their own rather than metadata
/// (or not at all: the embedding).
const CORE: [&str; 10] = [
    "document_id",
    "chunk_index",
    "chunk_id",
    "heading_path",
    "text",
    "tokens",
    "document_hash",
    "content_hash",
    "embedding",
    "embedded_by",
];

/// The vector list's weight in a hybrid search (the text list has the rest):
/// Weaviate's default `alpha` for its relative score fusion, not tuned here.
/// On the example's 62 labelled questions any weight from 0.5 to 0.9 found an
/// answer in the top 5 for 61 (vector alone 61, text alone 54); reciprocal rank
/// fusion (k = 60), the earlier method, found 60, and ranked the answer lower
/// (mean reciprocal rank 0.828 against 0.854 here and 0.843 for vector alone).
const VECTOR_WEIGHT: f64 = 0.75;

/// How many of each list a hybrid search fuses: twice the hits asked for, at
/// least this many (the top 20 and 50 fused as well or worse).
const FUSED: usize = 10;

/// The `k` chunks of `collection` that best answer `question`.
pub async fn search(
    ws: &Workspace,
    collection: &str,
    question: &str,
    k: usize,
    mode: Option<SearchMode>,
    filter: Option<&str>,
) -> Result<SearchResult, ReadError> {
    ensure_collection(ws, collection)?;
    let embedding = match ws.project.assets.get(collection).map(|a| &a.definition) {
        Some(Definition::Collection(def)) => def.embedding.clone(),
        _ => Embedding::None,
    };
    let mode = mode.unwrap_or(if embedding == Embedding::None {
        SearchMode::Text
    } else {
        SearchMode::Hybrid
    });
    if mode != SearchMode::Text && embedding == Embedding::None {
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
    let query = if mode == SearchMode::Text {
        None
    } else {
        let embedder =
            crate::embedders::embedder(&embedding).map_err(|e| ReadError::Embedding {
                collection: collection.to_string(),
                message: e.to_string(),
            })?;
        let Some(embedder) = embedder else {
            return Err(ReadError::SearchMode {
                collection: collection.to_string(),
                mode: mode.as_str(),
            });
        };
        let question = question.to_string();
        let identity = embedder.identity().to_string();
        let vector = tokio::task::spawn_blocking(move || embedder.embed(&[question.as_str()]))
            .await
            .map_err(|e| read_rows(collection, &e))?
            .map_err(|e| ReadError::Embedding {
                collection: collection.to_string(),
                message: e.to_string(),
            })?;
        Some((vector, identity))
    };
    let identity = query.as_ref().map(|(_, identity)| identity.clone());
    let dir = ws.warehouse.index_dir(collection, version);
    let question = question.to_string();
    let name = collection.to_string();
    let ranked = tokio::task::spawn_blocking(move || {
        let keep = |id: &str| allowed.as_ref().is_none_or(|a| a.contains(id));
        let depth = if mode == SearchMode::Hybrid {
            (2 * k).max(FUSED)
        } else {
            k
        };
        let text = if mode == SearchMode::Vector {
            vec![]
        } else {
            sluice_retrieve::TextIndex::open(&dir.join("text"))
                .and_then(|index| index.search(&question, depth, &keep))
                .map_err(|e| read_rows(&name, &e))?
        };
        let vector = match &query {
            Some((q, _)) => {
                let index = vector_index(&dir.join("vector")).map_err(|e| read_rows(&name, &e))?;
                index.search(
                    q,
                    depth,
                    allowed.as_ref().map(|_| &keep as &dyn Fn(&str) -> bool),
                )
            }
            None => vec![],
        };
        Ok::<_, ReadError>(match mode {
            SearchMode::Text => text,
            SearchMode::Vector => vector,
            SearchMode::Hybrid => fuse(&[(1.0 - VECTOR_WEIGHT, text), (VECTOR_WEIGHT, vector)], k),
        })
    })
    .await
    .map_err(|e| read_rows(collection, &e))??;
    let (hits, embedded_by) = rows_of(&ctx, collection, &ranked).await?;
    // A question embedded by another model than the chunks were is compared
    // with vectors of another space: say so rather than answer noise.
    if let Some(identity) = identity
        && let Some(other) = embedded_by.iter().find(|by| **by != identity)
    {
        return Err(ReadError::Embedding {
            collection: collection.to_string(),
            message: format!(
                "its chunks were embedded by `{other}` but the model loaded now is \
                 `{identity}` (its files changed since the last run): run `sluice run \
                 {collection}` to embed them again, or search with `--mode text`"
            ),
        });
    }
    Ok(SearchResult {
        version,
        mode,
        hits,
    })
}

/// `Ok` when `name` is a collection of the project; else the error naming
/// those it has.
pub fn ensure_collection(ws: &Workspace, name: &str) -> Result<(), ReadError> {
    let collections: Vec<String> = ws
        .project
        .assets
        .values()
        .filter(|a| a.kind() == AssetKind::Collection)
        .map(|a| a.name.to_string())
        .collect();
    if collections.iter().any(|c| c == name) {
        Ok(())
    } else {
        Err(ReadError::NotACollection {
            name: name.to_string(),
            collections,
        })
    }
}

/// Relative score fusion (Weaviate's `relativeScoreFusion`) of ranked lists
/// with their weights: each list's scores are scaled to 0..1 between its worst
/// and its best (all 1 when they are equal), and a chunk scores the weighted
/// sum over the lists it is in; the best `k`, ties by chunk id.
fn fuse(lists: &[(f64, Vec<(String, f32)>)], k: usize) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, f64> = HashMap::new();
    for (weight, list) in lists {
        let (low, high) = list
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
                (l.min(f64::from(x.1)), h.max(f64::from(x.1)))
            });
        for (id, score) in list {
            let scaled = if high > low {
                (f64::from(*score) - low) / (high - low)
            } else {
                1.0
            };
            *scores.entry(id.as_str()).or_default() += weight * scaled;
        }
    }
    let mut fused: Vec<(&str, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    fused
        .into_iter()
        .take(k)
        .map(|(id, score)| (id.to_string(), score as f32))
        .collect()
}

/// Loaded vector indexes: per collection's indexes folder, the index folder
/// read and its index.
type Loaded = Mutex<HashMap<PathBuf, (PathBuf, Arc<VectorIndex>)>>;

/// The vector index in `dir`, read once per process and version: an index
/// folder is never changed once published, and a newer version's index
/// replaces an older one's in the cache.
fn vector_index(dir: &Path) -> Result<Arc<VectorIndex>, sluice_retrieve::Error> {
    static CACHE: OnceLock<Loaded> = OnceLock::new();
    // The collection's indexes folder holds one folder per version.
    let collection = dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some((at, index)) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&collection)
        && at == dir
    {
        return Ok(index.clone());
    }
    let index = Arc::new(VectorIndex::open(dir)?);
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(collection, (dir.to_path_buf(), index.clone()));
    Ok(index)
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

/// The rows of the ranked chunks, in rank order, and the embedders that
/// embedded them.
async fn rows_of(
    ctx: &datafusion::prelude::SessionContext,
    collection: &str,
    ranked: &[(String, f32)],
) -> Result<(Vec<SearchHit>, BTreeSet<String>), ReadError> {
    let mut embedded_by = BTreeSet::new();
    if ranked.is_empty() {
        return Ok((vec![], embedded_by));
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
            embedded_by.extend(text_of("embedded_by", row));
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
    let hits = ranked
        .iter()
        .filter_map(|(id, score)| {
            by_id.remove(id).map(|mut hit| {
                hit.score = f64::from(*score);
                hit
            })
        })
        .collect();
    Ok((hits, embedded_by))
}

#[cfg(test)]
mod tests {
    use super::fuse;

    fn list(items: &[(&str, f32)]) -> Vec<(String, f32)> {
        items
            .iter()
            .map(|(id, s)| ((*id).to_string(), *s))
            .collect()
    }

    #[test]
    fn relative_scores_are_scaled_per_list_and_weighted() {
        let text = list(&[("a", 12.0), ("b", 7.0), ("c", 2.0)]);
        let vector = list(&[("c", 0.9), ("b", 0.8), ("d", 0.5)]);
        let fused = fuse(&[(0.25, text), (0.75, vector)], 4);
        // c: 0.25·0 + 0.75·1; b: 0.25·0.5 + 0.75·0.75; a: 0.25·1; d: 0.
        let expected = [("c", 0.75), ("b", 0.6875), ("a", 0.25), ("d", 0.0)];
        assert_eq!(fused.len(), 4);
        for ((id, score), (want, want_score)) in fused.iter().zip(expected) {
            assert_eq!(id, want, "{fused:?}");
            assert!((f64::from(*score) - want_score).abs() < 1e-6, "{fused:?}");
        }
        // The best k only; equal scores by chunk id; a list of one scores 1,
        // an empty one adds nothing.
        let fused = fuse(&[(0.25, list(&[("z", 3.0)])), (0.75, vec![])], 1);
        assert_eq!(fused, [("z".to_string(), 0.25)]);
        let fused = fuse(&[(0.5, list(&[("y", 1.0), ("x", 1.0)]))], 2);
        assert_eq!(fused, [("x".to_string(), 0.5), ("y".to_string(), 0.5)]);
    }
}
