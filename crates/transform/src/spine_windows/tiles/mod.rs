//! Windows as of the moment they are read, online: per entity, partial
//! aggregates of its events in time tiles, merged at read time over the tiles
//! inside `[t - w, t]`.
//!
//! A tile is `[k·s, (k+1)·s)` for the tile size `s`; it keeps apart the events
//! exactly at its start, so a read at a multiple of `s` takes the events at `t`
//! (closed on the right) or leaves them out (closed on the left). Features that
//! read the same column with the same filter the same way share one partial per
//! tile. Only tiles with events are kept.
//!
//! **Precision.** At a time `t` that is a multiple of the tile, with windows that
//! are multiples of it, a read equals [`crate::spine_windows`] at `T = t` (the
//! same events, merged in another order: sums and spreads of floats may differ in
//! the last bits). Elsewhere a window starts at the start of the tile `t - w` falls
//! in (up to one tile early), and takes in the whole tile `t` falls in (events
//! after `t` in it count: none, for a read at the present).
//!
//! **History.** Per entity the tiles from `newest - longest window - history`
//! on are kept (the start rounded down to a tile); the events before them are
//! folded into one partial per input that an all-time feature reads. A read at a
//! time `t` needs every window inside what is kept: `t >= kept from + longest
//! window`, else [`TileError::BeforeHistory`].

mod build;
mod layout;
mod partial;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use build::{TILES_COLUMN, build_tiles};
use layout::{Blob, LAYOUT};
use partial::{Class, Merged, Partial};

use super::compile::Kind;
use crate::DerivedFeatures;

/// The tile size and how much history a tiled view keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileLayout {
    /// The tile size.
    pub size: Duration,
    /// How far before an entity's newest event reads may go (beyond its longest
    /// window).
    pub history: Duration,
}

/// How a view's tiles are read: stored beside them (the view's online metadata),
/// so a read needs nothing of the project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TilePlan {
    /// The tile size, in microseconds.
    pub size_micros: i64,
    /// The history kept beyond the longest window, in microseconds.
    pub history_micros: i64,
    /// The layout of the tiles it reads (plans of the first layout have none).
    #[serde(default = "first_layout")]
    layout: u8,
    /// What each input's partials are.
    inputs: Vec<Class>,
    /// The features, in the view's order.
    features: Vec<TiledFeature>,
    /// The view's derived features, computed over the others once they are
    /// read: name and SQL, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    derived: Vec<(String, String)>,
}

/// One feature read from tiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TiledFeature {
    name: String,
    kind: Kind,
    /// The input whose partials it reads.
    input: usize,
    /// The window in microseconds (cut to the ttl); `None` = all time.
    window: Option<i64>,
    /// Closed on the left: events at `t` do not count.
    left: bool,
    /// Its Arrow type, as text (for derived features to read it).
    #[serde(default)]
    data_type: String,
}

fn first_layout() -> u8 {
    1
}

impl TilePlan {
    /// Whether the tiles this plan reads are in the layout this version of
    /// sluice reads: tiles of an older one must be written again.
    pub fn is_current(&self) -> bool {
        self.layout == LAYOUT
    }

    /// The features' names, in order.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// The same plan with the view's derived features (name and SQL, in
    /// declaration order), computed over the others after each read.
    pub fn with_derived(mut self, derived: Vec<(String, String)>) -> Self {
        self.derived = derived;
        self
    }

    /// The view's derived features compiled over the features read (`view`
    /// names the view in errors); `None` without derived features. Compile once
    /// per plan, not per read.
    pub fn derived(&self, view: &str) -> Option<datafusion::error::Result<DerivedFeatures>> {
        if self.derived.is_empty() {
            return None;
        }
        let fields: datafusion::error::Result<Vec<Field>> = self
            .features
            .iter()
            .map(|f| {
                let t = DataType::from_str(&f.data_type).map_err(|e| {
                    datafusion::error::DataFusionError::Plan(format!(
                        "the type of feature `{}` of `{view}` in its tile plan ({e}); materialize the view again",
                        f.name
                    ))
                })?;
                Ok(Field::new(&f.name, t, true))
            })
            .collect();
        let inputs = match fields {
            Ok(fields) => Arc::new(Schema::new(fields)),
            Err(e) => return Some(Err(e)),
        };
        Some(DerivedFeatures::compile(view, inputs, &self.derived))
    }

    /// The longest window (0 without windows); all-time features read the
    /// folded partials and need no tiles.
    fn longest(&self) -> i64 {
        self.features
            .iter()
            .filter_map(|f| f.window)
            .max()
            .unwrap_or(0)
    }

    /// Which inputs an all-time feature reads (their events before the kept
    /// tiles are folded into one partial).
    fn all_time_inputs(&self) -> Vec<bool> {
        let mut out = vec![false; self.inputs.len()];
        for f in self.features.iter().filter(|f| f.window.is_none()) {
            out[f.input] = true;
        }
        out
    }

    fn floor(&self, t: i64) -> i64 {
        t.div_euclid(self.size_micros) * self.size_micros
    }
}

/// One entity's tiles, as they are built ([`layout`] encodes them).
#[derive(Debug, Clone, PartialEq)]
struct EntityTiles {
    /// The entity's newest event (microseconds since the epoch).
    newest: i64,
    /// The start of the first tile kept; `None` when nothing was folded away.
    kept_from: Option<i64>,
    /// Per input, the events before the kept tiles (inputs of all-time features).
    base: Vec<Option<Partial>>,
    /// The tiles with events, oldest first.
    tiles: Vec<Tile>,
}

#[derive(Debug, Clone, PartialEq)]
struct Tile {
    start: i64,
    /// Per input, the events exactly at `start`.
    edge: Vec<Option<Partial>>,
    /// Per input, the events after `start` in the tile.
    rest: Vec<Option<Partial>>,
}

/// Why tiles cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A read before what the tiles keep.
    #[error(
        "the online store keeps this entity's windows from {earliest} µs on; {at} µs is before"
    )]
    BeforeHistory {
        /// The time asked for (microseconds since the epoch).
        at: i64,
        /// The earliest time that can be read.
        earliest: i64,
    },
    /// Tiles written by another version of sluice, in another layout.
    #[error(
        "the entity's tiles were written by another version of sluice, in layout {}; this one reads layout {LAYOUT}",
        found.unwrap_or(1)
    )]
    OldLayout {
        /// The layout found; `None` for the first, which had no version byte.
        found: Option<u8>,
    },
    /// Tiles damaged, or not of the view's plan.
    #[error("the entity's tiles cannot be read ({0})")]
    Unreadable(String),
}

/// The entity's newest event in an encoded tile set.
pub fn tiles_newest(blob: &[u8]) -> Result<i64, TileError> {
    Blob::open(blob).map(|b| b.newest)
}

/// The features of `plan` as of `at` (microseconds since the epoch) from one
/// entity's encoded tiles, in the plan's order.
///
/// The blob is read in place: per input, one pass over the slots its features'
/// windows cover, each feature merging its own in time order.
pub fn read_tiles(plan: &TilePlan, blob: &[u8], at: i64) -> Result<Vec<Value>, TileError> {
    let blob = Blob::open(blob)?;
    if blob.inputs() != plan.inputs.len() {
        return Err(TileError::Unreadable(format!(
            "the tiles hold {} inputs, the view's plan {}",
            blob.inputs(),
            plan.inputs.len()
        )));
    }
    if let Some(kept) = blob.kept_from {
        let earliest = kept.saturating_add(plan.longest());
        if at < earliest {
            return Err(TileError::BeforeHistory { at, earliest });
        }
    }
    let current = plan.floor(at);
    let aligned = current == at;
    // Slots read (slot 0: the folded events; slot s + 1: segment s), up to the
    // first after `at`: closed on the right, the events exactly at an aligned
    // `at` count; closed on the left, they do not.
    let right =
        1 + blob.first_not(|s, edge| s < current || (s == current && (!aligned || edge)))?;
    let left = 1 + blob.first_not(|s, _| s < current || (s == current && !aligned))?;
    let mut out = vec![Value::Null; plan.features.len()];
    let mut reads: Vec<(usize, usize, usize, Merged)> = vec![];
    for (input, class) in plan.inputs.iter().enumerate() {
        for (i, f) in plan.features.iter().enumerate() {
            if f.input != input {
                continue;
            }
            let from = match f.window {
                Some(w) => {
                    let from = plan.floor(at.saturating_sub(w));
                    1 + blob.first_not(|s, _| s < from)?
                }
                None => 0,
            };
            let to = if f.left { left } else { right };
            reads.push((i, from, to, Merged::default()));
        }
        let (Some(first), Some(end)) = (
            reads.iter().map(|r| r.1).min(),
            reads.iter().map(|r| r.2).max(),
        ) else {
            continue;
        };
        let section = blob.section(input, *class)?;
        let values = section.distinct_values();
        for j in first..end {
            let slot = section.slot(j)?;
            for (_, from, to, merged) in reads.iter_mut() {
                if *from <= j && j < *to {
                    merged.add(*class, slot, values)?;
                }
            }
        }
        for (i, _, _, merged) in reads.drain(..) {
            out[i] = merged.value(plan.features[i].kind);
        }
    }
    Ok(out)
}
