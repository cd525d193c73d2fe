//! BM25 text ranking of a collection's chunks, by tantivy. An index is a folder
//! made for one version's chunks and never changed after: the chunk table
//! stays the truth, so an index can always be made again from it, and a search
//! opens the folder of the version it answers from.
//!
//! A version's index starts from the previous version's: its files are linked
//! (tantivy never rewrites a file: segments, deletes and `meta.json` are new
//! files or atomic renames), the chunks gone or changed are deleted and the new
//! ones added, so a 1% change costs about 1% of a build. Chunks are matched by
//! id and content hash (heading path and text).
//!
//! The chunk's text and its heading path are indexed with tantivy's English
//! stemming tokenizer. A question is not query syntax: it is cut into terms by
//! the same tokenizer and each term may match either field (`:`, `?`, quotes
//! and `AND` are words or nothing, never an error).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, TantivyDocument, Term, doc};

use crate::Error;

/// Memory the writer may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 50_000_000;

/// The fields of a text index.
struct Fields {
    chunk_id: Field,
    /// Absent from the indexes made before indexes were incremental.
    content_hash: Option<Field>,
    heading: Field,
    text: Field,
}

impl Fields {
    /// The fields of an index's schema, by name.
    fn of(schema: &Schema) -> tantivy::Result<Fields> {
        Ok(Fields {
            chunk_id: schema.get_field("chunk_id")?,
            content_hash: schema.get_field("content_hash").ok(),
            heading: schema.get_field("heading")?,
            text: schema.get_field("text")?,
        })
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let chunk_id = builder.add_text_field("chunk_id", STRING | STORED);
    let content_hash = builder.add_text_field("content_hash", STORED);
    let heading = builder.add_text_field("heading", indexed.clone());
    let text = builder.add_text_field("text", indexed);
    (
        builder.build(),
        Fields {
            chunk_id,
            content_hash: Some(content_hash),
            heading,
            text,
        },
    )
}

/// One chunk as the text index reads it.
#[derive(Debug, Clone, Copy)]
pub struct TextChunk<'a> {
    /// The chunk's id (`<document>#<n>`), what a search returns.
    pub chunk_id: &'a str,
    /// Its content hash (heading path and text).
    pub content_hash: &'a str,
    /// Its heading path.
    pub heading_path: &'a str,
    /// Its text.
    pub text: &'a str,
}

/// What making a text index did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextBuild {
    /// Chunks kept from the previous version's index.
    pub kept: u64,
    /// Chunks added.
    pub added: u64,
    /// Chunks deleted (gone, or changed and added again).
    pub deleted: u64,
    /// Whether the index was made anew.
    pub rebuilt: bool,
    /// Why the previous version's index was passed over, if it was.
    pub passed_over: Option<String>,
}

/// Makes the text index of `chunks` in `dir`, which must be empty or absent,
/// starting from the index in `previous` when there is one it can read (one of
/// another layout, or unreadable, is passed over: the index is made anew).
pub fn build_text_index<'a>(
    dir: &Path,
    previous: Option<&Path>,
    chunks: impl IntoIterator<Item = TextChunk<'a>>,
) -> Result<TextBuild, Error> {
    let fail = |e: &dyn std::fmt::Display| Error::TextIndex {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let (schema, f) = schema();
    let mut report = TextBuild::default();
    let start = match previous {
        Some(previous) => match link_previous(previous, dir, &schema) {
            Ok(index) => Some(index),
            Err(e) => {
                report.passed_over = Some(format!("{}: {e}", previous.display()));
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| fail(&e))?;
                }
                None
            }
        },
        None => None,
    };
    let (index, mut indexed) = match start {
        Some(index) => {
            let indexed = live_keys(&index, &f).map_err(|e| fail(&e))?;
            (index, indexed)
        }
        None => {
            report.rebuilt = true;
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
            (
                Index::create_in_dir(dir, schema).map_err(|e| fail(&e))?,
                HashMap::new(),
            )
        }
    };
    let mut writer: IndexWriter = index
        .writer_with_num_threads(1, WRITER_MEMORY)
        .map_err(|e| fail(&e))?;
    // Which indexed chunks stay: the same id with the same content.
    let chunks: Vec<TextChunk<'a>> = chunks.into_iter().collect();
    let mut stays: HashSet<&str> = HashSet::new();
    for c in &chunks {
        if indexed.get(c.chunk_id).is_some_and(|h| h == c.content_hash) {
            stays.insert(c.chunk_id);
        }
    }
    indexed.retain(|id, _| !stays.contains(id.as_str()));
    // Deletes first: a delete applies to the documents added before it.
    for id in indexed.keys() {
        writer.delete_term(Term::from_field_text(f.chunk_id, id));
        report.deleted += 1;
    }
    for c in chunks.iter().filter(|c| !stays.contains(c.chunk_id)) {
        let mut d = doc!(
            f.chunk_id => c.chunk_id,
            f.heading => c.heading_path,
            f.text => c.text,
        );
        if let Some(hash) = f.content_hash {
            d.add_text(hash, c.content_hash);
        }
        writer.add_document(d).map_err(|e| fail(&e))?;
        report.added += 1;
    }
    report.kept = stays.len() as u64;
    writer.commit().map_err(|e| fail(&e))?;
    writer.wait_merging_threads().map_err(|e| fail(&e))?;
    Ok(report)
}

/// `previous`'s files linked (or copied, across file systems) into `dir`,
/// opened as an index, when it has this layout.
fn link_previous(previous: &Path, dir: &Path, schema: &Schema) -> Result<Index, String> {
    let old = Index::open_in_dir(previous).map_err(|e| e.to_string())?;
    if old.schema() != *schema {
        return Err("it was made with another layout".to_string());
    }
    drop(old);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(previous).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        // Locks belong to the index that made them.
        if name.to_string_lossy().ends_with(".lock") || !entry.path().is_file() {
            continue;
        }
        let to = dir.join(&name);
        if std::fs::hard_link(entry.path(), &to).is_err() {
            std::fs::copy(entry.path(), &to).map_err(|e| e.to_string())?;
        }
    }
    Index::open_in_dir(dir).map_err(|e| e.to_string())
}

/// The chunks an index holds: id → content hash.
fn live_keys(index: &Index, f: &Fields) -> tantivy::Result<HashMap<String, String>> {
    let reader = index.reader()?;
    let searcher = reader.searcher();
    let mut keys = HashMap::new();
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(64)?;
        let alive = segment.alive_bitset();
        for doc in 0..segment.max_doc() {
            if alive.is_some_and(|a| !a.is_alive(doc)) {
                continue;
            }
            let d: TantivyDocument = store.get(doc)?;
            let text = |field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            if let Some(hash) = f.content_hash {
                keys.insert(text(f.chunk_id), text(hash));
            }
        }
    }
    Ok(keys)
}

/// An open text index.
pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl TextIndex {
    /// Opens the index in `dir`.
    pub fn open(dir: &Path) -> Result<TextIndex, Error> {
        let fail = |e: &dyn std::fmt::Display| Error::TextIndex {
            path: dir.to_path_buf(),
            message: e.to_string(),
        };
        let index = Index::open_in_dir(dir).map_err(|e| fail(&e))?;
        let reader = index.reader().map_err(|e| fail(&e))?;
        let fields = Fields::of(&index.schema()).map_err(|e| fail(&e))?;
        Ok(TextIndex {
            index,
            reader,
            fields,
        })
    }

    /// The `k` chunks that rank best for `question` by BM25, best first, as
    /// (chunk id, score). `keep` filters chunks by id before they count.
    pub fn search(
        &self,
        question: &str,
        k: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, f32)>, Error> {
        let fail = |e: &dyn std::fmt::Display| Error::TextIndex {
            path: Default::default(),
            message: e.to_string(),
        };
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.text)
            .map_err(|e| fail(&e))?;
        let mut terms: Vec<String> = vec![];
        analyzer.token_stream(question).process(&mut |t| {
            if !terms.contains(&t.text) {
                terms.push(t.text.clone());
            }
        });
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .flat_map(|t| [self.fields.text, self.fields.heading].map(|f| (f, t)))
            .map(|(field, t)| {
                let term = Term::from_field_text(field, t);
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        if clauses.is_empty() {
            return Ok(vec![]);
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let total = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        // Filtered out chunks do not count: ask for more until `k` are kept
        // or every match was seen.
        let mut limit = k.max(1) * 4;
        loop {
            let top = searcher
                .search(&query, &TopDocs::with_limit(limit.min(total.max(1))))
                .map_err(|e| fail(&e))?;
            let seen = top.len();
            let mut out = vec![];
            for (score, address) in top {
                let doc: TantivyDocument = searcher.doc(address).map_err(|e| fail(&e))?;
                let Some(id) = doc
                    .get_first(self.fields.chunk_id)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                if keep(&id) {
                    out.push((id, score));
                    if out.len() == k {
                        return Ok(out);
                    }
                }
            }
            if seen < limit || limit >= total {
                return Ok(out);
            }
            limit *= 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_ranks_the_chunk_that_matches_and_filters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chunks = [
            (
                "a#0",
                "Errors",
                "Exceptions are raised with the raise statement.",
            ),
            (
                "a#1",
                "Errors > Handling",
                "Use try and except to handle an exception.",
            ),
            ("b#0", "Classes", "A class bundles data and functions."),
        ];
        let built = build_text_index(
            dir.path(),
            None,
            chunks.iter().map(|(id, h, t)| TextChunk {
                chunk_id: id,
                content_hash: t,
                heading_path: h,
                text: t,
            }),
        )
        .expect("build");
        assert_eq!((built.added, built.rebuilt), (3, true));
        let index = TextIndex::open(dir.path()).expect("open");
        let all = |_: &str| true;
        let hits = index
            .search("How do I handle exceptions?", 2, &all)
            .expect("search");
        assert_eq!(hits[0].0, "a#1", "{hits:?}");
        assert_eq!(hits.len(), 2);
        // Query syntax in a question is text: no error.
        let hits = index.search("class: \"data", 5, &all).expect("lenient");
        assert_eq!(hits.first().map(|h| h.0.as_str()), Some("b#0"), "{hits:?}");
        let not_a = |id: &str| !id.starts_with("a#");
        let hits = index
            .search("exceptions class", 5, &not_a)
            .expect("filtered");
        assert_eq!(
            hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            ["b#0"]
        );
    }

    fn chunk<'a>(id: &'a str, text: &'a str) -> TextChunk<'a> {
        TextChunk {
            chunk_id: id,
            content_hash: text,
            heading_path: "",
            text,
        }
    }

    fn ids(index: &TextIndex, question: &str) -> Vec<String> {
        let mut ids: Vec<String> = index
            .search(question, 10, &|_| true)
            .expect("search")
            .into_iter()
            .map(|h| h.0)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_version_starts_from_the_previous_index_and_leaves_it_whole() {
        let root = tempfile::tempdir().expect("tempdir");
        let (v1, v2, v3) = (
            root.path().join("v1"),
            root.path().join("v2"),
            root.path().join("v3"),
        );
        let first = [
            chunk("a#0", "walrus operator assignment expressions"),
            chunk("b#0", "the walrus appears in comprehensions"),
            chunk("c#0", "decorators wrap functions"),
        ];
        build_text_index(&v1, None, first).expect("v1");
        // b changed, c gone, d new, a unchanged.
        let second = [
            chunk("a#0", "walrus operator assignment expressions"),
            chunk("b#0", "generators yield values lazily"),
            chunk("d#0", "context managers and the with statement"),
        ];
        let built = build_text_index(&v2, Some(&v1), second).expect("v2");
        assert_eq!(
            (built.kept, built.added, built.deleted, built.rebuilt),
            (1, 2, 2, false),
            "{built:?}"
        );
        let new = TextIndex::open(&v2).expect("open v2");
        assert_eq!(ids(&new, "walrus"), ["a#0"]);
        assert_eq!(ids(&new, "decorators"), Vec::<String>::new());
        assert_eq!(ids(&new, "generators"), ["b#0"]);
        assert_eq!(ids(&new, "context managers"), ["d#0"]);
        // The previous version's index answers as it did.
        let old = TextIndex::open(&v1).expect("open v1");
        assert_eq!(ids(&old, "walrus"), ["a#0", "b#0"]);
        assert_eq!(ids(&old, "decorators"), ["c#0"]);
        assert_eq!(ids(&old, "generators"), Vec::<String>::new());
        // And the next one starts from it in turn; an unreadable previous
        // index is passed over.
        let third = [chunk("a#0", "walrus operator assignment expressions")];
        let built = build_text_index(&v3, Some(&v2), third).expect("v3");
        assert_eq!((built.kept, built.deleted), (1, 2));
        assert_eq!(
            ids(&TextIndex::open(&v3).expect("v3"), "generators"),
            Vec::<String>::new()
        );
        let garbage = root.path().join("garbage");
        std::fs::create_dir_all(&garbage).expect("mkdir");
        std::fs::write(garbage.join("meta.json"), "{").expect("write");
        let built = build_text_index(&root.path().join("v4"), Some(&garbage), third).expect("v4");
        assert!(built.rebuilt && built.passed_over.is_some(), "{built:?}");
        assert_eq!(
            ids(
                &TextIndex::open(&root.path().join("v4")).expect("v4"),
                "walrus"
            ),
            ["a#0"]
        );
    }
}
