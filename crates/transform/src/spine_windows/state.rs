//! The running state of one windowed aggregate over one entity's events, which
//! arrive in time order and leave (oldest first) as the window's start moves on.
//!
//! Nothing here subtracts floating-point values: sums, means and standard
//! deviations slide with two stacks (each entry of the front stack holds the
//! aggregate of itself and every newer front entry), so removing an event never
//! cancels digits and an infinity leaving the window does not leave a NaN behind.
//! Integer sums subtract, wrapping, which is exact. Minima and maxima keep a
//! monotonic deque; distinct counts a count per value.

use std::collections::{HashMap, VecDeque};

use datafusion::arrow::row::OwnedRow;

/// What one event brings to one aggregate (after its filter).
#[derive(Debug, Clone)]
pub(super) enum Item {
    /// Counted, no value.
    Unit,
    /// An integer summed.
    Int(i64),
    /// A number summed, averaged or spread.
    Float(f64),
    /// A value kept as it is (encoded in Arrow's row format, which orders it).
    Row(OwnedRow),
}

/// Count, sum and sum of squared deviations from the mean, merged with Chan et
/// al.'s formula: exact for counts, stable for the spread.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Moments {
    pub(super) n: u64,
    pub(super) sum: f64,
    pub(super) m2: f64,
}

impl Moments {
    pub(super) fn one(x: f64) -> Self {
        Moments {
            n: 1,
            sum: x,
            m2: 0.0,
        }
    }

    pub(super) fn merge(self, other: Moments) -> Moments {
        if self.n == 0 {
            return other;
        }
        if other.n == 0 {
            return self;
        }
        let n = self.n + other.n;
        let delta = other.sum / other.n as f64 - self.sum / self.n as f64;
        Moments {
            n,
            sum: self.sum + other.sum,
            m2: self.m2 + other.m2 + delta * delta * (self.n as f64) * (other.n as f64) / n as f64,
        }
    }

    /// The sample standard deviation; none below two values.
    pub(super) fn stddev(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).sqrt())
    }
}

/// An aggregate's state. `windowed` states keep their events so they can leave;
/// "all time" states keep only the running result.
#[derive(Debug)]
pub(super) enum State {
    /// Events counted: their times when windowed.
    Count { times: VecDeque<i64>, total: i64 },
    /// Integers summed (wrapping, like SQL's `sum` of `BIGINT` in DataFusion).
    IntSum {
        items: VecDeque<(i64, i64)>,
        sum: i64,
        n: u64,
    },
    /// Numbers, on two stacks: `front` (oldest on top) with suffix aggregates,
    /// `back` in arrival order with its running aggregate.
    Floats {
        front: Vec<(i64, Moments)>,
        back: Vec<(i64, f64)>,
        back_total: Moments,
    },
    /// The values that can still become the extreme, newest last: decreasing
    /// for a maximum, increasing for a minimum.
    Extreme {
        max: bool,
        items: VecDeque<(i64, OwnedRow)>,
    },
    /// Values in the window and how many events carry each.
    Distinct {
        items: VecDeque<(i64, OwnedRow)>,
        counts: HashMap<OwnedRow, usize>,
    },
    /// The newest value.
    Last(Option<(i64, OwnedRow)>),
}

impl State {
    /// Adds an event at time `t`, not older than any event added before.
    pub(super) fn push(&mut self, windowed: bool, t: i64, item: Item) {
        match (self, item) {
            (State::Count { times, total }, _) => {
                *total += 1;
                if windowed {
                    times.push_back(t);
                }
            }
            (State::IntSum { items, sum, n }, Item::Int(x)) => {
                *sum = sum.wrapping_add(x);
                *n += 1;
                if windowed {
                    items.push_back((t, x));
                }
            }
            (
                State::Floats {
                    back, back_total, ..
                },
                Item::Float(x),
            ) => {
                *back_total = back_total.merge(Moments::one(x));
                if windowed {
                    back.push((t, x));
                }
            }
            (State::Extreme { max, items }, Item::Row(v)) => {
                if !windowed {
                    let better = items
                        .back()
                        .is_none_or(|(_, b)| if *max { v > *b } else { v < *b });
                    if better {
                        items.clear();
                        items.push_back((t, v));
                    }
                    return;
                }
                // A value no better than a newer one can never be the extreme again.
                while items
                    .back()
                    .is_some_and(|(_, b)| if *max { *b <= v } else { *b >= v })
                {
                    items.pop_back();
                }
                items.push_back((t, v));
            }
            (State::Distinct { items, counts }, Item::Row(v)) => {
                if windowed {
                    items.push_back((t, v.clone()));
                }
                *counts.entry(v).or_insert(0) += 1;
            }
            (State::Last(last), Item::Row(v)) => *last = Some((t, v)),
            // The caller makes the item its aggregate reads.
            _ => {}
        }
    }

    /// Removes the events older than `lower`.
    pub(super) fn evict(&mut self, lower: i64) {
        match self {
            State::Count { times, total } => {
                while times.front().is_some_and(|t| *t < lower) {
                    times.pop_front();
                    *total -= 1;
                }
            }
            State::IntSum { items, sum, n } => {
                while let Some((_, x)) = items.front().filter(|(t, _)| *t < lower) {
                    *sum = sum.wrapping_sub(*x);
                    *n -= 1;
                    items.pop_front();
                }
            }
            State::Floats {
                front,
                back,
                back_total,
            } => loop {
                if front.is_empty() {
                    if back.is_empty() {
                        break;
                    }
                    // Flip: the newest goes in first, so the oldest ends on top.
                    let mut suffix = Moments::default();
                    for (t, x) in back.drain(..).rev() {
                        suffix = Moments::one(x).merge(suffix);
                        front.push((t, suffix));
                    }
                    *back_total = Moments::default();
                }
                match front.last() {
                    Some((t, _)) if *t < lower => {
                        front.pop();
                    }
                    _ => break,
                }
            },
            State::Extreme { items, .. } => {
                while items.front().is_some_and(|(t, _)| *t < lower) {
                    items.pop_front();
                }
            }
            State::Distinct { items, counts } => {
                while let Some((_, v)) = items.front().filter(|(t, _)| *t < lower) {
                    if let Some(c) = counts.get_mut(v) {
                        *c -= 1;
                        if *c == 0 {
                            counts.remove(v);
                        }
                    }
                    items.pop_front();
                }
            }
            State::Last(last) => {
                if last.as_ref().is_some_and(|(t, _)| *t < lower) {
                    *last = None;
                }
            }
        }
    }

    /// The number of events counted.
    pub(super) fn count(&self) -> i64 {
        match self {
            State::Count { total, .. } => *total,
            State::Distinct { counts, .. } => counts.len() as i64,
            _ => 0,
        }
    }

    /// The integer sum, none over no event.
    pub(super) fn int_sum(&self) -> Option<i64> {
        match self {
            State::IntSum { sum, n, .. } if *n > 0 => Some(*sum),
            _ => None,
        }
    }

    /// The moments of the numbers in the window.
    pub(super) fn moments(&self) -> Moments {
        match self {
            State::Floats {
                front, back_total, ..
            } => front
                .last()
                .map_or(Moments::default(), |(_, m)| *m)
                .merge(*back_total),
            _ => Moments::default(),
        }
    }

    /// The value kept: the extreme or the newest.
    pub(super) fn row(&self) -> Option<&OwnedRow> {
        match self {
            State::Extreme { items, .. } => items.front().map(|(_, v)| v),
            State::Last(last) => last.as_ref().map(|(_, v)| v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats() -> State {
        State::Floats {
            front: vec![],
            back: vec![],
            back_total: Moments::default(),
        }
    }

    #[test]
    fn an_infinity_leaving_the_window_leaves_no_nan() {
        let mut s = floats();
        s.push(true, 0, Item::Float(f64::INFINITY));
        s.push(true, 1, Item::Float(2.0));
        assert_eq!(s.moments().sum, f64::INFINITY);
        s.evict(1);
        s.push(true, 2, Item::Float(4.0));
        let m = s.moments();
        assert_eq!((m.n, m.sum), (2, 6.0));
        assert_eq!(m.stddev(), Some(2f64.sqrt()));
    }

    #[test]
    fn a_large_value_leaving_does_not_cancel_small_ones() {
        let mut s = floats();
        s.push(true, 0, Item::Float(1e20));
        s.push(true, 1, Item::Float(1.0));
        s.push(true, 2, Item::Float(2.0));
        s.evict(1);
        let m = s.moments();
        assert_eq!((m.n, m.sum), (2, 3.0));
        assert_eq!(m.stddev(), Some(0.5f64.sqrt()));
    }

    #[test]
    fn an_int_sum_wraps_and_unwraps_exactly() {
        let mut s = State::IntSum {
            items: VecDeque::new(),
            sum: 0,
            n: 0,
        };
        s.push(true, 0, Item::Int(i64::MAX));
        s.push(true, 1, Item::Int(5));
        s.evict(1);
        assert_eq!(s.int_sum(), Some(5));
        s.evict(2);
        assert_eq!(s.int_sum(), None);
    }
}
