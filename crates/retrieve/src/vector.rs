//! A collection version's vector index: an HNSW graph over its chunks'
//! embeddings ([`crate::hnsw`]) and, per node, the chunk it stands for (chunk id
//! and content hash).
//!
//! The index of a new version starts from the previous version's: chunks whose
//! id and content are unchanged keep their nodes, new ones are inserted and
//! those gone are deleted (tombstoned), so a 1% change costs 1% of a build.
//! When tombstones pass a quarter of the nodes the graph is built anew.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use crate::Error;
use crate::hnsw::{Hnsw, Params};

/// The graph's file in an index folder.
const GRAPH: &str = "graph.hnsw";
/// The nodes' chunks, one JSON array of `[chunk_id, content_hash]`.
const KEYS: &str = "keys.json";

/// Tombstones beyond this share of the nodes make the next build start anew.
const MAX_DELETED: f64 = 0.25;

/// How many candidates a search keeps while walking the graph, at least.
const EF_SEARCH: usize = 96;

/// One chunk to index.
pub struct VectorChunk<'a> {
    /// Its id.
    pub chunk_id: &'a str,
    /// Its content hash: a chunk whose id stays but whose text changed is
    /// another node.
    pub content_hash: &'a str,
    /// Its embedding (normalized).
    pub vector: &'a [f32],
}

/// An index of one collection version.
pub struct VectorIndex {
    graph: Hnsw,
    keys: Vec<(String, String)>,
}

/// What building an index did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VectorBuild {
    /// Nodes kept from the previous version's index.
    pub kept: usize,
    /// Nodes inserted.
    pub inserted: usize,
    /// Nodes deleted.
    pub deleted: usize,
    /// Whether the graph was built anew.
    pub rebuilt: bool,
}

impl VectorIndex {
    /// The index of `chunks`, starting from `previous` when it has their
    /// dimension.
    pub fn build<'a>(
        previous: Option<VectorIndex>,
        chunks: impl IntoIterator<Item = VectorChunk<'a>>,
        threads: usize,
    ) -> (VectorIndex, VectorBuild) {
        let chunks: Vec<VectorChunk<'a>> = chunks.into_iter().collect();
        let dim = chunks.first().map_or(0, |c| c.vector.len());
        let mut report = VectorBuild::default();
        let start = previous.filter(|p| p.graph.dim() == dim || chunks.is_empty());
        let (mut index, mut fresh) = match start {
            Some(mut prev) => {
                let live: HashMap<(&str, &str), u32> = prev
                    .keys
                    .iter()
                    .enumerate()
                    .filter(|(node, _)| !prev.graph.is_deleted(*node as u32))
                    .map(|(node, (id, hash))| ((id.as_str(), hash.as_str()), node as u32))
                    .collect();
                let mut seen = vec![false; prev.keys.len()];
                let mut fresh = vec![];
                for c in &chunks {
                    match live.get(&(c.chunk_id, c.content_hash)) {
                        Some(&node) if !seen[node as usize] => seen[node as usize] = true,
                        _ => fresh.push(c),
                    }
                }
                let gone: Vec<u32> = live
                    .values()
                    .copied()
                    .filter(|n| !seen[*n as usize])
                    .collect();
                let dead = prev.graph.len() - prev.graph.live() + gone.len();
                if dead as f64 > MAX_DELETED * (prev.graph.len() + fresh.len()) as f64 {
                    report.rebuilt = true;
                    (VectorIndex::empty(dim), chunks.iter().collect())
                } else {
                    for node in gone {
                        prev.graph.delete(node);
                        report.deleted += 1;
                    }
                    report.kept = prev.graph.live();
                    (prev, fresh)
                }
            }
            None => {
                report.rebuilt = true;
                (VectorIndex::empty(dim), chunks.iter().collect())
            }
        };
        let mut flat = Vec::with_capacity(fresh.len() * dim);
        for c in &fresh {
            flat.extend_from_slice(c.vector);
        }
        if !fresh.is_empty() {
            index.graph.insert_many(&flat, threads);
        }
        report.inserted = fresh.len();
        index.keys.extend(
            fresh
                .drain(..)
                .map(|c| (c.chunk_id.to_string(), c.content_hash.to_string())),
        );
        (index, report)
    }

    fn empty(dim: usize) -> VectorIndex {
        VectorIndex {
            graph: Hnsw::new(dim, Params::default()),
            keys: vec![],
        }
    }

    /// Chunks indexed and not deleted.
    pub fn live(&self) -> usize {
        self.graph.live()
    }

    /// Its vectors' dimension (0 when it has none).
    pub fn dim(&self) -> usize {
        self.graph.dim()
    }

    /// Writes the index into folder `dir` (which must exist).
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let failed = |e: &dyn std::fmt::Display| Error::VectorIndex {
            path: dir.to_path_buf(),
            message: e.to_string(),
        };
        let mut out =
            BufWriter::new(std::fs::File::create(dir.join(GRAPH)).map_err(|e| failed(&e))?);
        self.graph.write(&mut out).map_err(|e| failed(&e))?;
        out.flush().map_err(|e| failed(&e))?;
        let keys = serde_json::to_vec(&self.keys).map_err(|e| failed(&e))?;
        std::fs::write(dir.join(KEYS), keys).map_err(|e| failed(&e))?;
        Ok(())
    }

    /// Reads the index in folder `dir`.
    pub fn open(dir: &Path) -> Result<VectorIndex, Error> {
        let failed = |e: &dyn std::fmt::Display| Error::VectorIndex {
            path: dir.to_path_buf(),
            message: e.to_string(),
        };
        let mut input =
            BufReader::new(std::fs::File::open(dir.join(GRAPH)).map_err(|e| failed(&e))?);
        let graph = Hnsw::read(&mut input).map_err(|e| failed(&e))?;
        let keys: Vec<(String, String)> =
            serde_json::from_slice(&std::fs::read(dir.join(KEYS)).map_err(|e| failed(&e))?)
                .map_err(|e| failed(&e))?;
        if keys.len() != graph.len() {
            return Err(failed(&format!(
                "{} keys for {} nodes",
                keys.len(),
                graph.len()
            )));
        }
        Ok(VectorIndex { graph, keys })
    }

    /// Whether folder `dir` holds an index.
    pub fn exists(dir: &Path) -> bool {
        dir.join(GRAPH).is_file()
    }

    /// The `k` chunks nearest `query`, best first, as (chunk id, cosine
    /// similarity); `keep`, when given, says which chunk ids may be answered.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        keep: Option<&dyn Fn(&str) -> bool>,
    ) -> Vec<(String, f32)> {
        if k == 0 || self.graph.live() == 0 || query.len() != self.graph.dim() {
            return vec![];
        }
        let allow = keep.map(|keep| move |node: u32| keep(&self.keys[node as usize].0));
        let allow_ref: Option<&dyn Fn(u32) -> bool> =
            allow.as_ref().map(|f| f as &dyn Fn(u32) -> bool);
        self.graph
            .search(query, k, EF_SEARCH.max(k), allow_ref)
            .into_iter()
            .map(|(node, score)| (self.keys[node as usize].0.clone(), score))
            .collect()
    }
}
