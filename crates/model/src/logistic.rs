//! Logistic regression: scikit-learn's objective (the mean log-loss plus an L2
//! penalty `alpha / (2n) · |w|²`, the intercept unpenalized) minimized by
//! argmin's L-BFGS with a Moré–Thuente line search, stopping where
//! scikit-learn's `lbfgs` does, after at most `max_iterations`: the gradient
//! below `1e-4` (argmin measures its length, a little stricter than SciPy's
//! largest component) or the mean loss falling by less than `64 ε`.
//!
//! The loss and its gradient are one pass over the column-major matrix, in
//! blocks of rows spread over the cores. Each block's partial sums are added in
//! block order, so the fit is the same on any number of cores.
//!
//! linfa-logistic (which this replaces) summed instead of averaging, so its
//! gradient tolerance never stopped a fit over many rows before the last
//! iteration, and it multiplied the whole matrix through `matrixmultiply`,
//! packing it again for every product.

use std::sync::Mutex;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use sluice_project::models::LogisticParams;

use crate::encode::Matrix;
use crate::linear::Coefficients;
use crate::{Error, Result};

/// Rows per block of the loss pass: small enough that a block's scores stay
/// in cache while every column is added in, and fixed, so that the sums do
/// not depend on the number of cores.
const BLOCK: usize = 4096;

/// scikit-learn's `tol` for `lbfgs`.
const GRADIENT_TOLERANCE: f64 = 1e-4;

/// History kept by L-BFGS (scikit-learn's, through SciPy: 10).
const HISTORY: usize = 10;

/// Fits a logistic regression to 0/1 labels.
pub(crate) fn fit_logistic(params: &LogisticParams, x: &Matrix, y: &[f64]) -> Result<Coefficients> {
    let problem = Problem::new(x, y, params.alpha);
    let fail = |e: argmin::core::Error| Error::Fit {
        learner: "logistic",
        source: e.into(),
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), HISTORY)
        .with_tolerance_grad(GRADIENT_TOLERANCE)
        .and_then(|s| s.with_tolerance_cost(64.0 * f64::EPSILON))
        .map_err(fail)?;
    let start = vec![0.0; x.cols + 1];
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(start).max_iters(params.max_iterations))
        .run()
        .map_err(fail)?;
    let mut theta = result
        .state()
        .get_best_param()
        .cloned()
        .ok_or_else(|| Error::Fit {
            learner: "logistic",
            source: "the solver returned no parameters".into(),
        })?;
    let intercept = theta.pop().unwrap_or_default();
    Ok(Coefficients {
        intercept,
        weights: theta,
        logistic: true,
    })
}

/// A point (weights, then the intercept), the loss there and its gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The objective over one training matrix. argmin asks for the loss and the
/// gradient at the same point separately; both come from one pass, and the
/// last point's pair is kept for the second question.
struct Problem<'a> {
    x: &'a Matrix,
    y: &'a [f64],
    alpha: f64,
    threads: usize,
    last: Mutex<Option<Evaluated>>,
}

impl<'a> Problem<'a> {
    fn new(x: &'a Matrix, y: &'a [f64], alpha: f64) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            x,
            y,
            alpha,
            threads,
            last: Mutex::new(None),
        }
    }

    /// The loss and gradient at `theta` (weights, then the intercept).
    fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, loss, gradient)) = last.as_ref()
            && at.as_slice() == theta
        {
            return (*loss, gradient.clone());
        }
        let (loss, gradient) = self.pass(theta);
        *last = Some((theta.to_vec(), loss, gradient.clone()));
        (loss, gradient)
    }

    fn pass(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let rows = self.x.rows;
        let cols = self.x.cols;
        let blocks = rows.div_ceil(BLOCK);
        // Per block: the log-loss sum, then the gradient's sums (weights, intercept).
        let mut partials = vec![vec![0.0; cols + 2]; blocks];
        let per_thread = blocks.div_ceil(self.threads.max(1)).max(1);
        std::thread::scope(|scope| {
            for (t, chunk) in partials.chunks_mut(per_thread).enumerate() {
                scope.spawn(move || {
                    let mut z = vec![0.0; BLOCK];
                    for (k, partial) in chunk.iter_mut().enumerate() {
                        let start = (t * per_thread + k) * BLOCK;
                        let end = (start + BLOCK).min(rows);
                        self.block(theta, start, end, &mut z[..end - start], partial);
                    }
                });
            }
        });
        let n = rows.max(1) as f64;
        let mut total = vec![0.0; cols + 2];
        for partial in &partials {
            for (s, p) in total.iter_mut().zip(partial) {
                *s += p;
            }
        }
        let weights = &theta[..cols];
        let penalty: f64 = weights.iter().map(|w| w * w).sum();
        let loss = total[0] / n + 0.5 * self.alpha / n * penalty;
        let mut gradient: Vec<f64> = total[1..].iter().map(|g| g / n).collect();
        for (g, w) in gradient.iter_mut().zip(weights) {
            *g += self.alpha / n * w;
        }
        (loss, gradient)
    }

    /// Adds rows `start..end` into `partial`: the log-loss, then the
    /// gradient's sums.
    fn block(&self, theta: &[f64], start: usize, end: usize, z: &mut [f64], partial: &mut [f64]) {
        let rows = self.x.rows;
        let cols = self.x.cols;
        z.fill(theta[cols]);
        for (c, w) in theta[..cols].iter().enumerate() {
            let column = &self.x.data[c * rows + start..c * rows + end];
            for (zi, v) in z.iter_mut().zip(column) {
                *zi += w * v;
            }
        }
        let mut loss = 0.0;
        let mut residual_sum = 0.0;
        for (zi, yi) in z.iter_mut().zip(&self.y[start..end]) {
            // log(1 + e^z) − y·z, without overflow for large |z|.
            let softplus = if *zi > 0.0 {
                *zi + (-*zi).exp().ln_1p()
            } else {
                zi.exp().ln_1p()
            };
            loss += softplus - yi * *zi;
            // The residual σ(z) − y replaces z.
            *zi = crate::gbdt::sigmoid(*zi) - yi;
            residual_sum += *zi;
        }
        partial[0] += loss;
        for c in 0..cols {
            let column = &self.x.data[c * rows + start..c * rows + end];
            partial[1 + c] += column.iter().zip(z.iter()).map(|(v, r)| v * r).sum::<f64>();
        }
        partial[1 + cols] += residual_sum;
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.evaluate(theta).0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(theta).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(columns: &[Vec<f64>]) -> Matrix {
        Matrix {
            rows: columns[0].len(),
            cols: columns.len(),
            data: columns.concat(),
        }
    }

    #[test]
    fn the_gradient_is_the_loss_slope() {
        let a: Vec<f64> = (0..9000)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let b: Vec<f64> = (0..9000).map(|i| ((i * 11) % 7) as f64 - 3.0).collect();
        let y: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(a, b)| f64::from(u8::from(a + 0.3 * b > 0.1)))
            .collect();
        let x = matrix(&[a, b]);
        let problem = Problem::new(&x, &y, 1.0);
        let theta = vec![0.4, -0.2, 0.1];
        let (_, gradient) = problem.pass(&theta);
        for i in 0..theta.len() {
            let h = 1e-6;
            let mut up = theta.clone();
            up[i] += h;
            let mut down = theta.clone();
            down[i] -= h;
            let slope = (problem.pass(&up).0 - problem.pass(&down).0) / (2.0 * h);
            assert!(
                (slope - gradient[i]).abs() < 1e-7,
                "{i}: {slope} vs {}",
                gradient[i]
            );
        }
    }

    #[test]
    fn any_number_of_threads_gives_the_same_fit() {
        let a: Vec<f64> = (0..20_000)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let y: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, a)| f64::from(u8::from(*a > 0.0 || i % 5 == 0)))
            .collect();
        let x = matrix(&[a]);
        let mut one = Problem::new(&x, &y, 1.0);
        one.threads = 1;
        let mut three = Problem::new(&x, &y, 1.0);
        three.threads = 3;
        let theta = vec![1.5, -0.5];
        assert_eq!(one.pass(&theta), three.pass(&theta));
    }

    #[test]
    fn it_finds_the_separating_direction_and_stops_early() {
        let a: Vec<f64> = (0..5000)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let noise: Vec<f64> = (0..5000)
            .map(|i| ((i * 13) % 17) as f64 / 8.0 - 1.0)
            .collect();
        let y: Vec<f64> = a
            .iter()
            .zip(&noise)
            .map(|(a, n)| f64::from(u8::from(a + 0.5 * n > 0.0)))
            .collect();
        let x = matrix(&[a, noise]);
        let fitted = fit_logistic(&LogisticParams::default(), &x, &y).unwrap();
        assert!(
            fitted.weights[0] > 0.0 && fitted.weights[1] > 0.0,
            "{fitted:?}"
        );
        assert!(fitted.weights[0] > fitted.weights[1], "{fitted:?}");
        // At the optimum the gradient is (near) zero.
        let mut theta = fitted.weights.clone();
        theta.push(fitted.intercept);
        let (_, gradient) = Problem::new(&x, &y, 1.0).pass(&theta);
        assert!(gradient.iter().all(|g| g.abs() < 1e-3), "{gradient:?}");
    }
}
