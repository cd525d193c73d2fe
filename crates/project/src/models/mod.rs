//! `[models.NAME]` compiled: the task, the training set (spine, label, spine
//! columns and feature views), the learner and its parameters or an ONNX file,
//! the time split and when labels become known, the promotion thresholds, and
//! the batch predictions asset.
//!
//! What needs no data is checked here (words, parameters, thresholds, times);
//! names of assets are resolved with the rest of the DAG in `compile/refs.rs`, and
//! columns are checked against the data when the model is trained.
//!
//! `compile.rs` reads the section (the learner in `learner.rs`, the time split
//! in `split.rs`); the types here are what the runner trains.

mod compile;
mod learner;
mod split;
#[cfg(test)]
mod tests;

pub(crate) use compile::add;
pub use compile::compile_model;
pub use split::parse_time;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::raw::BoundsSection;

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Two classes; the score is the probability of the positive one (label 1 or true).
    Binary,
    /// A number.
    Regression,
}

impl Task {
    /// The word used in the project file.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Regression => "regression",
        }
    }

    /// The metrics a version of this task is measured by, in report order.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Task::Binary => &[
                Metric::Auc,
                Metric::LogLoss,
                Metric::Accuracy,
                Metric::Precision,
                Metric::Recall,
            ],
            Task::Regression => &[Metric::Rmse, Metric::Mae, Metric::R2],
        }
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::raw::closed_word(
            d,
            "task",
            &[Task::Binary, Task::Regression],
            Task::as_str,
            "",
        )
    }
}

/// A validation metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Area under the ROC curve (ties count half).
    Auc,
    /// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
    LogLoss,
    /// Share of rows whose predicted class (score >= threshold) is right.
    Accuracy,
    /// Share of predicted positives that are positive.
    Precision,
    /// Share of positives predicted positive.
    Recall,
    /// Root mean squared error.
    Rmse,
    /// Mean absolute error.
    Mae,
    /// Coefficient of determination.
    R2,
}

impl Metric {
    /// Whether a greater value is better (AUC) or worse (log loss).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Rmse | Metric::Mae)
    }

    /// The word used in the project file and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Auc => "auc",
            Metric::LogLoss => "log_loss",
            Metric::Accuracy => "accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    fn parse(word: &str) -> Option<Metric> {
        [
            Metric::Auc,
            Metric::LogLoss,
            Metric::Accuracy,
            Metric::Precision,
            Metric::Recall,
            Metric::Rmse,
            Metric::Mae,
            Metric::R2,
        ]
        .into_iter()
        .find(|m| m.as_str() == word)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Gradient-boosted trees (`learner = "gbdt"`), trained by forust (XGBoost's
/// algorithm). The defaults follow LightGBM's: 100 trees of up to 31 leaves
/// grown best-first, learning rate 0.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtParams {
    /// Number of trees.
    pub iterations: usize,
    /// Each tree's weight.
    pub learning_rate: f32,
    /// Most leaves per tree (grown best-first); 0 grows level by level to `max_depth`.
    pub max_leaves: usize,
    /// Deepest a tree may grow; 0 means no limit (with `max_leaves`).
    pub max_depth: usize,
    /// Least sum of hessians in a leaf.
    pub min_leaf_weight: f32,
    /// L1 regularization of leaf weights.
    pub l1: f32,
    /// L2 regularization of leaf weights.
    pub l2: f32,
    /// Least loss reduction to split.
    pub gamma: f32,
    /// Share of rows sampled per tree.
    pub subsample: f32,
    /// Share of columns sampled per tree.
    pub colsample: f64,
    /// Histogram bins per feature.
    pub bins: u16,
    /// Seed of the sampling.
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            iterations: 100,
            learning_rate: 0.1,
            max_leaves: 31,
            max_depth: 0,
            min_leaf_weight: 1e-3,
            l1: 0.0,
            l2: 0.0,
            gamma: 0.0,
            subsample: 1.0,
            colsample: 1.0,
            bins: 255,
            seed: 0,
        }
    }
}

/// Logistic regression (`learner = "logistic"`, binary): L-BFGS (argmin's) on
/// the standardized features with an L2 penalty, as scikit-learn's `lbfgs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogisticParams {
    /// Strength of the L2 penalty (scikit-learn's `1 / C`).
    pub alpha: f64,
    /// Most solver iterations.
    pub max_iterations: u64,
    /// Most categories one-hot encoded per text column (the most frequent; the
    /// rest, and unseen ones, are all zeros).
    pub max_categories: usize,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_iterations: 100,
            max_categories: 50,
        }
    }
}

/// Ordinary least squares (`learner = "linear"`, regression), by linfa, on the
/// standardized features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearParams {
    /// Most categories one-hot encoded per text column.
    pub max_categories: usize,
}

impl Default for LinearParams {
    fn default() -> Self {
        Self { max_categories: 50 }
    }
}

/// How a model is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    /// Gradient-boosted trees.
    Gbdt(GbdtParams),
    /// Logistic regression.
    Logistic(LogisticParams),
    /// Linear regression.
    Linear(LinearParams),
    /// Imported: an ONNX file, run by ONNX Runtime.
    Onnx {
        /// The file.
        path: PathBuf,
        /// The training-set columns fed to the model, in order.
        inputs: Vec<String>,
        /// The output holding the score, if not the default.
        output: Option<String>,
    },
}

impl Learner {
    /// The word used in the project file.
    pub fn as_str(&self) -> &'static str {
        match self {
            Learner::Gbdt(_) => "gbdt",
            Learner::Logistic(_) => "logistic",
            Learner::Linear(_) => "linear",
            Learner::Onnx { .. } => "onnx",
        }
    }
}

/// Which rows of the training set validate the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Rows at or after this time (microseconds since the epoch, UTC) validate.
    Before(i64),
    /// The last share of the time span validates.
    Last(f64),
}

/// When a training row's label became known. A label such as "buys again
/// within 90 days" is not known until 90 days after its row: a model trained at
/// time `T` may learn only from rows whose label was known at `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelHorizon {
    /// This many microseconds after the row's time (`label_delay`).
    Delay(i64),
    /// At the time in this spine column (`label_available`); a row without
    /// one is taken as not yet known.
    Column(String),
}

/// A compiled model.
#[derive(Debug, Clone)]
pub struct ModelDef {
    /// What it predicts.
    pub task: Task,
    /// The asset holding the examples.
    pub spine: Option<String>,
    /// The spine's time column, if given.
    pub timestamp: Option<String>,
    /// The spine's label column.
    pub label: Option<String>,
    /// Spine columns used as features.
    pub columns: Vec<String>,
    /// `VIEW` or `VIEW:feature`, in order.
    pub features: Vec<String>,
    /// How the model is made.
    pub learner: Learner,
    /// The validation rows.
    pub split: Split,
    /// When a row's label became known, if not at the row's time: training
    /// (and each backtest retrain) leaves out the rows whose label was not yet
    /// known when validation (the period) starts. Validation rows are judged
    /// after the fact and are all kept.
    pub label_horizon: Option<LabelHorizon>,
    /// `binary`: the score from which a row is predicted positive.
    pub threshold: f64,
    /// Online predictions with an input nobody gave are refused (not scored as
    /// missing).
    pub require_inputs: bool,
    /// Metric bounds a version must meet to be promoted.
    pub promote: Vec<(Metric, BoundsSection)>,
    /// A version is promoted only when it is not worse than the serving one on
    /// the bounded metrics (the task's first metric when none is bounded).
    pub better_than_serving: bool,
    /// The batch predictions asset, if any.
    pub predictions: Option<String>,
}

impl ModelDef {
    /// The feature views the model reads, each once, in order.
    pub fn views(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.features {
            let view = f.split_once(':').map_or(f.as_str(), |(v, _)| v).trim();
            if !out.iter().any(|v| v == view) {
                out.push(view.to_string());
            }
        }
        out
    }

    /// The assets a training run reads: the spine, then the views.
    pub fn inputs(&self) -> Vec<String> {
        let mut out: Vec<String> = self.spine.iter().cloned().collect();
        for v in self.views() {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }
}

/// A compiled batch predictions asset: a model's scores for a spine's rows.
#[derive(Debug, Clone)]
pub struct PredictionsDef {
    /// The model.
    pub model: String,
    /// The asset whose rows are scored.
    pub spine: String,
    /// The columns that key a prediction online.
    pub entity: Vec<String>,
    /// The spine's time column, if given.
    pub timestamp: Option<String>,
}

/// The name of a model's batch predictions asset.
pub fn predictions_name(model: &str) -> String {
    format!("{model}_predictions")
}
