//! Linear models on standardized features: ordinary least squares (by
//! linfa-linear) here, logistic regression in [`crate::logistic`]. Only the
//! coefficients are kept: prediction is one dot product, the same in batch
//! and online.

use linfa::prelude::*;
use linfa_linear::LinearRegression;
use ndarray::{Array1, Array2, ShapeBuilder};
use serde::{Deserialize, Serialize};

use crate::encode::Matrix;
use crate::gbdt::sigmoid;
use crate::{Error, Result};

/// A fitted linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// The constant term.
    pub intercept: f64,
    /// One weight per encoded column.
    pub weights: Vec<f64>,
    /// Whether the score is the logistic function of the linear term.
    pub logistic: bool,
}

fn array(x: &Matrix) -> Result<Array2<f64>> {
    // The matrix is column-major: Fortran order.
    Array2::from_shape_vec((x.rows, x.cols).f(), x.data.clone()).map_err(|e| Error::Fit {
        learner: "linear",
        source: Box::new(e),
    })
}

/// Fits ordinary least squares.
pub(crate) fn fit_linear(x: &Matrix, y: &[f64]) -> Result<Coefficients> {
    let dataset = Dataset::new(array(x)?, Array1::from(y.to_vec()));
    let fitted = LinearRegression::new()
        .fit(&dataset)
        .map_err(|e| Error::Fit {
            learner: "linear",
            source: Box::new(e),
        })?;
    Ok(Coefficients {
        intercept: fitted.intercept(),
        weights: fitted.params().to_vec(),
        logistic: false,
    })
}

impl Coefficients {
    /// Scores of the rows of `x`.
    pub(crate) fn predict(&self, x: &Matrix) -> Vec<f64> {
        let mut out = vec![self.intercept; x.rows];
        for (c, w) in self.weights.iter().enumerate() {
            let column = &x.data[c * x.rows..(c + 1) * x.rows];
            for (o, v) in out.iter_mut().zip(column) {
                *o += w * v;
            }
        }
        if self.logistic {
            out.iter_mut().for_each(|o| *o = sigmoid(*o));
        }
        out
    }

    /// |weight| per encoded column (the features are standardized, so weights
    /// compare), normalized to sum to 1.
    pub(crate) fn importance(&self) -> Vec<f64> {
        let total: f64 = self.weights.iter().map(|w| w.abs()).sum();
        self.weights
            .iter()
            .map(|w| if total > 0.0 { w.abs() / total } else { 0.0 })
            .collect()
    }
}
