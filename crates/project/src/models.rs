//! `[models.NAME]` compiled: the task, the training set (spine, label, spine
//! columns and feature views), the learner and its parameters or an ONNX file,
//! the time split, the promotion thresholds, and the batch predictions asset.
//!
//! What needs no data is checked here (words, parameters, thresholds, times);
//! names of assets are resolved with the rest of the DAG in `compile.rs`, and
//! columns are checked against the data when the model is trained.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sluice_core::Location;
use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::{BoundsSection, ModelSection};

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Logistic regression (`learner = "logistic"`, binary), by linfa: L-BFGS on the
/// standardized features with an L2 penalty.
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
    /// `binary`: the score from which a row is predicted positive.
    pub threshold: f64,
    /// Metric bounds a version must meet to be promoted.
    pub promote: Vec<(Metric, BoundsSection)>,
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

fn at<T>(raw: &RawProject, s: &Spanned<T>) -> Location {
    raw.location(s.span().start)
}

/// Compiles one `[models.NAME]`; `None` after reporting what is wrong.
pub fn compile_model(
    raw: &RawProject,
    name: &str,
    section: &ModelSection,
    location: &Location,
    diags: &mut Diagnostics,
) -> Option<(ModelDef, Option<PredictionsDef>)> {
    let before = diags.len();
    let task = match section.task.as_ref().map(|t| (t.get_ref().as_str(), t)) {
        None | Some(("binary", _)) => Task::Binary,
        Some(("regression", _)) => Task::Regression,
        Some((other, t)) => {
            diags.push(
                Diagnostic::new(at(raw, t), format!("unknown task `{other}`"))
                    .with_help("write `task = \"binary\"` or `task = \"regression\"`"),
            );
            Task::Binary
        }
    };
    let learner = compile_learner(raw, section, task, location, diags);
    let onnx = matches!(learner, Some(Learner::Onnx { .. }));
    if section.spine.is_none() && !onnx {
        diags.push(
            Diagnostic::new(location.clone(), format!("model `{name}` needs a spine to train on"))
                .with_help("add `spine = \"ASSET\"`: an asset with the entity keys, a time per row and the label"),
        );
    }
    if section.spine.is_some() && section.label.is_none() {
        diags.push(
            Diagnostic::new(location.clone(), format!("model `{name}` needs a `label`")).with_help(
                "add `label = \"COLUMN\"`: the spine's column the model learns to predict",
            ),
        );
    }
    if section.columns.is_empty() && section.features.is_empty() && !onnx {
        diags.push(
            Diagnostic::new(location.clone(), format!("model `{name}` has no features"))
                .with_help("add `features = [\"VIEW\", \"VIEW:feature\"]` and/or `columns = [\"SPINE_COLUMN\"]`"),
        );
    }
    for f in &section.features {
        let text = f.get_ref();
        let (view, feature) = match text.split_once(':') {
            Some((v, f)) => (v.trim(), Some(f.trim())),
            None => (text.trim(), None),
        };
        if view.is_empty() || feature.is_some_and(str::is_empty) {
            diags.push(
                Diagnostic::new(at(raw, f), format!("`{text}` names no feature"))
                    .with_help("write `VIEW` for every feature of a view, or `VIEW:feature`"),
            );
        }
    }
    if let Some(label) = &section.label
        && section.spine.is_some()
        && section
            .columns
            .iter()
            .any(|c| c.get_ref() == label.get_ref())
    {
        diags.push(
            Diagnostic::new(
                at(raw, label),
                format!("the label `{}` is also a feature column", label.get_ref()),
            )
            .with_help("remove it from `columns`: a model must not read its own answer"),
        );
    }
    let split = compile_split(raw, section, diags);
    let threshold = section.threshold.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&threshold) || task == Task::Regression && section.threshold.is_some()
    {
        diags.push(
            Diagnostic::new(
                location.clone(),
                "`threshold` is a probability of a binary model",
            )
            .with_help("give a number between 0 and 1, and only for `task = \"binary\"`"),
        );
    }
    let mut promote = Vec::new();
    for (metric, bounds) in &section.promote {
        let b = *bounds.get_ref();
        match Metric::parse(metric) {
            Some(m) if task.metrics().contains(&m) => {
                if b.min.is_none() && b.max.is_none() {
                    diags.push(
                        Diagnostic::new(at(raw, bounds), format!("`{metric}` has no bound"))
                            .with_help("write `{ min = ... }`, `{ max = ... }` or both"),
                    );
                } else if let (Some(lo), Some(hi)) = (b.min, b.max)
                    && lo > hi
                {
                    diags.push(Diagnostic::new(
                        at(raw, bounds),
                        format!("`{metric}`: min {lo} is greater than max {hi}"),
                    ));
                }
                promote.push((m, b));
            }
            _ => diags.push(
                Diagnostic::new(
                    at(raw, bounds),
                    format!("`{metric}` is not a metric of a {} model", task.as_str()),
                )
                .with_help(format!(
                    "the metrics are: {}",
                    task.metrics()
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
        }
    }
    if !promote.is_empty() && section.spine.is_none() {
        diags.push(
            Diagnostic::new(
                location.clone(),
                "`promote` needs metrics, and metrics need a spine",
            )
            .with_help("add `spine` and `label`, or remove `promote`"),
        );
    }
    let predictions = section.predictions.as_ref().map(|p| {
        let entity = p.get_ref().entity.get_ref().to_vec();
        if entity.is_empty() || entity.iter().any(String::is_empty) {
            diags.push(Diagnostic::new(
                at(raw, &p.get_ref().entity),
                "`entity` names no column",
            ));
        }
        PredictionsDef {
            model: name.to_string(),
            spine: p.get_ref().spine.get_ref().clone(),
            entity,
            timestamp: p.get_ref().timestamp.clone(),
        }
    });
    if diags.len() > before {
        return None;
    }
    let def = ModelDef {
        task,
        spine: section.spine.as_ref().map(|s| s.get_ref().clone()),
        timestamp: section.timestamp.as_ref().map(|s| s.get_ref().clone()),
        label: section.label.as_ref().map(|s| s.get_ref().clone()),
        columns: section
            .columns
            .iter()
            .map(|c| c.get_ref().clone())
            .collect(),
        features: section
            .features
            .iter()
            .map(|f| f.get_ref().trim().to_string())
            .collect(),
        learner: learner?,
        split,
        threshold,
        promote,
        predictions: predictions.as_ref().map(|_| predictions_name(name)),
    };
    Some((def, predictions))
}

fn compile_learner(
    raw: &RawProject,
    section: &ModelSection,
    task: Task,
    location: &Location,
    diags: &mut Diagnostics,
) -> Option<Learner> {
    let params = section
        .params
        .as_ref()
        .map(|p| (toml::Value::Table(p.get_ref().clone()), at(raw, p)));
    let bad_params = |e: toml::de::Error, word: &str, diags: &mut Diagnostics| {
        let place = params
            .as_ref()
            .map_or_else(|| location.clone(), |(_, l)| l.clone());
        diags.push(
            Diagnostic::new(
                place,
                format!("params of learner `{word}`: {}", e.message().trim_end()),
            )
            .with_help("see the README for each learner's parameters"),
        );
    };
    if let Some(path) = &section.onnx {
        if section.learner.is_some() || section.params.is_some() {
            diags.push(
                Diagnostic::new(at(raw, path), "an ONNX model is not trained here")
                    .with_help("remove `learner` and `params`, or remove `onnx`"),
            );
            return None;
        }
        let file = raw.dir.join(path.get_ref());
        if !file.is_file() {
            diags.push(
                Diagnostic::new(at(raw, path), format!("no file `{}`", path.get_ref()))
                    .with_help("the path is relative to the project folder"),
            );
            return None;
        }
        let Some(inputs) = &section.inputs else {
            diags.push(
                Diagnostic::new(at(raw, path), "an ONNX model needs its input columns in order")
                    .with_help("add `inputs = [\"col1\", \"col2\", ...]`: spine columns and features, as the model was trained on them"),
            );
            return None;
        };
        if inputs.get_ref().is_empty() {
            diags.push(Diagnostic::new(at(raw, inputs), "`inputs` is empty"));
            return None;
        }
        return Some(Learner::Onnx {
            path: file,
            inputs: inputs.get_ref().clone(),
            output: section.output.clone(),
        });
    }
    if let Some(i) = &section.inputs {
        diags.push(
            Diagnostic::new(at(raw, i), "`inputs` applies to ONNX models only")
                .with_help("a trained model reads `columns` and `features`"),
        );
    }
    if section.output.is_some() {
        diags.push(Diagnostic::new(
            location.clone(),
            "`output` applies to ONNX models only",
        ));
    }
    let word = section
        .learner
        .as_ref()
        .map_or("gbdt", |l| l.get_ref().as_str());
    let learner_at = section
        .learner
        .as_ref()
        .map_or_else(|| location.clone(), |l| at(raw, l));
    let value = params.as_ref().map_or_else(
        || toml::Value::Table(toml::Table::new()),
        |(v, _)| v.clone(),
    );
    match (word, task) {
        ("gbdt", _) => match value.try_into::<GbdtParams>() {
            Ok(p) => {
                if p.iterations == 0 || p.learning_rate <= 0.0 || p.bins < 2 {
                    diags.push(Diagnostic::new(
                        learner_at,
                        "gbdt needs iterations >= 1, learning_rate > 0 and bins >= 2",
                    ));
                    return None;
                }
                if p.max_leaves == 0 && p.max_depth == 0 {
                    diags.push(Diagnostic::new(
                        learner_at,
                        "gbdt needs `max_leaves` or `max_depth` above 0",
                    ));
                    return None;
                }
                let share = |x: f64| x > 0.0 && x <= 1.0;
                if !share(f64::from(p.subsample)) || !share(p.colsample) {
                    diags.push(Diagnostic::new(
                        learner_at,
                        "gbdt: `subsample` and `colsample` are shares in (0, 1]",
                    ));
                    return None;
                }
                Some(Learner::Gbdt(p))
            }
            Err(e) => {
                bad_params(e, word, diags);
                None
            }
        },
        ("logistic", Task::Binary) => match value.try_into::<LogisticParams>() {
            Ok(p) if p.alpha >= 0.0 && p.max_iterations > 0 => Some(Learner::Logistic(p)),
            Ok(_) => {
                diags.push(Diagnostic::new(
                    learner_at,
                    "logistic needs alpha >= 0 and max_iterations >= 1",
                ));
                None
            }
            Err(e) => {
                bad_params(e, word, diags);
                None
            }
        },
        ("linear", Task::Regression) => match value.try_into::<LinearParams>() {
            Ok(p) => Some(Learner::Linear(p)),
            Err(e) => {
                bad_params(e, word, diags);
                None
            }
        },
        ("logistic", Task::Regression) | ("linear", Task::Binary) => {
            diags.push(
                Diagnostic::new(
                    learner_at,
                    format!("learner `{word}` does not fit a {} task", task.as_str()),
                )
                .with_help(
                    "use `logistic` (or `gbdt`) for binary, `linear` (or `gbdt`) for regression",
                ),
            );
            None
        }
        (other, _) => {
            diags.push(
                Diagnostic::new(learner_at, format!("unknown learner `{other}`"))
                    .with_help("write `learner = \"gbdt\"`, `\"logistic\"` or `\"linear\"`, or import a model with `onnx = \"FILE\"`"),
            );
            None
        }
    }
}

fn compile_split(raw: &RawProject, section: &ModelSection, diags: &mut Diagnostics) -> Split {
    let default = Split::Last(0.2);
    let Some(split) = &section.split else {
        return default;
    };
    let place = at(raw, split);
    let s = split.get_ref();
    match (&s.before, &s.last) {
        (Some(t), None) => match parse_time(t) {
            Some(micros) => Split::Before(micros),
            None => {
                diags.push(
                    Diagnostic::new(place, format!("split: `{t}` is not a time")).with_help(
                        "write a date (`2013-10-01`) or an RFC 3339 time (`2013-10-01T00:00:00Z`)",
                    ),
                );
                default
            }
        },
        (None, Some(last)) => {
            let share = match last {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::String(s) => s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
                _ => None,
            };
            match share {
                Some(x) if x > 0.0 && x < 1.0 => Split::Last(x),
                _ => {
                    diags.push(
                        Diagnostic::new(
                            place,
                            format!("split: `last = {last}` is not a share of the time span"),
                        )
                        .with_help(
                            "write `last = \"20%\"` or `last = 0.2` (strictly between 0 and 1)",
                        ),
                    );
                    default
                }
            }
        }
        _ => {
            diags.push(
                Diagnostic::new(place, "split needs exactly one of `before` and `last`").with_help(
                    "write `split = { before = \"2013-10-01\" }` or `split = { last = \"20%\" }`",
                ),
            );
            default
        }
    }
}

/// A date (`2013-10-01`, midnight UTC) or an RFC 3339 time, as microseconds since
/// the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_dates_or_rfc3339() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn default_gbdt_params_follow_lightgbm() {
        let p: GbdtParams = toml::Value::Table(toml::Table::new())
            .try_into()
            .expect("empty table");
        assert_eq!(p, GbdtParams::default());
        assert_eq!((p.iterations, p.max_leaves), (100, 31));
        let bad = toml::Value::Table(toml::from_str("iteratons = 3").expect("toml"))
            .try_into::<GbdtParams>()
            .expect_err("typo");
        assert!(bad.to_string().contains("iteratons"), "{bad}");
    }
}
