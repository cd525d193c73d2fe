//! Window sums and means of floats that equal the exact sum of the frame's
//! values, correctly rounded.
//!
//! DataFusion slides a window frame by adding the rows that enter it and
//! subtracting the rows that leave it, so a float `sum` or `avg` over
//! `RANGE BETWEEN ... PRECEDING` keeps the rounding error of every value that
//! ever passed through: a frame holding one purchase of 16.99 reads
//! `16.989999999999995` after a 10.5 left it. Feature views are written that
//! way. Here `sum` and `avg` keep their behaviour everywhere except in sliding
//! frames over `DOUBLE`, where the running total is a list of non-overlapping
//! partial sums (Shewchuk's algorithm, as Python's `math.fsum`): adding and
//! subtracting are exact, so the result is the exactly rounded sum of the
//! values in the frame, whatever left it before.

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature,
};

/// `sum` and `avg` with exact sliding frames over floats, to register in place
/// of DataFusion's.
pub(crate) fn exact_window_aggregates() -> Vec<AggregateUDF> {
    [
        (datafusion::functions_aggregate::sum::sum_udaf(), What::Sum),
        (
            datafusion::functions_aggregate::average::avg_udaf(),
            What::Mean,
        ),
    ]
    .into_iter()
    .map(|(inner, what)| {
        AggregateUDF::new_from_impl(ExactSliding {
            inner: inner.as_ref().clone(),
            what,
        })
    })
    .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
enum What {
    #[default]
    Sum,
    Mean,
}

/// DataFusion's aggregate `inner`, with its sliding accumulator over floats
/// replaced.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactSliding {
    inner: AggregateUDF,
    what: What,
}

impl AggregateUDFImpl for ExactSliding {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let floats = !args.is_distinct
            && args.return_type() == &DataType::Float64
            && args
                .expr_fields
                .first()
                .is_some_and(|f| f.data_type() == &DataType::Float64);
        if floats {
            Ok(Box::new(ExactAccumulator {
                what: self.what,
                ..ExactAccumulator::default()
            }))
        } else {
            self.inner.create_sliding_accumulator(args)
        }
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        // Both are their own reverse; answering with `inner` would swap the
        // exact sliding accumulator back out of a reversed window.
        ReversedUDAF::Identical
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn value_from_stats(
        &self,
        statistics_args: &datafusion::logical_expr::StatisticsArgs,
    ) -> Option<ScalarValue> {
        self.inner.value_from_stats(statistics_args)
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }
}

/// The exact sum of a frame's values as non-overlapping partials (smallest
/// magnitude first), with the non-finite values counted apart.
#[derive(Debug, Default)]
struct ExactAccumulator {
    what: What,
    partials: Vec<f64>,
    /// Non-null values in the frame.
    count: u64,
    /// NaN, +∞ and -∞ values in the frame.
    nan: u64,
    inf: u64,
    neg_inf: u64,
}

impl ExactAccumulator {
    fn add(&mut self, value: f64, sign: f64) {
        if value.is_nan() {
            self.nan = step(self.nan, sign);
        } else if value == f64::INFINITY {
            self.inf = step(self.inf, sign);
        } else if value == f64::NEG_INFINITY {
            self.neg_inf = step(self.neg_inf, sign);
        } else {
            add_exact(&mut self.partials, sign * value);
        }
    }

    fn total(&self) -> f64 {
        match (self.nan > 0, self.inf > 0, self.neg_inf > 0) {
            (true, _, _) | (false, true, true) => f64::NAN,
            (false, true, false) => f64::INFINITY,
            (false, false, true) => f64::NEG_INFINITY,
            (false, false, false) => round(&self.partials),
        }
    }
}

fn step(count: u64, sign: f64) -> u64 {
    if sign > 0.0 {
        count + 1
    } else {
        count.saturating_sub(1)
    }
}

/// Adds `x` to the partials exactly (Shewchuk's grow-expansion).
fn add_exact(partials: &mut Vec<f64>, mut x: f64) {
    let mut kept = 0;
    for j in 0..partials.len() {
        let mut y = partials[j];
        if x.abs() < y.abs() {
            std::mem::swap(&mut x, &mut y);
        }
        let hi = x + y;
        let lo = y - (hi - x);
        if lo != 0.0 {
            partials[kept] = lo;
            kept += 1;
        }
        x = hi;
    }
    partials.truncate(kept);
    partials.push(x);
}

/// The partials' sum, correctly rounded (the last step of Python's `fsum`).
fn round(partials: &[f64]) -> f64 {
    let Some((&last, rest)) = partials.split_last() else {
        return 0.0;
    };
    let mut hi = last;
    let mut lo = 0.0;
    let mut k = rest.len();
    while k > 0 {
        k -= 1;
        let x = hi;
        let y = rest[k];
        hi = x + y;
        lo = y - (hi - x);
        if lo != 0.0 {
            break;
        }
    }
    // Round half to even across the partials below the break.
    if k > 0 && ((lo < 0.0 && rest[k - 1] < 0.0) || (lo > 0.0 && rest[k - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}

impl Accumulator for ExactAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.count += 1;
            self.add(v, 1.0);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.count = self.count.saturating_sub(1);
            self.add(v, -1.0);
        }
        if self.count == 0 {
            // Nothing is left in the frame: start from an exact zero.
            *self = ExactAccumulator {
                what: self.what,
                ..ExactAccumulator::default()
            };
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return Ok(ScalarValue::Float64(None));
        }
        let total = self.total();
        Ok(ScalarValue::Float64(Some(match self.what {
            What::Sum => total,
            What::Mean => total / self.count as f64,
        })))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // The shapes of DataFusion's own states (`sum`: the sum; `avg`: count
        // and sum), for a plan that would merge window partials.
        let total = (self.count > 0).then(|| self.total());
        Ok(match self.what {
            What::Sum => vec![ScalarValue::Float64(total)],
            What::Mean => vec![
                ScalarValue::UInt64(Some(self.count)),
                ScalarValue::Float64(total),
            ],
        })
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (counts, sums) = match self.what {
            What::Sum => (None, &states[0]),
            What::Mean => (Some(&states[0]), &states[1]),
        };
        for s in sums.as_primitive::<Float64Type>().iter().flatten() {
            self.add(s, 1.0);
            if counts.is_none() {
                self.count += 1;
            }
        }
        if let Some(c) = counts {
            self.count += c.as_primitive::<UInt64Type>().iter().flatten().sum::<u64>();
        }
        Ok(())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.partials.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(adds: &[f64], retracts: &[f64]) -> f64 {
        let mut a = ExactAccumulator::default();
        for v in adds {
            a.count += 1;
            a.add(*v, 1.0);
        }
        for v in retracts {
            a.count -= 1;
            a.add(*v, -1.0);
        }
        a.total()
    }

    #[test]
    fn a_frame_holding_one_value_sums_to_that_value() {
        // The naive running sum: 10.5 + 16.99 - 10.5 = 16.989999999999995 (or
        // close to it), which is what a feature view showed.
        assert_eq!(sum_of(&[10.5, 16.99], &[10.5]), 16.99);
        assert_eq!(sum_of(&[0.1, 0.2, 0.3], &[0.1]), 0.2 + 0.3);
        assert_eq!(sum_of(&[1e100, 1.0, -1e100], &[]), 1.0);
        assert_eq!(sum_of(&[0.1; 10], &[]), 1.0);
        assert!(sum_of(&[1.0, f64::NAN], &[]).is_nan());
        assert_eq!(sum_of(&[1.0, f64::INFINITY], &[f64::INFINITY]), 1.0);
    }
}
