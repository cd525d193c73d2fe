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
mod partial;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use build::{TILES_COLUMN, build_tiles};
use partial::{Class, Merged, Partial};

use super::compile::Kind;

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
    /// What each input's partials are.
    inputs: Vec<Class>,
    /// The features, in the view's order.
    features: Vec<TiledFeature>,
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
}

impl TilePlan {
    /// The features' names, in order.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
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

/// One entity's tiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Tiles written by another version of sluice, or damaged.
    #[error("the entity's tiles cannot be read ({0}); materialize the view again")]
    Unreadable(String),
}

/// The entity's newest event in an encoded tile set.
pub fn tiles_newest(blob: &[u8]) -> Result<i64, TileError> {
    decode(blob).map(|t| t.newest)
}

fn decode(blob: &[u8]) -> Result<EntityTiles, TileError> {
    postcard::from_bytes(blob).map_err(|e| TileError::Unreadable(e.to_string()))
}

/// The features of `plan` as of `at` (microseconds since the epoch) from one
/// entity's encoded tiles, in the plan's order.
pub fn read_tiles(plan: &TilePlan, blob: &[u8], at: i64) -> Result<Vec<Value>, TileError> {
    let entity = decode(blob)?;
    merge_at(plan, &entity, at)
}

/// The features of `plan` as of `at` over one entity's decoded tiles.
fn merge_at<'a>(
    plan: &TilePlan,
    entity: &'a EntityTiles,
    at: i64,
) -> Result<Vec<Value>, TileError> {
    if let Some(kept) = entity.kept_from {
        let earliest = kept.saturating_add(plan.longest());
        if at < earliest {
            return Err(TileError::BeforeHistory { at, earliest });
        }
    }
    let current = plan.floor(at);
    let aligned = current == at;
    let mut out = Vec::with_capacity(plan.features.len());
    for f in &plan.features {
        let class = plan.inputs[f.input];
        let mut acc = Merged::default();
        let mut add = |p: &'a Option<Partial>| {
            if let Some(p) = p {
                acc.add(class, p);
            }
        };
        let from = match f.window {
            Some(w) => plan.floor(at.saturating_sub(w)),
            None => {
                add(&entity.base[f.input]);
                i64::MIN
            }
        };
        let first = entity.tiles.partition_point(|t| t.start < from);
        for tile in &entity.tiles[first..] {
            if tile.start < current || (tile.start == current && !aligned) {
                add(&tile.edge[f.input]);
                add(&tile.rest[f.input]);
            } else {
                if tile.start == current && !f.left {
                    add(&tile.edge[f.input]);
                }
                break;
            }
        }
        out.push(acc.value(f.kind));
    }
    Ok(out)
}
