//! BM25 text ranking of a collection's chunks, by tantivy. An index is a folder
//! made whole from one version's chunks and never changed after: the chunk
//! table stays the truth, so an index can always be made again from it, and a
//! search opens the folder of the version it answers from.
//!
//! The chunk's text and its heading path are indexed with tantivy's English
//! stemming tokenizer. A question is not query syntax: it is cut into terms by
//! the same tokenizer and each term may match either field (`:`, `?`, quotes
//! and `AND` are words or nothing, never an error).

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
    heading: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let chunk_id = builder.add_text_field("chunk_id", STRING | STORED);
    let heading = builder.add_text_field("heading", indexed.clone());
    let text = builder.add_text_field("text", indexed);
    (
        builder.build(),
        Fields {
            chunk_id,
            heading,
            text,
        },
    )
}

/// One chunk as the text index reads it.
pub struct TextChunk<'a> {
    /// The chunk's id (`<document>#<n>`), what a search returns.
    pub chunk_id: &'a str,
    /// Its heading path.
    pub heading_path: &'a str,
    /// Its text.
    pub text: &'a str,
}

/// Makes a text index of `chunks` in `dir`, which must be empty or absent.
pub fn build_text_index<'a>(
    dir: &Path,
    chunks: impl IntoIterator<Item = TextChunk<'a>>,
) -> Result<u64, Error> {
    let fail = |e: &dyn std::fmt::Display| Error::TextIndex {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    let (schema, f) = schema();
    let index = Index::create_in_dir(dir, schema).map_err(|e| fail(&e))?;
    let mut writer: IndexWriter = index
        .writer_with_num_threads(1, WRITER_MEMORY)
        .map_err(|e| fail(&e))?;
    let mut n = 0;
    for c in chunks {
        writer
            .add_document(doc!(
                f.chunk_id => c.chunk_id,
                f.heading => c.heading_path,
                f.text => c.text,
            ))
            .map_err(|e| fail(&e))?;
        n += 1;
    }
    writer.commit().map_err(|e| fail(&e))?;
    writer.wait_merging_threads().map_err(|e| fail(&e))?;
    Ok(n)
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
        let (_, fields) = schema();
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
        let n = build_text_index(
            dir.path(),
            chunks.iter().map(|(id, h, t)| TextChunk {
                chunk_id: id,
                heading_path: h,
                text: t,
            }),
        )
        .expect("build");
        assert_eq!(n, 3);
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
}
