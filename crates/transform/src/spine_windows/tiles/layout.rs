//! One entity's tiles as bytes that are read in place: a read looks only at the
//! inputs and tiles its windows need, and allocates nothing per tile.
//!
//! Little-endian throughout. The header:
//!
//! ```text
//! "SLT" LAYOUT:u8  newest:i64  kept:u8 kept_from:i64  inputs:u32  segments:u32
//! starts: i64 × segments     edge: u8 × segments     sections: u32 × (inputs + 1)
//! ```
//!
//! A *segment* is a tile's events exactly at its start (`edge` = 1) or after it
//! (`edge` = 0), in time order; only segments with events are kept. Each input's
//! section (from `sections[i]` to `sections[i + 1]`, offsets into the blob, the
//! last one its end) starts with its class's byte and holds one *slot* per
//! segment plus slot 0, the events folded away before the kept tiles:
//!
//! - count: `i64 × slots`;
//! - integer sum: sums `i64 × slots`, then counts `u64 × slots`;
//! - floats: counts `u64 × slots`, sums `f64 × slots`, spreads `f64 × slots`;
//! - kept value (min, max, last): `u32 × (2·slots + 1)` offsets into the bytes
//!   that follow: slot `j`'s value in Arrow's row format from `2j` to `2j + 1`
//!   (empty: no value), its JSON from `2j + 1` to `2j + 2`;
//! - distinct values: the number of distinct values in the entity's tiles
//!   (`u32`), `u32 × (slots + 1)` offsets into the ids that follow, ids `u32`:
//!   each value is numbered once per entity, so a count over many tiles is the
//!   number of bits set in the union of their ids.
//!
//! Every offset, length and id is checked as it is read: a damaged blob gives
//! [`TileError::Unreadable`], never a panic.

use super::partial::{Class, Partial};
use super::{EntityTiles, TileError};
use crate::spine_windows::state::Moments;

/// The layout written by this version; a blob of another is refused.
pub(super) const LAYOUT: u8 = 2;

const MAGIC: &[u8; 3] = b"SLT";
const HEADER: usize = 3 + 1 + 8 + 1 + 8 + 4 + 4;

fn class_byte(class: Class) -> u8 {
    match class {
        Class::Count => 1,
        Class::IntSum => 2,
        Class::Floats => 3,
        Class::Min => 4,
        Class::Max => 5,
        Class::Last => 6,
        Class::Distinct => 7,
    }
}

/// Encodes `entity`'s tiles, whose inputs are of `classes`.
pub(super) fn encode(classes: &[Class], entity: &EntityTiles) -> Vec<u8> {
    let mut segments: Vec<(i64, bool, &[Option<Partial>])> = vec![];
    for tile in &entity.tiles {
        for (edge, part) in [(true, &tile.edge), (false, &tile.rest)] {
            if part.iter().any(Option::is_some) {
                segments.push((tile.start, edge, part));
            }
        }
    }
    let slots = segments.len() + 1;
    let slot = |input: usize, j: usize| -> Option<&Partial> {
        match j {
            0 => entity.base.get(input)?.as_ref(),
            _ => segments.get(j - 1)?.2.get(input)?.as_ref(),
        }
    };
    let mut out = Vec::with_capacity(HEADER + segments.len() * 9 + classes.len() * slots * 8);
    out.extend_from_slice(MAGIC);
    out.push(LAYOUT);
    out.extend_from_slice(&entity.newest.to_le_bytes());
    out.push(u8::from(entity.kept_from.is_some()));
    out.extend_from_slice(&entity.kept_from.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&(classes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    for (start, _, _) in &segments {
        out.extend_from_slice(&start.to_le_bytes());
    }
    out.extend(segments.iter().map(|(_, edge, _)| u8::from(*edge)));
    let table = out.len();
    out.resize(table + 4 * (classes.len() + 1), 0);
    for (i, class) in classes.iter().enumerate() {
        let at = out.len() as u32;
        out[table + 4 * i..table + 4 * i + 4].copy_from_slice(&at.to_le_bytes());
        out.push(class_byte(*class));
        let all = || (0..slots).map(|j| slot(i, j));
        match class {
            Class::Count => {
                for p in all() {
                    let n = match p {
                        Some(Partial::Count(n)) => *n,
                        _ => 0,
                    };
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            Class::IntSum => {
                let parts: Vec<(i64, u64)> = all()
                    .map(|p| match p {
                        Some(Partial::IntSum { sum, n }) => (*sum, *n),
                        _ => (0, 0),
                    })
                    .collect();
                parts
                    .iter()
                    .for_each(|p| out.extend_from_slice(&p.0.to_le_bytes()));
                parts
                    .iter()
                    .for_each(|p| out.extend_from_slice(&p.1.to_le_bytes()));
            }
            Class::Floats => {
                let parts: Vec<Moments> = all()
                    .map(|p| match p {
                        Some(Partial::Floats(m)) => *m,
                        _ => Moments::default(),
                    })
                    .collect();
                parts
                    .iter()
                    .for_each(|m| out.extend_from_slice(&m.n.to_le_bytes()));
                parts
                    .iter()
                    .for_each(|m| out.extend_from_slice(&m.sum.to_le_bytes()));
                parts
                    .iter()
                    .for_each(|m| out.extend_from_slice(&m.m2.to_le_bytes()));
            }
            Class::Min | Class::Max | Class::Last => {
                let mut heap: Vec<u8> = vec![];
                let mut offsets = vec![0u32];
                for p in all() {
                    if let Some(Partial::Kept { row, json }) = p {
                        heap.extend_from_slice(row);
                        offsets.push(heap.len() as u32);
                        heap.extend_from_slice(json.as_bytes());
                    } else {
                        offsets.push(heap.len() as u32);
                    }
                    offsets.push(heap.len() as u32);
                }
                offsets
                    .iter()
                    .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
                out.extend_from_slice(&heap);
            }
            Class::Distinct => {
                let sets: Vec<&[Vec<u8>]> = all()
                    .map(|p| match p {
                        Some(Partial::Distinct(v)) => v.as_slice(),
                        _ => &[],
                    })
                    .collect();
                let mut values: Vec<&[u8]> = sets
                    .iter()
                    .flat_map(|s| s.iter().map(Vec::as_slice))
                    .collect();
                values.sort_unstable();
                values.dedup();
                out.extend_from_slice(&(values.len() as u32).to_le_bytes());
                let mut ids: Vec<u32> = vec![];
                let mut offsets = vec![0u32];
                for set in &sets {
                    for v in set.iter() {
                        // Every value is in `values`, which was made of them.
                        let id = values.binary_search(&v.as_slice()).unwrap_or_default();
                        ids.push(id as u32);
                    }
                    offsets.push(ids.len() as u32);
                }
                offsets
                    .iter()
                    .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
                ids.iter()
                    .for_each(|id| out.extend_from_slice(&id.to_le_bytes()));
            }
        }
    }
    let end = out.len() as u32;
    let last = table + 4 * classes.len();
    out[last..last + 4].copy_from_slice(&end.to_le_bytes());
    out
}

fn damaged(what: &str) -> TileError {
    TileError::Unreadable(format!("the tiles are damaged: {what}"))
}

/// Little-endian fixed-width words: 4 or 8 bytes each, by the accessor.
#[derive(Clone, Copy)]
pub(super) struct Words<'a>(&'a [u8]);

impl<'a> Words<'a> {
    fn u32(&self, j: usize) -> Result<u32, TileError> {
        self.0
            .get(4 * j..4 * j + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| damaged("an offset past its table"))
    }

    fn u64(&self, j: usize) -> Result<u64, TileError> {
        self.0
            .get(8 * j..8 * j + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| damaged("a value past its column"))
    }

    fn i64(&self, j: usize) -> Result<i64, TileError> {
        self.u64(j).map(|x| x as i64)
    }

    fn f64(&self, j: usize) -> Result<f64, TileError> {
        self.u64(j).map(f64::from_bits)
    }
}

/// Splits `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: Option<usize>) -> Result<&'a [u8], TileError> {
    match n {
        Some(n) if n <= rest.len() => {
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            Ok(head)
        }
        _ => Err(damaged("shorter than its header says")),
    }
}

/// An encoded tile set, its header read and checked.
pub(super) struct Blob<'a> {
    bytes: &'a [u8],
    pub(super) newest: i64,
    pub(super) kept_from: Option<i64>,
    inputs: usize,
    segments: usize,
    starts: Words<'a>,
    edges: &'a [u8],
    sections: Words<'a>,
}

impl<'a> Blob<'a> {
    /// Reads `bytes`' header.
    pub(super) fn open(bytes: &'a [u8]) -> Result<Self, TileError> {
        if !bytes.starts_with(MAGIC) && !MAGIC.starts_with(bytes) {
            return Err(TileError::OldLayout { found: None });
        }
        match bytes.get(3) {
            Some(&LAYOUT) => {}
            Some(other) => {
                return Err(TileError::OldLayout {
                    found: Some(*other),
                });
            }
            None => return Err(damaged("no header")),
        }
        let mut rest = bytes;
        let head = take(&mut rest, Some(HEADER)).map_err(|_| damaged("no header"))?;
        let words = Words(&head[4..]);
        let newest = words.i64(0)?;
        let kept = head[12];
        let kept_from = Words(&head[13..]).i64(0)?;
        let counts = Words(&head[21..]);
        let (inputs, segments) = (counts.u32(0)? as usize, counts.u32(1)? as usize);
        let starts = Words(take(&mut rest, segments.checked_mul(8))?);
        let edges = take(&mut rest, Some(segments))?;
        let sections = Words(take(
            &mut rest,
            inputs.checked_add(1).and_then(|n| n.checked_mul(4)),
        )?);
        let blob = Blob {
            bytes,
            newest,
            kept_from: match kept {
                0 => None,
                1 => Some(kept_from),
                _ => return Err(damaged("a flag that is neither 0 nor 1")),
            },
            inputs,
            segments,
            starts,
            edges,
            sections,
        };
        if blob.sections.u32(inputs)? as usize != bytes.len() {
            return Err(damaged("its length is not the one it was written with"));
        }
        Ok(blob)
    }

    /// How many inputs the tiles hold.
    pub(super) fn inputs(&self) -> usize {
        self.inputs
    }

    /// The number of slots of every input: the folded events, then each segment.
    pub(super) fn slots(&self) -> usize {
        self.segments + 1
    }

    /// The first segment that does not satisfy `before` (segments are in time
    /// order, and `before` holds for a prefix of them).
    pub(super) fn first_not(&self, before: impl Fn(i64, bool) -> bool) -> Result<usize, TileError> {
        let (mut lo, mut hi) = (0, self.segments);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let edge = self.edges.get(mid).is_some_and(|e| *e != 0);
            if before(self.starts.i64(mid)?, edge) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Input `i`'s section, which must be of `class`.
    pub(super) fn section(&self, i: usize, class: Class) -> Result<Section<'a>, TileError> {
        let (from, to) = (
            self.sections.u32(i)? as usize,
            self.sections.u32(i + 1)? as usize,
        );
        let mut rest = self
            .bytes
            .get(from..to)
            .ok_or_else(|| damaged("a section out of bounds"))?;
        let kind = take(&mut rest, Some(1))?;
        if kind[0] != class_byte(class) {
            return Err(damaged(
                "an input of another kind than the view's plan says",
            ));
        }
        let slots = self.slots();
        let column = |rest: &mut &'a [u8]| take(rest, slots.checked_mul(8)).map(Words);
        let section = match class {
            Class::Count => Section::Count(column(&mut rest)?),
            Class::IntSum => Section::IntSum(column(&mut rest)?, column(&mut rest)?),
            Class::Floats => {
                Section::Floats(column(&mut rest)?, column(&mut rest)?, column(&mut rest)?)
            }
            Class::Min | Class::Max | Class::Last => {
                let offsets = take(
                    &mut rest,
                    slots.checked_mul(8).and_then(|n| n.checked_add(4)),
                )?;
                Section::Kept(Words(offsets), rest)
            }
            Class::Distinct => {
                let values = Words(take(&mut rest, Some(4))?).u32(0)? as usize;
                let offsets = take(
                    &mut rest,
                    slots.checked_add(1).and_then(|n| n.checked_mul(4)),
                )?;
                if values > rest.len() / 4 {
                    return Err(damaged("more distinct values than ids"));
                }
                Section::Distinct {
                    values,
                    offsets: Words(offsets),
                    ids: rest,
                }
            }
        };
        if matches!(
            section,
            Section::Count(_) | Section::IntSum(..) | Section::Floats(..)
        ) && !rest.is_empty()
        {
            return Err(damaged("a section longer than its columns"));
        }
        Ok(section)
    }
}

/// One input's slots, read in place.
pub(super) enum Section<'a> {
    Count(Words<'a>),
    IntSum(Words<'a>, Words<'a>),
    Floats(Words<'a>, Words<'a>, Words<'a>),
    Kept(Words<'a>, &'a [u8]),
    Distinct {
        /// How many distinct values the entity's tiles hold (ids are below).
        values: usize,
        offsets: Words<'a>,
        ids: &'a [u8],
    },
}

/// What one slot holds.
#[derive(Clone, Copy)]
pub(super) enum Slot<'a> {
    Count(i64),
    IntSum(i64, u64),
    Floats(Moments),
    /// A kept value (row bytes, JSON); none when the slot has no value.
    Kept(Option<(&'a [u8], &'a [u8])>),
    /// Distinct values' ids.
    Ids(&'a [u8]),
}

impl<'a> Section<'a> {
    /// Slot `j`.
    pub(super) fn slot(&self, j: usize) -> Result<Slot<'a>, TileError> {
        Ok(match self {
            Section::Count(c) => Slot::Count(c.i64(j)?),
            Section::IntSum(sums, counts) => Slot::IntSum(sums.i64(j)?, counts.u64(j)?),
            Section::Floats(n, sum, m2) => Slot::Floats(Moments {
                n: n.u64(j)?,
                sum: sum.f64(j)?,
                m2: m2.f64(j)?,
            }),
            Section::Kept(offsets, heap) => {
                let (a, b, c) = (
                    offsets.u32(2 * j)? as usize,
                    offsets.u32(2 * j + 1)? as usize,
                    offsets.u32(2 * j + 2)? as usize,
                );
                if a == b {
                    return Ok(Slot::Kept(None));
                }
                let row = heap.get(a..b);
                let json = heap.get(b..c);
                match (row, json) {
                    (Some(row), Some(json)) => Slot::Kept(Some((row, json))),
                    _ => return Err(damaged("a kept value out of bounds")),
                }
            }
            Section::Distinct { offsets, ids, .. } => {
                let (a, b) = (offsets.u32(j)? as usize, offsets.u32(j + 1)? as usize);
                Slot::Ids(
                    ids.get(4 * a..4 * b)
                        .ok_or_else(|| damaged("distinct values out of bounds"))?,
                )
            }
        })
    }

    /// For distinct values: how many the entity's tiles hold.
    pub(super) fn distinct_values(&self) -> usize {
        match self {
            Section::Distinct { values, .. } => *values,
            _ => 0,
        }
    }
}

/// Distinct ids of a slot, each checked against the number of values.
pub(super) fn ids(bytes: &[u8], values: usize) -> impl Iterator<Item = Result<usize, TileError>> {
    bytes.chunks_exact(4).map(move |b| {
        let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if id < values {
            Ok(id)
        } else {
            Err(damaged("a distinct value's id out of range"))
        }
    })
}
