//! Gradient-boosted trees, trained by `forust-ml` (XGBoost's algorithm, pure
//! Rust). Its raw prediction is the log-odds for a binary task (turned into a
//! probability here) and the value for a regression.

use forust_ml::gradientbooster::{GrowPolicy, ImportanceMethod};
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix as ForustMatrix};
use sluice_project::Task;
use sluice_project::models::GbdtParams;

use crate::encode::Matrix;
use crate::{Error, Result};

/// Fits a booster on an encoded matrix.
pub(crate) fn fit(
    params: &GbdtParams,
    task: Task,
    x: &Matrix,
    y: &[f64],
) -> Result<GradientBooster> {
    let fit_error = |e: forust_ml::errors::ForustError| Error::Fit {
        learner: "gbdt",
        source: Box::new(e),
    };
    let objective = match task {
        Task::Binary => ObjectiveType::LogLoss,
        Task::Regression => ObjectiveType::SquaredLoss,
    };
    let mut booster = GradientBooster::default()
        .set_objective_type(objective)
        .set_iterations(params.iterations)
        .set_learning_rate(params.learning_rate)
        .set_max_depth(if params.max_depth == 0 {
            usize::MAX
        } else {
            params.max_depth
        })
        .set_max_leaves(if params.max_leaves == 0 {
            usize::MAX
        } else {
            params.max_leaves
        })
        .set_min_leaf_weight(params.min_leaf_weight)
        .set_l1(params.l1)
        .set_l2(params.l2)
        .set_gamma(params.gamma)
        .set_subsample(params.subsample)
        .set_colsample_bytree(params.colsample)
        .set_nbins(params.bins)
        .set_seed(params.seed)
        // Start from the mean label (LightGBM's boost_from_average).
        .set_initialize_base_score(true)
        // Histograms filled row by row from a tiled copy of the bins (as
        // LightGBM's row-wise mode does) where a node is big enough, instead
        // of a column at a time: the fill was 40% of a fit.
        .set_tiled_histograms(true)
        .set_parallel(true);
    booster.grow_policy = if params.max_leaves > 0 {
        GrowPolicy::LossGuide
    } else {
        GrowPolicy::DepthWise
    };
    let data = ForustMatrix::new(&x.data, x.rows, x.cols);
    booster.fit_unweighted(&data, y, None).map_err(fit_error)?;
    Ok(booster)
}

/// Scores: probabilities for a binary task, values for a regression.
pub(crate) fn predict(booster: &GradientBooster, task: Task, x: &Matrix) -> Vec<f64> {
    let data = ForustMatrix::new(&x.data, x.rows, x.cols);
    // Parallel prediction only pays off beyond a few thousand rows; one row
    // (an online request) stays on the caller's thread.
    let raw = booster.predict(&data, x.rows > 4096);
    match task {
        Task::Binary => raw.into_iter().map(sigmoid).collect(),
        Task::Regression => raw,
    }
}

/// Total gain per encoded column, normalized to sum to 1.
pub(crate) fn importance(booster: &GradientBooster, cols: usize) -> Vec<f64> {
    let by_column = booster.calculate_feature_importance(ImportanceMethod::TotalGain, true);
    (0..cols)
        .map(|c| by_column.get(&c).map_or(0.0, |v| f64::from(*v)))
        .collect()
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
