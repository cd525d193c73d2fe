//! Partial aggregates: what one tile keeps of the events of one input, merged
//! with a newer tile's by [`Partial::merge`] and turned into a feature's value by
//! [`Partial::value`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spine_windows::compile::Kind;
use crate::spine_windows::state::{Item, Moments};

/// What an input's events in one tile add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Partials merged for one read, borrowing the tiles' values: nothing is
/// cloned, and distinct values gather in one set.
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
    /// The kept value chosen so far.
    Kept(&'a [u8], &'a str),
    Distinct(HashSet<&'a [u8]>),
}

impl<'a> Merged<'a> {
    /// Adds `p`, whose events are at or after those added before.
    pub(super) fn add(&mut self, class: Class, p: &'a Partial) {
        match (&mut *self, p) {
            (Merged::Empty, Partial::Count(n)) => *self = Merged::Count(*n),
            (Merged::Count(a), Partial::Count(b)) => *a += b,
            (Merged::Empty, Partial::IntSum { sum, n }) => {
                *self = Merged::IntSum { sum: *sum, n: *n };
            }
            (Merged::IntSum { sum, n }, Partial::IntSum { sum: s, n: m }) => {
                *sum = sum.wrapping_add(*s);
                *n += m;
            }
            (Merged::Empty, Partial::Floats(m)) => *self = Merged::Floats(*m),
            (Merged::Floats(a), Partial::Floats(b)) => *a = a.merge(*b),
            (Merged::Empty, Partial::Kept { row, json }) => *self = Merged::Kept(row, json),
            (Merged::Kept(best, text), Partial::Kept { row, json }) => {
                let replace = match class {
                    Class::Min => row.as_slice() < *best,
                    Class::Max => row.as_slice() > *best,
                    _ => true,
                };
                if replace {
                    *best = row;
                    *text = json;
                }
            }
            (Merged::Empty, Partial::Distinct(v)) => {
                *self = Merged::Distinct(v.iter().map(Vec::as_slice).collect());
            }
            (Merged::Distinct(set), Partial::Distinct(v)) => {
                set.extend(v.iter().map(Vec::as_slice));
            }
            _ => {}
        }
    }

    /// A feature of `kind`'s value over what was added.
    pub(super) fn value(&self, kind: Kind) -> Value {
        let number = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        match (kind, self) {
            (Kind::Count, Merged::Count(n)) => Value::from(*n),
            (Kind::Distinct, Merged::Distinct(v)) => Value::from(v.len() as i64),
            (Kind::Count | Kind::Distinct, _) => Value::from(0),
            (Kind::IntSum { .. }, Merged::IntSum { sum, n }) if *n > 0 => Value::from(*sum),
            (Kind::IntSum { zero: true }, _) => Value::from(0),
            (Kind::FloatSum { .. }, Merged::Floats(m)) if m.n > 0 => number(m.sum),
            (Kind::FloatSum { zero: true }, _) => number(0.0),
            (Kind::Mean, Merged::Floats(m)) if m.n > 0 => number(m.sum / m.n as f64),
            (Kind::Stddev, Merged::Floats(m)) => m.stddev().map_or(Value::Null, number),
            (Kind::Extreme { .. } | Kind::Last { .. }, Merged::Kept(_, json)) => {
                serde_json::from_str(json).unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    }
}
