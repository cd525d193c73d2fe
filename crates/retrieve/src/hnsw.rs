//! Approximate nearest-neighbour search over a collection's chunk embeddings:
//! a Hierarchical Navigable Small World graph (Malkov & Yashunin, "Efficient and
//! robust approximate nearest neighbor search using Hierarchical Navigable Small
//! World graphs", 2016), built the way hnswlib builds it.
//!
//! - Similarity is the inner product; the vectors are expected to be
//!   L2-normalized (all-MiniLM-L6-v2 embeddings are), which makes it the cosine.
//! - A node's level is drawn from an exponential distribution with
//!   `mL = 1 / ln(M)`; a node keeps at most `M` neighbours on the upper layers and
//!   `2·M` on layer 0, chosen by the neighbour-selection heuristic (the paper's
//!   algorithm 4, without extending or keeping pruned candidates, as in hnswlib).
//! - Vectors are one contiguous `Vec<f32>` whose first row starts on a 64-byte
//!   boundary; layer-0 neighbour lists are one flat array with a fixed stride
//!   (`1 + 2·M` words: count, then ids), upper layers are stored only for the
//!   nodes that reach them. On Linux both large arrays are advised to use
//!   transparent huge pages, so the scattered reads of a search miss the TLB less.
//! - The inner product is AVX2 + FMA when the CPU has them (detected at run
//!   time), else portable. The search and insert code is generic over the kernel
//!   and compiled once per kernel with its CPU features, so the kernel is inlined
//!   into the loops (no call through a pointer per similarity). A search
//!   prefetches the next candidate's list and, ahead of scoring them, its
//!   neighbours' vectors; its visited set has u8 tags (hnswlib's idea).
//! - Deletion is a tombstone: a deleted node is never returned but still routes
//!   searches through the graph.
//! - Sequential inserts are deterministic given [`Params::seed`];
//!   [`Hnsw::insert_many`] with more than one thread builds the same kind of graph
//!   (same levels) but in a scheduling-dependent order.
//!
//! # Filtered search
//!
//! [`Hnsw::search`] with an `allow` filter (or with deleted nodes) walks the graph
//! through every node but keeps only accepted ones (live and allowed) as results,
//! and keeps expanding until it holds `ef` accepted results (hnswlib's rule).
//! Because that walk degenerates into visiting most of the graph when the filter is
//! selective, it is bounded: **once the walk has evaluated more than
//! `max(len / 10, 16 · ef)` rejected nodes, or when it ends with fewer than `k`
//! results, the search falls back to an exact scan over the accepted ids**. So a
//! selective filter costs at most a tenth of the graph plus one scan, and the
//! search returns `k` results whenever `k` accepted nodes exist.
//!
//! # File format (version 1, little-endian)
//!
//! | field | type |
//! | --- | --- |
//! | magic `SLHNSW01` | 8 bytes |
//! | version (1) | u32 |
//! | dim, M, `ef_construction` | u32 each |
//! | seed, PRNG state | u64 each |
//! | nodes `n`, deleted count | u64 each |
//! | entry point (`u32::MAX`: none), top level | u32 each |
//! | total file length in bytes | u64 |
//! | vectors | `n · dim` f32 |
//! | levels | `n` u8 |
//! | neighbour lists: per node, per layer `0..=level` | u32 count, then count u32 ids |
//! | deleted ids, strictly increasing | u32 each |
//! | checksum of every byte before it | u64 |
//!
//! The checksum is [`checksum`]: a multiply–rotate hash over 8-byte
//! little-endian words (the last word zero-padded), finished with the byte
//! length and a `SplitMix64` finalizer. It detects every single-bit flip and every
//! truncation, so a torn or corrupted file is reported by [`Hnsw::read`], never
//! misread.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

const MAGIC: &[u8; 8] = b"SLHNSW01";
const VERSION: u32 = 1;
/// Bytes before the vectors.
const HEADER_LEN: u64 = 72;
/// Levels are capped (P(level > 24) is below 1e-28 for M = 16).
const MAX_LEVEL: usize = 24;
/// Largest dimension and M a file may declare (sanity bounds on untrusted input).
const MAX_DIM: usize = 1 << 16;
const MAX_M: usize = 1 << 12;
/// "No node" in the file's entry-point field.
const NONE: u32 = u32::MAX;

/// Construction parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Neighbours per node on the upper layers (`2·m` on layer 0). At least 2.
    pub m: usize,
    /// Beam width while inserting. At least 1.
    pub ef_construction: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            m: 16,
            ef_construction: 200,
            seed: 0x5eed,
        }
    }
}

/// An HNSW index over `dim`-dimensional f32 vectors with inner-product similarity.
/// Node ids are `0, 1, 2, …` in insertion order.
pub struct Hnsw {
    dim: usize,
    params: Params,
    /// `pad` unused floats, then `len · dim` floats, row-major. `pad` (0..16)
    /// puts the first row on a 64-byte boundary, so a row whose size is a multiple
    /// of 64 bytes (384 floats) spans no more cache lines than it must.
    vectors: Vec<f32>,
    pad: usize,
    /// Each node's top layer.
    levels: Vec<u8>,
    /// Layer 0: `len · (1 + 2M)` words, per node the count then the ids.
    layer0: Vec<AtomicU32>,
    /// Layers `1..=level` of each node, `level · (1 + M)` words (empty for level 0).
    upper: Vec<Box<[AtomicU32]>>,
    deleted: Vec<bool>,
    n_deleted: usize,
    entry: Entry,
    /// `SplitMix64` state for levels.
    rng: u64,
    /// The inner-product kernel for this CPU, detected once.
    isa: Isa,
}

/// The entry point: a node on the top layer.
#[derive(Clone, Copy, Debug)]
struct Entry {
    node: Option<u32>,
    level: usize,
}

impl fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hnsw")
            .field("dim", &self.dim)
            .field("params", &self.params)
            .field("len", &self.len())
            .field("live", &self.live())
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// A node with its similarity to some query; "greater" means "better"
/// (higher similarity, then lower id).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Near {
    sim: f32,
    id: u32,
}

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim
            .total_cmp(&other.sim)
            .then_with(|| other.id.cmp(&self.id))
    }
}

/// Per-node locks of a parallel build (`None` when one thread owns the graph).
type Locks<'a> = Option<&'a [Mutex<()>]>;

impl Hnsw {
    /// An empty index. `params.m` is raised to at least 2 and
    /// `params.ef_construction` to at least 1.
    ///
    /// # Panics
    /// If `dim` is 0.
    #[must_use]
    pub fn new(dim: usize, params: Params) -> Hnsw {
        assert!(dim > 0, "an HNSW index needs a dimension of at least 1");
        let params = Params {
            m: params.m.clamp(2, MAX_M),
            ef_construction: params.ef_construction.max(1),
            seed: params.seed,
        };
        Hnsw {
            dim,
            params,
            vectors: Vec::new(),
            pad: 0,
            levels: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            deleted: Vec::new(),
            n_deleted: 0,
            entry: Entry {
                node: None,
                level: 0,
            },
            rng: params.seed,
            isa: isa(),
        }
    }

    /// The vectors' dimension.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The construction parameters (after clamping).
    #[must_use]
    pub fn params(&self) -> Params {
        self.params
    }

    /// Number of nodes, deleted ones included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the index has no node at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Number of nodes not deleted.
    #[must_use]
    pub fn live(&self) -> usize {
        self.len() - self.n_deleted
    }

    /// Approximate heap memory in bytes (vectors, graph, tombstones).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.vectors.len() * 4
            + self.levels.len()
            + self.layer0.len() * 4
            + self
                .upper
                .iter()
                .map(|u| u.len() * 4 + size_of::<Box<[AtomicU32]>>())
                .sum::<usize>()
            + self.deleted.len()
    }

    fn m0(&self) -> usize {
        2 * self.params.m
    }

    /// Inserts one vector and returns its node id.
    ///
    /// # Panics
    /// If `vector.len() != self.dim()`, or the index already holds `u32::MAX - 1` nodes.
    pub fn insert(&mut self, vector: &[f32]) -> u32 {
        assert_eq!(vector.len(), self.dim, "vector dimension");
        self.insert_many(vector, 1).start
    }

    /// Inserts `vectors.len() / dim` vectors (row-major) and returns their ids.
    ///
    /// With `threads > 1` (0 means all available cores) the nodes are linked in
    /// parallel, hnswlib-style: each neighbour list has its own lock, taken to read
    /// or rewrite it, and a node that raises the top level holds the entry-point
    /// lock for its whole insertion. Levels are still drawn in id order from the
    /// seed, but the graph depends on thread scheduling, so only `threads == 1`
    /// (or a batch of fewer than 64 vectors) is deterministic.
    ///
    /// # Panics
    /// If `vectors.len()` is not a multiple of `dim`, or the index would exceed
    /// `u32::MAX - 1` nodes.
    pub fn insert_many(&mut self, vectors: &[f32], threads: usize) -> Range<u32> {
        assert!(
            vectors.len().is_multiple_of(self.dim),
            "insert_many: length is not a multiple of dim"
        );
        let count = vectors.len() / self.dim;
        let start = self.len();
        let end = start + count;
        assert!(
            end < NONE as usize,
            "an HNSW index holds at most u32::MAX - 1 nodes"
        );
        let (stride0, stride_up) = (1 + self.m0(), 1 + self.params.m);
        self.extend_vectors(vectors);
        self.levels.reserve(count);
        self.upper.reserve(count);
        self.layer0.reserve(count * stride0);
        advise_huge_pages(&self.layer0);
        for _ in 0..count {
            let level = self.draw_level();
            // `level <= MAX_LEVEL < 256`.
            self.levels.push(u8::try_from(level).unwrap_or(u8::MAX));
            self.layer0.extend((0..stride0).map(|_| AtomicU32::new(0)));
            self.upper
                .push((0..level * stride_up).map(|_| AtomicU32::new(0)).collect());
        }
        self.deleted.resize(end, false);

        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            t => t,
        };
        let entry = Mutex::new(self.entry);
        // Ids fit in u32: checked above.
        let ids = u32::try_from(start).unwrap_or(NONE)..u32::try_from(end).unwrap_or(NONE);
        if threads <= 1 || count < 64 {
            for id in ids.clone() {
                self.link(id, &entry, None);
            }
        } else {
            let mut first = start;
            if self.entry.node.is_none() {
                // The first node becomes the entry point; link it before the threads start.
                self.link(ids.start, &entry, None);
                first += 1;
            }
            let locks: Vec<Mutex<()>> = (0..end).map(|_| Mutex::new(())).collect();
            let next = AtomicUsize::new(first);
            let this = &*self;
            std::thread::scope(|scope| {
                for _ in 0..threads.min(count) {
                    scope.spawn(|| {
                        loop {
                            let id = next.fetch_add(1, Relaxed);
                            if id >= end {
                                break;
                            }
                            // id < end <= u32::MAX - 1.
                            this.link(u32::try_from(id).unwrap_or(NONE), &entry, Some(&locks));
                        }
                    });
                }
            });
        }
        self.entry = entry.into_inner().unwrap_or_else(PoisonError::into_inner);
        ids
    }

    /// Marks a node deleted: it is never returned again but still routes
    /// searches. Ids `>= len()` and already deleted ids are ignored.
    pub fn delete(&mut self, id: u32) {
        if let Some(d) = self.deleted.get_mut(id as usize)
            && !*d
        {
            *d = true;
            self.n_deleted += 1;
        }
    }

    /// Whether the node is deleted (`false` for ids `>= len()`).
    #[must_use]
    pub fn is_deleted(&self, id: u32) -> bool {
        self.deleted.get(id as usize).copied().unwrap_or(false)
    }

    /// The stored vector of a node.
    ///
    /// # Panics
    /// If `id >= len()`.
    #[must_use]
    pub fn vector(&self, id: u32) -> &[f32] {
        let i = id as usize * self.dim;
        &self.vectors[self.pad + i..self.pad + i + self.dim]
    }

    /// All rows, row-major.
    fn rows(&self) -> &[f32] {
        &self.vectors[self.pad..]
    }

    /// Appends rows, keeping the first on a 64-byte boundary (the rows move when
    /// a reallocation changed their alignment).
    fn extend_vectors(&mut self, more: &[f32]) {
        let len = self.vectors.len() - self.pad;
        self.vectors.reserve(more.len() + 16);
        advise_huge_pages(&self.vectors);
        // 0..16 for an f32 pointer (`usize::MAX` cannot happen; then no padding).
        let want = self.vectors.as_ptr().align_offset(64).min(15);
        if want != self.pad {
            // Within the capacity just reserved: no reallocation.
            self.vectors.resize(self.vectors.len().max(want + len), 0.0);
            self.vectors.copy_within(self.pad..self.pad + len, want);
            self.vectors.truncate(want + len);
            self.pad = want;
        }
        self.vectors.extend_from_slice(more);
    }

    /// The k nearest live nodes to `query` by inner product, best first, as
    /// `(id, similarity)`. `ef` is the beam width (raised to `k`); larger is
    /// slower and more exact.
    ///
    /// `allow`, when given, restricts results to the ids it accepts (a metadata
    /// filter); the graph is still traversed through rejected nodes. The rule for
    /// selective filters (and many deletions) is in the [module docs](self): past
    /// `max(len / 10, 16 · ef)` rejected nodes, or with fewer than `k` results,
    /// the search becomes an exact scan of the accepted ids, so it returns `k`
    /// results whenever `k` accepted live nodes exist.
    ///
    /// # Panics
    /// If `query.len() != self.dim()`.
    #[must_use]
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        assert_eq!(query.len(), self.dim, "query dimension");
        match self.isa {
            Isa::Portable => self.search_with(Portable, query, k, ef, allow),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(kern) => x86::search(self, kern, query, k, ef, allow),
        }
    }

    /// [`Hnsw::search`] with the kernel `kern`, inlined into each kernel's
    /// entry point so that the hot loop calls no function through a pointer.
    #[inline(always)]
    fn search_with<K: Kernel>(
        &self,
        kern: K,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        let Some(ep) = self.entry.node else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let filtered = allow.is_some() || self.n_deleted > 0;
        let accept_fn = |id: u32| !self.deleted[id as usize] && allow.is_none_or(|f| f(id));
        let accept: Option<&dyn Fn(u32) -> bool> = if filtered { Some(&accept_fn) } else { None };
        let budget = if filtered {
            (self.len() / 10).max(16 * ef)
        } else {
            usize::MAX
        };

        let mut cur = Near {
            sim: self.sim(kern, query, ep),
            id: ep,
        };
        for layer in (1..=self.entry.level).rev() {
            cur = self.greedy(kern, query, cur, layer, None);
        }
        let mut visited = VISITED.take();
        let found = self.search_layer(kern, query, cur, ef, 0, accept, budget, None, &mut visited);
        VISITED.set(visited);
        match found {
            Some(mut found) if found.len() >= k || found.len() >= self.live() => {
                found.truncate(k);
                found.into_iter().map(|n| (n.id, n.sim)).collect()
            }
            _ => self.exact_with(kern, query, k, allow),
        }
    }

    /// The exact k nearest live nodes (a scan of every vector), with the same
    /// contract as [`Hnsw::search`].
    ///
    /// # Panics
    /// If `query.len() != self.dim()`.
    #[must_use]
    pub fn exact(
        &self,
        query: &[f32],
        k: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        assert_eq!(query.len(), self.dim, "query dimension");
        match self.isa {
            Isa::Portable => self.exact_with(Portable, query, k, allow),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(kern) => x86::exact(self, kern, query, k, allow),
        }
    }

    /// [`Hnsw::exact`] with the kernel `kern`.
    #[inline(always)]
    fn exact_with<K: Kernel>(
        &self,
        kern: K,
        query: &[f32],
        k: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        if k == 0 {
            return Vec::new();
        }
        let mut best: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(k + 1);
        for (i, v) in self.rows().chunks_exact(self.dim).enumerate() {
            if self.deleted[i] {
                continue;
            }
            // i < len() <= u32::MAX - 1.
            let id = u32::try_from(i).unwrap_or(NONE);
            if allow.is_some_and(|f| !f(id)) {
                continue;
            }
            let near = Near {
                sim: kern.dot(query, v),
                id,
            };
            if best.len() < k {
                best.push(Reverse(near));
            } else if best.peek().is_some_and(|w| near > w.0) {
                best.pop();
                best.push(Reverse(near));
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|Reverse(n)| (n.id, n.sim))
            .collect()
    }

    // ---- graph internals ----------------------------------------------------

    fn draw_level(&mut self) -> usize {
        let bits = splitmix64(&mut self.rng) >> 11;
        // u in (0, 1]; -ln(u) is exponential with mean 1.
        #[allow(clippy::cast_precision_loss)] // 53-bit integer: exact in f64.
        let u = (bits + 1) as f64 / (1u64 << 53) as f64;
        #[allow(clippy::cast_precision_loss)] // m <= 4096: exact.
        let ml = 1.0 / (self.params.m as f64).ln();
        let level = (-u.ln() * ml).floor();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 <= level, capped.
        let level = level.min(24.0) as usize; // MAX_LEVEL
        level
    }

    #[inline(always)]
    fn sim<K: Kernel>(&self, kern: K, q: &[f32], id: u32) -> f32 {
        kern.dot(q, self.vector(id))
    }

    /// A node's neighbour list on one layer: the count, then the slots.
    fn slot(&self, id: u32, layer: usize) -> &[AtomicU32] {
        let id = id as usize;
        if layer == 0 {
            let s = 1 + self.m0();
            &self.layer0[id * s..(id + 1) * s]
        } else {
            let s = 1 + self.params.m;
            &self.upper[id][(layer - 1) * s..layer * s]
        }
    }

    fn read_links(&self, id: u32, layer: usize, locks: Locks<'_>, buf: &mut Vec<u32>) {
        buf.clear();
        let slot = self.slot(id, layer);
        let _guard = locks.map(|l| {
            l[id as usize]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
        let count = (slot[0].load(Relaxed) as usize).min(slot.len() - 1);
        buf.extend(slot[1..=count].iter().map(|a| a.load(Relaxed)));
    }

    /// Overwrites a list; the caller holds the node's lock, if any.
    fn write_links(&self, id: u32, layer: usize, ids: &[u32]) {
        let slot = self.slot(id, layer);
        let count = ids.len().min(slot.len() - 1);
        for (s, &n) in slot[1..=count].iter().zip(ids) {
            s.store(n, Relaxed);
        }
        // count <= 2·MAX_M.
        slot[0].store(u32::try_from(count).unwrap_or(0), Relaxed);
    }

    /// Greedy descent on one layer: move to the best neighbour until none is better.
    #[inline(always)]
    fn greedy<K: Kernel>(
        &self,
        kern: K,
        q: &[f32],
        mut cur: Near,
        layer: usize,
        locks: Locks<'_>,
    ) -> Near {
        let mut buf = Vec::with_capacity(self.params.m);
        loop {
            let mut changed = false;
            self.read_links(cur.id, layer, locks, &mut buf);
            for &n in &buf {
                prefetch(self.vector(n), PREFETCH_LINES);
            }
            for &n in &buf {
                let s = self.sim(kern, q, n);
                if s > cur.sim {
                    cur = Near { sim: s, id: n };
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Beam search on one layer from `entry`: up to `ef` accepted nodes, best
    /// first. Every node is traversed; only those `accept` takes (all, when
    /// `None`) become results. `None` when more than `budget` rejected nodes
    /// were evaluated.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn search_layer<K: Kernel>(
        &self,
        kern: K,
        q: &[f32],
        entry: Near,
        ef: usize,
        layer: usize,
        accept: Option<&dyn Fn(u32) -> bool>,
        budget: usize,
        locks: Locks<'_>,
        visited: &mut Visited,
    ) -> Option<Vec<Near>> {
        visited.reset(self.len());
        visited.insert(entry.id);
        let mut candidates = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(ef + 1);
        let accepts = |id: u32| accept.is_none_or(|f| f(id));
        let mut rejected = 0usize;
        candidates.push(entry);
        if accepts(entry.id) {
            results.push(Reverse(entry));
        }
        let mut worst = results.peek().map_or(f32::NEG_INFINITY, |w| w.0.sim);
        let mut buf = Vec::with_capacity(self.m0());
        while let Some(c) = candidates.pop() {
            if c.sim < worst && results.len() >= ef {
                break;
            }
            // The next candidate's list is read after this one's neighbours are
            // scored: start loading it (132 bytes on layer 0 at M = 16).
            if let Some(next) = candidates.peek() {
                prefetch(self.slot(next.id, layer), 3);
            }
            self.read_links(c.id, layer, locks, &mut buf);
            // Keep the unvisited neighbours and start loading their vectors
            // before computing any similarity (they are rarely in cache): the
            // first lines of all of them now, and each whole vector
            // `PREFETCH_AHEAD` neighbours before it is scored. Prefetching every
            // whole vector at once stalls on the CPU's miss buffers instead.
            buf.retain(|&n| visited.insert(n));
            for &n in &buf {
                prefetch(self.vector(n), PREFETCH_LINES);
            }
            for &n in buf.iter().take(PREFETCH_AHEAD).skip(1) {
                prefetch(self.vector(n), PREFETCH_WHOLE);
            }
            for (i, &n) in buf.iter().enumerate() {
                if let Some(&ahead) = buf.get(i + PREFETCH_AHEAD) {
                    prefetch(self.vector(ahead), PREFETCH_WHOLE);
                }
                let s = self.sim(kern, q, n);
                let ok = accepts(n);
                if !ok {
                    rejected += 1;
                    if rejected > budget {
                        return None;
                    }
                }
                if results.len() < ef || s > worst {
                    let near = Near { sim: s, id: n };
                    candidates.push(near);
                    if ok {
                        results.push(Reverse(near));
                        if results.len() > ef {
                            results.pop();
                        }
                        worst = results.peek().map_or(f32::NEG_INFINITY, |w| w.0.sim);
                    }
                }
            }
        }
        Some(
            results
                .into_sorted_vec()
                .into_iter()
                .map(|Reverse(n)| n)
                .collect(),
        )
    }

    /// The neighbour-selection heuristic (algorithm 4): walk the candidates best
    /// first and keep one only if it is closer to the base than to every kept one.
    /// `candidates` are sorted best first by similarity to the base.
    #[inline(always)]
    fn select<K: Kernel>(&self, kern: K, candidates: &[Near], m: usize) -> Vec<u32> {
        if candidates.len() <= m {
            return candidates.iter().map(|c| c.id).collect();
        }
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            let v = self.vector(c.id);
            let mut keep = true;
            for &r in &kept {
                if self.sim(kern, v, r) > c.sim {
                    keep = false;
                    break;
                }
            }
            if keep {
                kept.push(c.id);
            }
        }
        kept
    }

    /// Links node `id` into the graph (algorithm 1). Its vector, level and empty
    /// lists are already allocated.
    fn link(&self, id: u32, entry: &Mutex<Entry>, locks: Locks<'_>) {
        match self.isa {
            Isa::Portable => self.link_with(Portable, id, entry, locks),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(kern) => x86::link(self, kern, id, entry, locks),
        }
    }

    /// [`Hnsw::link`] with the kernel `kern`.
    #[inline(always)]
    fn link_with<K: Kernel>(&self, kern: K, id: u32, entry: &Mutex<Entry>, locks: Locks<'_>) {
        let level = usize::from(self.levels[id as usize]);
        let q = self.vector(id);
        let mut guard = entry.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(ep) = guard.node else {
            *guard = Entry {
                node: Some(id),
                level,
            };
            return;
        };
        let top = guard.level;
        // A node that raises the top level keeps the entry point locked until it
        // is linked (as hnswlib does); the others release it at once.
        let mut held = if level > top {
            Some(guard)
        } else {
            drop(guard);
            None
        };

        let mut cur = Near {
            sim: self.sim(kern, q, ep),
            id: ep,
        };
        for layer in (level + 1..=top).rev() {
            cur = self.greedy(kern, q, cur, layer, locks);
        }
        let ef = self.params.ef_construction;
        let mut visited = VISITED.take();
        for layer in (0..=level.min(top)).rev() {
            let Some(mut found) = self.search_layer(
                kern,
                q,
                cur,
                ef,
                layer,
                None,
                usize::MAX,
                locks,
                &mut visited,
            ) else {
                continue; // Unreachable: the budget is unlimited.
            };
            // In a parallel build another thread may already have linked to `id`.
            found.retain(|n| n.id != id);
            let chosen = self.select(kern, &found, self.params.m);
            {
                let _guard = locks.map(|l| {
                    l[id as usize]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                });
                self.write_links(id, layer, &chosen);
            }
            for &n in &chosen {
                self.add_link(kern, n, id, layer, locks);
            }
            if let Some(best) = found.first() {
                cur = *best;
            }
        }
        VISITED.set(visited);
        if let Some(g) = held.as_mut() {
            **g = Entry {
                node: Some(id),
                level,
            };
        }
    }

    /// Adds `new` to `node`'s list on `layer`, re-selecting with the heuristic
    /// when the list is full.
    #[inline(always)]
    fn add_link<K: Kernel>(&self, kern: K, node: u32, new: u32, layer: usize, locks: Locks<'_>) {
        if node == new {
            return;
        }
        let _guard = locks.map(|l| {
            l[node as usize]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
        let slot = self.slot(node, layer);
        let cap = slot.len() - 1;
        let count = (slot[0].load(Relaxed) as usize).min(cap);
        if slot[1..=count].iter().any(|a| a.load(Relaxed) == new) {
            return;
        }
        if count < cap {
            slot[1 + count].store(new, Relaxed);
            // count + 1 <= 2·MAX_M.
            slot[0].store(u32::try_from(count + 1).unwrap_or(0), Relaxed);
            return;
        }
        let base = self.vector(node);
        let mut cands: Vec<Near> = slot[1..=count]
            .iter()
            .map(|a| a.load(Relaxed))
            .chain(std::iter::once(new))
            .map(|id| Near {
                sim: self.sim(kern, base, id),
                id,
            })
            .collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        let chosen = self.select(kern, &cands, cap);
        self.write_links(node, layer, &chosen);
    }

    // ---- persistence --------------------------------------------------------

    /// Writes the index in the format of the [module docs](self).
    ///
    /// # Errors
    /// Those of `out`, and `InvalidData` if a count does not fit the format.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let too_big = |_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "index too large for the file format",
            )
        };
        let n = self.len();
        let mut links_words = 0usize;
        for id in 0..n {
            for layer in 0..=usize::from(self.levels[id]) {
                // id < len() <= u32::MAX - 1.
                let slot = self.slot(u32::try_from(id).map_err(too_big)?, layer);
                links_words += 1 + (slot[0].load(Relaxed) as usize).min(slot.len() - 1);
            }
        }
        let body = (n * self.dim + links_words + self.n_deleted) * 4 + n;
        let file_len = HEADER_LEN + u64::try_from(body).map_err(too_big)? + 8;

        let mut w = HashWriter::new(out);
        w.put(MAGIC)?;
        w.u32(VERSION)?;
        w.u32(u32::try_from(self.dim).map_err(too_big)?)?;
        w.u32(u32::try_from(self.params.m).map_err(too_big)?)?;
        w.u32(u32::try_from(self.params.ef_construction).unwrap_or(u32::MAX))?;
        w.u64(self.params.seed)?;
        w.u64(self.rng)?;
        w.u64(n as u64)?;
        w.u64(self.n_deleted as u64)?;
        w.u32(self.entry.node.unwrap_or(NONE))?;
        w.u32(u32::try_from(self.entry.level).map_err(too_big)?)?;
        w.u64(file_len)?;
        for &x in self.rows() {
            w.put(&x.to_le_bytes())?;
        }
        w.put(&self.levels)?;
        let mut buf = Vec::new();
        for id in 0..n {
            let id32 = u32::try_from(id).map_err(too_big)?;
            for layer in 0..=usize::from(self.levels[id]) {
                self.read_links(id32, layer, None, &mut buf);
                w.u32(u32::try_from(buf.len()).map_err(too_big)?)?;
                for &x in &buf {
                    w.u32(x)?;
                }
            }
        }
        for (id, _) in self.deleted.iter().enumerate().filter(|(_, d)| **d) {
            w.u32(u32::try_from(id).map_err(too_big)?)?;
        }
        w.finish()
    }

    /// Reads an index written by [`Hnsw::write`]. Never panics on bad input.
    ///
    /// # Errors
    /// [`ReadError`] saying what is wrong: an I/O error, a bad magic, an
    /// unsupported version, a truncated file, a checksum mismatch, or a graph
    /// that is not consistent.
    pub fn read(input: &mut impl Read) -> Result<Hnsw, ReadError> {
        let mut data = Vec::new();
        input.read_to_end(&mut data)?;
        let found = data.len() as u64;
        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(&data) {
                ReadError::Truncated {
                    expected: HEADER_LEN + 8,
                    found,
                }
            } else {
                ReadError::BadMagic
            });
        }
        let mut r = Reader {
            data: &data,
            pos: MAGIC.len(),
        };
        let header_short = || ReadError::Truncated {
            expected: HEADER_LEN + 8,
            found,
        };
        let version = r.u32().ok_or_else(header_short)?;
        if version != VERSION {
            return Err(ReadError::UnsupportedVersion(version));
        }
        let header = (|| {
            Some((
                r.u32()?,
                r.u32()?,
                r.u32()?,
                r.u64()?,
                r.u64()?,
                r.u64()?,
                r.u64()?,
                r.u32()?,
                r.u32()?,
                r.u64()?,
            ))
        })();
        let Some((dim, m, efc, seed, rng, n, n_deleted, entry, top, file_len)) = header else {
            return Err(header_short());
        };
        if found < file_len {
            return Err(ReadError::Truncated {
                expected: file_len,
                found,
            });
        }
        if found > file_len {
            return Err(ReadError::Inconsistent(format!(
                "{} bytes after the end the header declares ({file_len} bytes)",
                found - file_len
            )));
        }
        let (content, tail) = data.split_at(data.len() - 8);
        let mut stored = [0u8; 8];
        stored.copy_from_slice(tail);
        let stored = u64::from_le_bytes(stored);
        let computed = checksum(content);
        if stored != computed {
            return Err(ReadError::ChecksumMismatch { stored, computed });
        }
        parse_body(
            content,
            r.pos,
            [dim, m, efc],
            seed,
            rng,
            [n, n_deleted],
            entry,
            top,
        )
        .map_err(ReadError::Inconsistent)
    }
}

/// Parses and validates everything after the header (the checksum is already verified).
#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn parse_body(
    content: &[u8],
    pos: usize,
    [dim, m, efc]: [u32; 3],
    seed: u64,
    rng: u64,
    [n, n_deleted]: [u64; 2],
    entry: u32,
    top: u32,
) -> Result<Hnsw, String> {
    let (dim, m, efc) = (dim as usize, m as usize, efc as usize);
    if dim == 0 || dim > MAX_DIM {
        return Err(format!("dimension {dim} out of range"));
    }
    if !(2..=MAX_M).contains(&m) || efc == 0 {
        return Err(format!(
            "parameters out of range (M = {m}, ef_construction = {efc})"
        ));
    }
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n < NONE as usize)
        .ok_or("too many nodes")?;
    let n_deleted = usize::try_from(n_deleted)
        .ok()
        .filter(|&d| d <= n)
        .ok_or("more deleted nodes than nodes")?;
    let mut r = Reader { data: content, pos };
    let early = || "data ends before the declared contents".to_string();

    let floats = n.checked_mul(dim).ok_or("vector count overflows")?;
    let bytes = r
        .take(floats.checked_mul(4).ok_or("vector size overflows")?)
        .ok_or_else(early)?;
    // The first row on a 64-byte boundary, as `Hnsw::extend_vectors` keeps it.
    let mut vectors: Vec<f32> = Vec::with_capacity(floats + 16);
    advise_huge_pages(&vectors);
    let pad = vectors.as_ptr().align_offset(64).min(15);
    vectors.resize(pad, 0.0);
    vectors.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    let levels = r.take(n).ok_or_else(early)?.to_vec();
    if let Some(l) = levels.iter().find(|&&l| usize::from(l) > MAX_LEVEL) {
        return Err(format!("node level {l} above the maximum {MAX_LEVEL}"));
    }

    let mut index = Hnsw::new(
        dim,
        Params {
            m,
            ef_construction: efc,
            seed,
        },
    );
    index.rng = rng;
    let (stride0, stride_up) = (1 + 2 * m, 1 + m);
    let mut layer0 = Vec::with_capacity(n * stride0);
    advise_huge_pages(&layer0);
    let mut upper = Vec::with_capacity(n);
    for (id, &level) in levels.iter().enumerate() {
        let level = usize::from(level);
        let mut up: Box<[AtomicU32]> = (0..level * stride_up).map(|_| AtomicU32::new(0)).collect();
        for layer in 0..=level {
            let count = r.u32().ok_or_else(early)? as usize;
            let cap = if layer == 0 { 2 * m } else { m };
            if count > cap {
                return Err(format!(
                    "node {id} has {count} neighbours on layer {layer} (at most {cap})"
                ));
            }
            let mut slot: Vec<u32> = vec![0; cap + 1];
            slot[0] = u32::try_from(count).map_err(|_| early())?;
            for s in &mut slot[1..=count] {
                let nb = r.u32().ok_or_else(early)?;
                let ok = (nb as usize) < n && usize::from(levels[nb as usize]) >= layer;
                if !ok {
                    return Err(format!(
                        "node {id} links to {nb}, not a node of layer {layer}"
                    ));
                }
                *s = nb;
            }
            if layer == 0 {
                layer0.extend(slot.into_iter().map(AtomicU32::new));
            } else {
                for (a, v) in up[(layer - 1) * stride_up..layer * stride_up]
                    .iter_mut()
                    .zip(slot)
                {
                    *a.get_mut() = v;
                }
            }
        }
        upper.push(up);
    }
    let mut deleted = vec![false; n];
    let mut prev: Option<u32> = None;
    for _ in 0..n_deleted {
        let id = r.u32().ok_or_else(early)?;
        if (id as usize) >= n || prev.is_some_and(|p| p >= id) {
            return Err(format!("deleted id {id} out of range or out of order"));
        }
        deleted[id as usize] = true;
        prev = Some(id);
    }
    if r.pos != content.len() {
        return Err(format!(
            "{} unexplained bytes before the checksum",
            content.len() - r.pos
        ));
    }
    let top = top as usize;
    let max_level = levels.iter().copied().max().map_or(0, usize::from);
    let entry = if n == 0 {
        if entry != NONE {
            return Err("an empty index with an entry point".into());
        }
        Entry {
            node: None,
            level: 0,
        }
    } else {
        if (entry as usize) >= n || usize::from(levels[entry as usize]) != top || top != max_level {
            return Err(format!(
                "entry point {entry} (level {top}) is not a node of the top level"
            ));
        }
        Entry {
            node: Some(entry),
            level: top,
        }
    };
    index.vectors = vectors;
    index.pad = pad;
    index.levels = levels;
    index.layer0 = layer0;
    index.upper = upper;
    index.deleted = deleted;
    index.n_deleted = n_deleted;
    index.entry = entry;
    Ok(index)
}

/// What is wrong with an index file.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading failed.
    Io(io::Error),
    /// The file does not start with `SLHNSW01`.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u32),
    /// The file is shorter than its header says (a torn write).
    Truncated {
        /// Bytes the file should have (at least).
        expected: u64,
        /// Bytes it has.
        found: u64,
    },
    /// The checksum does not match the contents (corruption).
    ChecksumMismatch {
        /// The checksum in the file.
        stored: u64,
        /// The checksum of the contents.
        computed: u64,
    },
    /// The contents pass the checksum but do not describe a valid graph.
    Inconsistent(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read the HNSW index: {e}"),
            ReadError::BadMagic => f.write_str("not an HNSW index file (bad magic)"),
            ReadError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "HNSW index format version {v} is not supported (this build reads {VERSION})"
                )
            }
            ReadError::Truncated { expected, found } => {
                write!(
                    f,
                    "HNSW index file is truncated: {found} bytes, expected {expected}"
                )
            }
            ReadError::ChecksumMismatch { stored, computed } => write!(
                f,
                "HNSW index file is corrupted: checksum {computed:016x}, file says {stored:016x}"
            ),
            ReadError::Inconsistent(what) => write!(f, "HNSW index file is inconsistent: {what}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let bytes = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(a))
    }
}

// ---- checksum -----------------------------------------------------------------

/// The file checksum: each 8-byte little-endian word `w` (the last one
/// zero-padded) updates `h = rotl((h ^ w) · K, 29)` from `h = 0xcbf2_9ce4_8422_2325`,
/// then the byte length is mixed in and `SplitMix64`'s finalizer applied. Each step
/// is a bijection of `h`, so any change confined to one word is always detected.
#[must_use]
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Hasher::new();
    h.update(bytes);
    h.finish()
}

const HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

struct Hasher {
    h: u64,
    pending: [u8; 8],
    n_pending: usize,
    len: u64,
}

impl Hasher {
    fn new() -> Self {
        Hasher {
            h: 0xcbf2_9ce4_8422_2325,
            pending: [0; 8],
            n_pending: 0,
            len: 0,
        }
    }

    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(HASH_K).rotate_left(29);
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.n_pending > 0 {
            let take = (8 - self.n_pending).min(bytes.len());
            self.pending[self.n_pending..self.n_pending + take].copy_from_slice(&bytes[..take]);
            self.n_pending += take;
            bytes = &bytes[take..];
            if self.n_pending < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.n_pending = 0;
        }
        let words = bytes.chunks_exact(8);
        let rest = words.remainder();
        for c in words {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        self.pending[..rest.len()].copy_from_slice(rest);
        self.n_pending = rest.len();
    }

    fn finish(mut self) -> u64 {
        if self.n_pending > 0 {
            self.pending[self.n_pending..].fill(0);
            self.word(u64::from_le_bytes(self.pending));
        }
        let mut z = self.h ^ self.len;
        splitmix64(&mut z)
    }
}

/// Buffers writes and hashes everything written; `finish` appends the checksum.
struct HashWriter<'a, W: Write> {
    out: &'a mut W,
    buf: Vec<u8>,
    hasher: Hasher,
}

impl<'a, W: Write> HashWriter<'a, W> {
    fn new(out: &'a mut W) -> Self {
        HashWriter {
            out,
            buf: Vec::with_capacity(1 << 16),
            hasher: Hasher::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 1 << 16 {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn u32(&mut self, x: u32) -> io::Result<()> {
        self.put(&x.to_le_bytes())
    }

    fn u64(&mut self, x: u64) -> io::Result<()> {
        self.put(&x.to_le_bytes())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.hasher.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.flush_buf()?;
        let sum = self.hasher.finish();
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.flush()
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---- visited set ----------------------------------------------------------------

/// A tag-stamped visited set, one per thread (as hnswlib's, with u8 tags: a
/// million nodes take 1 MB, which stays in cache better): resetting it is O(1)
/// except every 255th time, when the marks are cleared.
#[derive(Default)]
struct Visited {
    marks: Vec<u8>,
    tag: u8,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.tag = self.tag.wrapping_add(1);
        if self.tag == 0 {
            self.marks.fill(0);
            self.tag = 1;
        }
    }

    /// Marks `id`; `false` if it was already marked since the last reset.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(m) if *m != self.tag => {
                *m = self.tag;
                true
            }
            _ => false,
        }
    }
}

thread_local! {
    /// Taken for one search or one insertion and put back (a nested search, from
    /// a filter callback, gets a fresh set).
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), tag: 0 }) };
}

// ---- huge pages -------------------------------------------------------------------

/// Asks the kernel to back a large array (its whole capacity) with transparent
/// huge pages (`madvise(MADV_HUGEPAGE)`, honoured when THP is `madvise` or
/// `always`). A search reads vectors and lists scattered over hundreds of MB; with
/// 4 KiB pages nearly every vector is a TLB miss as well as a cache miss. Only the
/// 2 MiB-aligned part of the allocation is advised; arrays under 4 MiB are left
/// alone. A hint: failures are ignored, and other systems do nothing.
fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        thp::advise(v.as_ptr().cast(), v.capacity() * size_of::<T>());
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    let _ = v;
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[allow(unsafe_code)]
mod thp {
    use std::ffi::{c_int, c_void};

    unsafe extern "C" {
        /// glibc's / musl's `madvise(2)` (std links the C library on Linux).
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }

    /// `MADV_HUGEPAGE` on x86-64 and aarch64 Linux.
    const MADV_HUGEPAGE: c_int = 14;
    const HUGE: usize = 2 << 20;

    /// Advises the 2 MiB-aligned part of `[ptr, ptr + bytes)`.
    pub(super) fn advise(ptr: *const u8, bytes: usize) {
        if bytes < 2 * HUGE {
            return;
        }
        let start = ptr.addr().next_multiple_of(HUGE);
        let end = (ptr.addr() + bytes) & !(HUGE - 1);
        if end <= start {
            return;
        }
        // SAFETY: `[start, end)` lies inside one live allocation of the caller
        // (`ptr` and `bytes` are a Vec's pointer and capacity in bytes), page
        // aligned. `MADV_HUGEPAGE` only changes how the kernel backs those pages,
        // never their contents or mappings, so no Rust value is affected; the
        // result is ignored because the advice is only a hint.
        unsafe {
            madvise(
                ptr.with_addr(start).cast_mut().cast(),
                end - start,
                MADV_HUGEPAGE,
            );
        }
    }
}

// ---- inner-product kernels ------------------------------------------------------------

type DotFn = fn(&[f32], &[f32]) -> f32;

/// An inner-product kernel. The graph code is generic over it and inlined into
/// one entry point per kernel (compiled with that kernel's CPU features), so the
/// kernel is inlined into the hot loops instead of called through a pointer.
trait Kernel: Copy {
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
}

/// The portable kernel, for any CPU.
#[derive(Clone, Copy, Debug)]
struct Portable;

impl Kernel for Portable {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        dot_portable(a, b)
    }
}

/// The kernels this build can use; the fastest the CPU supports is detected once.
#[derive(Clone, Copy, Debug)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::Avx2),
}

fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("SLUICE_HNSW_PORTABLE").is_none()
                && let Some(kern) = x86::Avx2::detect()
            {
                return Isa::Avx2(kern);
            }
        }
        Isa::Portable
    })
}

/// Asks the CPU to start loading the first `lines` cache lines of a slice.
#[inline(always)]
fn prefetch<T>(s: &[T], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(s, lines);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, lines);
}

/// Cache lines of each neighbour's vector prefetched before any is scored.
const PREFETCH_LINES: usize = 2;
/// A neighbour's whole vector is prefetched this many neighbours ahead of scoring it.
const PREFETCH_AHEAD: usize = 2;
/// "Whole" vector, in cache lines: 384 floats are 24 lines; longer vectors are
/// left to the hardware prefetcher past this.
const PREFETCH_WHOLE: usize = 32;

/// The inner product of two slices (over the shorter length), with the fastest
/// kernel this CPU has (AVX2 + FMA when detected at run time, else portable).
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_kernel()(a, b)
}

/// The kernel chosen for this CPU, as a function.
fn dot_kernel() -> DotFn {
    match isa() {
        Isa::Portable => dot_portable,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(_) => x86::dot_avx2,
    }
}

/// Portable inner product: 16 independent accumulators, which the compiler
/// turns into SIMD lanes (SSE2 on any x86-64, NEON on aarch64).
#[inline]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::{
        __m256, _MM_HINT_T0, _mm_prefetch, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };
    use std::sync::Mutex;

    use super::{Entry, Hnsw, Kernel, Locks};

    /// Proof that the CPU has AVX2 and FMA: only [`Avx2::detect`] makes one.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Avx2 {
        _detected: (),
    }

    impl Avx2 {
        pub(super) fn detect() -> Option<Avx2> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                .then_some(Avx2 { _detected: () })
        }
    }

    impl Kernel for Avx2 {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            // SAFETY: an `Avx2` value exists only when `detect` found AVX2 and
            // FMA, so the CPU executes the instructions `dot_fma` is compiled with.
            unsafe { dot_fma(a, b) }
        }
    }

    // The graph code compiled with AVX2 + FMA, so `dot_fma` inlines into it.
    // Each wrapper takes an `Avx2`, which exists only after detection.

    pub(super) fn search(
        h: &Hnsw,
        kern: Avx2,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        // SAFETY: `kern` proves AVX2 and FMA were detected (see `Avx2::detect`).
        unsafe { search_avx2(h, kern, query, k, ef, allow) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn search_avx2(
        h: &Hnsw,
        kern: Avx2,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        h.search_with(kern, query, k, ef, allow)
    }

    pub(super) fn exact(
        h: &Hnsw,
        kern: Avx2,
        query: &[f32],
        k: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        // SAFETY: `kern` proves AVX2 and FMA were detected (see `Avx2::detect`).
        unsafe { exact_avx2(h, kern, query, k, allow) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn exact_avx2(
        h: &Hnsw,
        kern: Avx2,
        query: &[f32],
        k: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        h.exact_with(kern, query, k, allow)
    }

    pub(super) fn link(h: &Hnsw, kern: Avx2, id: u32, entry: &Mutex<Entry>, locks: Locks<'_>) {
        // SAFETY: `kern` proves AVX2 and FMA were detected (see `Avx2::detect`).
        unsafe { link_avx2(h, kern, id, entry, locks) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn link_avx2(h: &Hnsw, kern: Avx2, id: u32, entry: &Mutex<Entry>, locks: Locks<'_>) {
        h.link_with(kern, id, entry, locks);
    }

    /// Prefetches the first `lines` cache lines of `s` into L1.
    #[inline(always)]
    pub(super) fn prefetch<T>(s: &[T], lines: usize) {
        let p = s.as_ptr().cast::<i8>();
        let bytes = size_of_val(s);
        let mut off = 0;
        for _ in 0..lines {
            if off >= bytes {
                break;
            }
            // SAFETY: a prefetch is only a hint: it never faults and writes
            // nothing; the address is inside `s` (off < its byte length). SSE
            // is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
            off += 64;
        }
    }

    /// AVX2 + FMA inner product, as a function pointer for [`super::dot`]; only
    /// handed out by `dot_kernel` after the features were detected.
    pub(super) fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `dot_kernel` returns this function only for `Isa::Avx2`,
        // which holds an `Avx2` made by `Avx2::detect` after AVX2 and FMA were
        // both detected, so the CPU executes the instructions of `dot_fma`.
        unsafe { dot_fma(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::many_single_char_names)]
    fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc: [__m256; 4] = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8·j + 8 <= i + 32 <= n, so both 8-float loads read
                // inside `a` and `b` (unaligned loads need no alignment).
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    )
                };
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n: the loads read inside `a` and `b`.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds exactly 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        let mut total = lanes.iter().sum::<f32>();
        for k in i..n {
            total += a[k] * b[k];
        }
        total
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::many_single_char_names
)]
mod tests {
    use super::*;

    fn rng_normals(seed: u64, n: usize, dim: usize) -> Vec<f32> {
        let mut s = seed;
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let start = out.len();
            for _ in 0..dim {
                // Box–Muller.
                let u1 = ((splitmix64(&mut s) >> 11) + 1) as f64 / (1u64 << 53) as f64;
                let u2 = (splitmix64(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
                out.push(((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32);
            }
            let norm = out[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
            out[start..].iter_mut().for_each(|x| *x /= norm);
        }
        out
    }

    fn build(n: usize, dim: usize, threads: usize) -> (Hnsw, Vec<f32>) {
        let data = rng_normals(7, n, dim);
        let mut h = Hnsw::new(
            dim,
            Params {
                m: 16,
                ef_construction: 100,
                seed: 1,
            },
        );
        let ids = h.insert_many(&data, threads);
        assert_eq!(ids, 0..u32::try_from(n).unwrap());
        (h, data)
    }

    fn recall(h: &Hnsw, queries: &[f32], k: usize, ef: usize) -> f64 {
        let mut hit = 0usize;
        let mut total = 0usize;
        for q in queries.chunks_exact(h.dim()) {
            let truth: Vec<u32> = h.exact(q, k, None).into_iter().map(|r| r.0).collect();
            let got = h.search(q, k, ef, None);
            assert_eq!(got.len(), k.min(h.live()));
            hit += got.iter().filter(|r| truth.contains(&r.0)).count();
            total += truth.len();
        }
        hit as f64 / total as f64
    }

    /// Every list within bounds, ids valid and on their layer, no self loops.
    fn check_graph(h: &Hnsw) {
        let mut buf = Vec::new();
        for id in 0..h.len() as u32 {
            for layer in 0..=usize::from(h.levels[id as usize]) {
                h.read_links(id, layer, None, &mut buf);
                let cap = if layer == 0 { h.m0() } else { h.params.m };
                assert!(buf.len() <= cap);
                for &n in &buf {
                    assert!((n as usize) < h.len());
                    assert!(usize::from(h.levels[n as usize]) >= layer);
                    assert_ne!(n, id);
                }
            }
        }
    }

    #[test]
    fn kernels_agree() {
        for len in [0, 1, 7, 8, 31, 32, 33, 64, 384, 385] {
            let a = rng_normals(len as u64, 1, len.max(1));
            let b = rng_normals(len as u64 + 100, 1, len.max(1));
            let (a, b) = (&a[..len], &b[..len]);
            let naive: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!((dot_portable(a, b) - naive).abs() < 1e-5, "len {len}");
            assert!((dot(a, b) - naive).abs() < 1e-5, "len {len}");
        }
    }

    #[test]
    fn recall_at_10_sequential_and_parallel() {
        let (h, _) = build(5000, 64, 1);
        check_graph(&h);
        let queries = rng_normals(99, 100, 64);
        let r = recall(&h, &queries, 10, 128);
        assert!(r >= 0.95, "sequential recall@10 {r}");

        let (p, _) = build(5000, 64, 2);
        check_graph(&p);
        let r = recall(&p, &queries, 10, 128);
        assert!(r >= 0.95, "parallel recall@10 {r}");
    }

    #[test]
    fn sequential_build_is_deterministic() {
        let (a, _) = build(500, 16, 1);
        let (b, _) = build(500, 16, 1);
        let (mut wa, mut wb) = (Vec::new(), Vec::new());
        a.write(&mut wa).unwrap();
        b.write(&mut wb).unwrap();
        assert_eq!(wa, wb);
        // insert one by one == insert_many with one thread
        let data = rng_normals(7, 500, 16);
        let mut c = Hnsw::new(
            16,
            Params {
                m: 16,
                ef_construction: 100,
                seed: 1,
            },
        );
        for v in data.chunks_exact(16) {
            c.insert(v);
        }
        let mut wc = Vec::new();
        c.write(&mut wc).unwrap();
        assert_eq!(wa, wc);
    }

    #[test]
    fn deleted_nodes_are_never_returned() {
        let (mut h, data) = build(2000, 32, 1);
        for id in (0..2000).step_by(3) {
            h.delete(id);
        }
        h.delete(5000); // ignored
        assert_eq!(h.live(), 2000 - 667);
        assert!(h.is_deleted(0) && !h.is_deleted(1) && !h.is_deleted(5000));
        for q in data.chunks_exact(32).take(50) {
            let got = h.search(q, 10, 32, None);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|r| r.0 % 3 != 0));
            assert!(h.exact(q, 10, None).iter().all(|r| r.0 % 3 != 0));
        }
        // Delete the entry point and nearly everything: still correct.
        for id in 0..1995 {
            h.delete(id);
        }
        let got = h.search(&data[..32], 10, 16, None);
        let mut ids: Vec<u32> = got.iter().map(|r| r.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1996, 1997, 1999]);
    }

    #[test]
    fn filters_are_respected_and_fill_k() {
        let (h, data) = build(3000, 32, 1);
        let queries = rng_normals(5, 20, 32);
        for (modulus, k) in [(2u32, 10), (10, 10), (100, 10), (1000, 3), (3000, 5)] {
            let allow = move |id: u32| id.is_multiple_of(modulus);
            let allowed = (0..3000u32).filter(|&i| allow(i)).count();
            for q in queries.chunks_exact(32) {
                let got = h.search(q, k, 32, Some(&allow));
                assert_eq!(got.len(), k.min(allowed), "modulus {modulus}");
                assert!(got.iter().all(|r| allow(r.0)));
                assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
                // Selective filters end in the exact scan: identical to `exact`.
                if modulus >= 100 {
                    assert_eq!(got, h.exact(q, k, Some(&allow)));
                }
            }
        }
        // A filter that accepts nothing.
        assert!(h.search(&data[..32], 10, 32, Some(&|_| false)).is_empty());
    }

    #[test]
    fn filtered_recall_is_high() {
        let (h, _) = build(3000, 32, 1);
        let queries = rng_normals(11, 50, 32);
        let allow = |id: u32| !id.is_multiple_of(2);
        let (mut hit, mut total) = (0, 0);
        for q in queries.chunks_exact(32) {
            let truth: Vec<u32> = h
                .exact(q, 10, Some(&allow))
                .into_iter()
                .map(|r| r.0)
                .collect();
            let got = h.search(q, 10, 64, Some(&allow));
            hit += got.iter().filter(|r| truth.contains(&r.0)).count();
            total += truth.len();
        }
        assert!(
            hit as f64 / total as f64 >= 0.95,
            "filtered recall {hit}/{total}"
        );
    }

    #[test]
    fn round_trip_gives_identical_results_and_allows_inserts() {
        let (mut h, data) = build(1500, 24, 2);
        h.delete(3);
        h.delete(700);
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        let mut r = Hnsw::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(
            (r.len(), r.live(), r.dim(), r.params()),
            (h.len(), h.live(), h.dim(), h.params())
        );
        assert!(r.is_deleted(3) && r.is_deleted(700));
        let queries = rng_normals(3, 30, 24);
        for q in queries.chunks_exact(24) {
            assert_eq!(h.search(q, 10, 40, None), r.search(q, 10, 40, None));
        }
        let mut again = Vec::new();
        r.write(&mut again).unwrap();
        assert_eq!(bytes, again);

        // Incremental: inserting after a read behaves like inserting into the original.
        let extra = rng_normals(77, 200, 24);
        let ids = r.insert_many(&extra, 1);
        let ids_h = h.insert_many(&extra, 1);
        assert_eq!(ids, 1500..1700);
        assert_eq!(ids, ids_h);
        check_graph(&r);
        for (i, v) in extra.chunks_exact(24).enumerate().take(20) {
            let got = r.search(v, 1, 40, None);
            assert_eq!(got[0].0, 1500 + i as u32);
            assert_eq!(got, h.search(v, 1, 40, None));
        }
        let (mut b1, mut b2) = (Vec::new(), Vec::new());
        r.write(&mut b1).unwrap();
        h.write(&mut b2).unwrap();
        assert_eq!(b1, b2);
        assert_eq!(r.vector(5), &data[5 * 24..6 * 24]);
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let (h, _) = build(300, 8, 1);
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        // Every truncation.
        for len in 0..bytes.len() {
            let err = Hnsw::read(&mut &bytes[..len]).unwrap_err();
            assert!(
                matches!(err, ReadError::Truncated { .. } | ReadError::BadMagic),
                "len {len}: {err}"
            );
        }
        // Every single-bit flip in a sample of positions, including the whole header.
        let positions: Vec<usize> = (0..100)
            .chain((100..bytes.len()).step_by(37))
            .chain([bytes.len() - 1])
            .collect();
        for &pos in &positions {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[pos] ^= 1 << bit;
                let err = Hnsw::read(&mut bad.as_slice()).unwrap_err();
                let _ = err.to_string();
            }
        }
        // Appended bytes.
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Hnsw::read(&mut long.as_slice()),
            Err(ReadError::Inconsistent(_))
        ));
        // Specific kinds.
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            Hnsw::read(&mut bad.as_slice()),
            Err(ReadError::BadMagic)
        ));
        let mut bad = bytes.clone();
        bad[8] = 9;
        assert!(matches!(
            Hnsw::read(&mut bad.as_slice()),
            Err(ReadError::UnsupportedVersion(9))
        ));
        let mut bad = bytes.clone();
        let mid = bytes.len() / 2;
        bad[mid] ^= 0x10;
        assert!(matches!(
            Hnsw::read(&mut bad.as_slice()),
            Err(ReadError::ChecksumMismatch { .. })
        ));
        // Garbage with a valid checksum (a graph link out of range) is "inconsistent".
        let mut bad = bytes[..bytes.len() - 8].to_vec();
        let links_at = HEADER_LEN as usize + 300 * 8 * 4 + 300 + 4; // node 0, layer 0, first id
        bad[links_at..links_at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        let sum = checksum(&bad);
        bad.extend_from_slice(&sum.to_le_bytes());
        let err = Hnsw::read(&mut bad.as_slice()).unwrap_err();
        assert!(matches!(err, ReadError::Inconsistent(_)), "{err}");
        // Random garbage.
        let mut s = 1u64;
        for len in [0usize, 7, 8, 80, 1000] {
            let mut junk: Vec<u8> = (0..len).map(|_| splitmix64(&mut s) as u8).collect();
            let _ = Hnsw::read(&mut junk.as_slice()).unwrap_err();
            if junk.len() >= 8 {
                junk[..8].copy_from_slice(MAGIC);
                let _ = Hnsw::read(&mut junk.as_slice()).unwrap_err();
            }
        }
    }

    #[test]
    fn empty_index_and_k_above_len() {
        let mut h = Hnsw::new(4, Params::default());
        assert!(h.is_empty());
        assert!(h.search(&[1.0, 0.0, 0.0, 0.0], 5, 10, None).is_empty());
        assert!(h.exact(&[1.0, 0.0, 0.0, 0.0], 5, None).is_empty());
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        let r = Hnsw::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(r.len(), 0);
        assert!(r.search(&[1.0, 0.0, 0.0, 0.0], 5, 10, None).is_empty());

        assert_eq!(h.insert(&[1.0, 0.0, 0.0, 0.0]), 0);
        assert_eq!(h.insert(&[0.0, 1.0, 0.0, 0.0]), 1);
        assert_eq!(h.insert(&[0.6, 0.8, 0.0, 0.0]), 2);
        let got = h.search(&[1.0, 0.0, 0.0, 0.0], 10, 1, None);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert_eq!(got, h.exact(&[1.0, 0.0, 0.0, 0.0], 10, None));
        assert!(h.search(&[1.0, 0.0, 0.0, 0.0], 0, 10, None).is_empty());
        h.insert_many(&[], 2);
        assert_eq!(h.len(), 3);
    }
}
