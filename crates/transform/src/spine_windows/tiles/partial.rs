//! Partial aggregates: what one tile keeps of the events of one input, merged
//! with a newer tile's by [`Partial::merge`]; at read time, the encoded slots
//! gather in a [`Merged`], which gives a feature's value.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TileError;
use super::layout::{self, Slot};
use crate::spine_windows::compile::Kind;
use crate::spine_windows::state::{Item, Moments};

/// What an input's events in one tile add up to.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Partial {
    /// Events counted.
    Count(i64),
    /// Integers summed (wrapping) and how many.
    IntSum { sum: i64, n: u64 },
    /// Count, sum and spread of numbers.
    Floats(Moments),
    /// A value kept (minimum, maximum or newest): its encoding in Arrow's row
    /// format (which orders it) and its JSON.
    Kept { row: Vec<u8>, json: String },
    /// The distinct values, encoded, sorted.
    Distinct(Vec<Vec<u8>>),
}

/// How an input's partials merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Class {
    Count,
    IntSum,
    Floats,
    Min,
    Max,
    Last,
    Distinct,
}

impl Class {
    /// The class a feature of `kind` reads.
    pub(super) fn of(kind: Kind) -> Self {
        match kind {
            Kind::Count => Class::Count,
            Kind::Distinct => Class::Distinct,
            Kind::IntSum { .. } => Class::IntSum,
            Kind::FloatSum { .. } | Kind::Mean | Kind::Stddev => Class::Floats,
            Kind::Extreme { max: false } => Class::Min,
            Kind::Extreme { max: true } => Class::Max,
            Kind::Last { .. } => Class::Last,
        }
    }
}

impl Partial {
    /// The partial of one event's `item` (`json`: the value's JSON, for kept values).
    pub(super) fn one(class: Class, item: Item, json: impl FnOnce() -> String) -> Option<Self> {
        Some(match (class, item) {
            (Class::Count, _) => Partial::Count(1),
            (Class::IntSum, Item::Int(x)) => Partial::IntSum { sum: x, n: 1 },
            (Class::Floats, Item::Float(x)) => Partial::Floats(Moments::one(x)),
            (Class::Min | Class::Max | Class::Last, Item::Row(r)) => Partial::Kept {
                row: r.row().as_ref().to_vec(),
                json: json(),
            },
            (Class::Distinct, Item::Row(r)) => Partial::Distinct(vec![r.row().as_ref().to_vec()]),
            // The reader makes the item its class reads.
            _ => return None,
        })
    }

    /// `self` followed by `newer` (events at or after `self`'s).
    pub(super) fn merge(&mut self, class: Class, newer: &Partial) {
        match (self, newer) {
            (Partial::Count(a), Partial::Count(b)) => *a += b,
            (Partial::IntSum { sum, n }, Partial::IntSum { sum: s, n: m }) => {
                *sum = sum.wrapping_add(*s);
                *n += m;
            }
            (Partial::Floats(a), Partial::Floats(b)) => *a = a.merge(*b),
            (kept @ Partial::Kept { .. }, Partial::Kept { row: r, .. }) => {
                let Partial::Kept { row, .. } = &*kept else {
                    return;
                };
                let replace = match class {
                    Class::Min => r < row,
                    Class::Max => r > row,
                    _ => true,
                };
                if replace {
                    *kept = newer.clone();
                }
            }
            (Partial::Distinct(a), Partial::Distinct(b)) => {
                a.extend(b.iter().cloned());
                a.sort_unstable();
                a.dedup();
            }
            _ => {}
        }
    }
}

/// Slots merged for one read, borrowing the tiles' bytes: nothing is copied,
/// and distinct values gather as bits of their ids.
#[derive(Debug, Default)]
pub(super) enum Merged<'a> {
    /// No event.
    #[default]
    Empty,
    Count(i64),
    IntSum {
        sum: i64,
        n: u64,
    },
    Floats(Moments),
    /// The kept value chosen so far: its row bytes and its JSON.
    Kept(&'a [u8], &'a [u8]),
    /// One bit per distinct value of the entity's tiles.
    Distinct(Vec<u64>),
}

impl<'a> Merged<'a> {
    /// Adds `slot`, whose events are at or after those added before; `values`:
    /// how many distinct values the entity's tiles hold (for distinct counts).
    pub(super) fn add(
        &mut self,
        class: Class,
        slot: Slot<'a>,
        values: usize,
    ) -> Result<(), TileError> {
        match (&mut *self, slot) {
            (Merged::Empty, Slot::Count(n)) => *self = Merged::Count(n),
            (Merged::Count(a), Slot::Count(b)) => *a = a.wrapping_add(b),
            (Merged::Empty, Slot::IntSum(sum, n)) => *self = Merged::IntSum { sum, n },
            (Merged::IntSum { sum, n }, Slot::IntSum(s, m)) => {
                *sum = sum.wrapping_add(s);
                *n = n.wrapping_add(m);
            }
            (Merged::Empty, Slot::Floats(m)) => *self = Merged::Floats(m),
            (Merged::Floats(a), Slot::Floats(b)) => *a = a.merge(b),
            (_, Slot::Kept(None)) => {}
            (Merged::Empty, Slot::Kept(Some((row, json)))) => *self = Merged::Kept(row, json),
            (Merged::Kept(best, text), Slot::Kept(Some((row, json)))) => {
                let replace = match class {
                    Class::Min => row < *best,
                    Class::Max => row > *best,
                    _ => true,
                };
                if replace {
                    *best = row;
                    *text = json;
                }
            }
            (Merged::Empty, Slot::Ids(ids)) => {
                let mut bits = vec![0u64; values.div_ceil(64)];
                set_bits(&mut bits, ids, values)?;
                *self = Merged::Distinct(bits);
            }
            (Merged::Distinct(bits), Slot::Ids(ids)) => set_bits(bits, ids, values)?,
            _ => {}
        }
        Ok(())
    }

    /// A feature of `kind`'s value over what was added.
    pub(super) fn value(&self, kind: Kind) -> Value {
        let number = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        match (kind, self) {
            (Kind::Count, Merged::Count(n)) => Value::from(*n),
            (Kind::Distinct, Merged::Distinct(bits)) => {
                Value::from(bits.iter().map(|w| i64::from(w.count_ones())).sum::<i64>())
            }
            (Kind::Count | Kind::Distinct, _) => Value::from(0),
            (Kind::IntSum { .. }, Merged::IntSum { sum, n }) if *n > 0 => Value::from(*sum),
            (Kind::IntSum { zero: true }, _) => Value::from(0),
            (Kind::FloatSum { .. }, Merged::Floats(m)) if m.n > 0 => number(m.sum),
            (Kind::FloatSum { zero: true }, _) => number(0.0),
            (Kind::Mean, Merged::Floats(m)) if m.n > 0 => number(m.sum / m.n as f64),
            (Kind::Stddev, Merged::Floats(m)) => m.stddev().map_or(Value::Null, number),
            (Kind::Extreme { .. } | Kind::Last { .. }, Merged::Kept(_, json)) => {
                serde_json::from_slice(json).unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    }
}

/// Sets the bit of every id in `ids` (4 bytes each), each below `values`.
fn set_bits(bits: &mut [u64], ids: &[u8], values: usize) -> Result<(), TileError> {
    for id in layout::ids(ids, values) {
        let id = id?;
        if let Some(word) = bits.get_mut(id / 64) {
            *word |= 1 << (id % 64);
        }
    }
    Ok(())
}
