//! `[models.NAME]`: a model, its learner and parameters, its split, promotion and predictions.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::*;

/// One entry of `promote`: a metric's bounds, or the flag `better_than_serving`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum PromoteEntry {
    /// `{ min = ..., max = ... }`.
    Bounds(BoundsSection),
    /// `true` or `false`.
    Flag(bool),
}

impl<'de> Deserialize<'de> for PromoteEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = PromoteEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "bounds such as `{ min = 0.7 }`, or `true`/`false` for `better_than_serving`",
                )
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<PromoteEntry, E> {
                Ok(PromoteEntry::Flag(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PromoteEntry, A::Error> {
                // Through the struct, so that a misspelt bound is named.
                BoundsSection::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(PromoteEntry::Bounds)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// `[models.NAME]`: a model trained on a point-in-time correct training set (a
/// spine with a label, joined with feature views), or imported from ONNX.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `binary` (classification; the score is the probability of the positive
    /// class) or `regression`. Default: `binary`.
    #[serde(default)]
    pub task: Option<Spanned<crate::models::Task>>,
    /// The asset whose rows are the examples: entity keys, a time per row and the
    /// label. Required to train; optional for an ONNX model (then no metrics).
    #[serde(default)]
    pub spine: Option<Spanned<String>>,
    /// The spine's time column: each row's features are taken as of it. Default:
    /// the spine's only timestamp or date column.
    #[serde(default)]
    pub timestamp: Option<Spanned<String>>,
    /// The spine's label column: 0/1 or a boolean for `binary`, a number for
    /// `regression`.
    #[serde(default)]
    pub label: Option<Spanned<String>>,
    /// How long after its row's time a label becomes known (`"90d"`: "buys
    /// again within 90 days"). A training row whose label was not yet known
    /// when validation starts (or when a backtest period starts) is held out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_delay: Option<Spanned<String>>,
    /// Instead of `label_delay`: the spine's column holding when each row's
    /// label became known (a time; a row without one is held out of training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_available: Option<Spanned<String>>,
    /// Spine columns used as features, as they are (text columns are categories).
    #[serde(default)]
    pub columns: Vec<Spanned<String>>,
    /// Feature views (`VIEW`, every feature) or single features (`VIEW:feature`)
    /// joined onto the spine point-in-time correctly.
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    /// `gbdt` (gradient-boosted trees), `logistic` (binary) or `linear`
    /// (regression). Default: `gbdt`.
    #[serde(default)]
    pub learner: Option<Spanned<LearnerKind>>,
    /// The learner's parameters, read by its typed struct
    /// ([`crate::models::GbdtParams`], ...); see the README for their names and
    /// defaults.
    #[serde(default)]
    pub params: Option<Spanned<ParamsSection>>,
    /// An ONNX model file to import instead of training, relative to the project.
    #[serde(default)]
    pub onnx: Option<Spanned<String>>,
    /// ONNX: the model's input columns in order (spine columns and features, by
    /// their names in the training set).
    #[serde(default)]
    pub inputs: Option<Spanned<Vec<String>>>,
    /// ONNX: the output holding the score. Default: `probabilities` (its positive
    /// column) for `binary`, else the first output.
    #[serde(default)]
    pub output: Option<String>,
    /// Which rows validate the model: `{ before = "2013-10-01" }` (train before,
    /// validate from that time on) or `{ last = "20%" }` (the last share of the
    /// time span). Default: the last 20%.
    #[serde(default)]
    pub split: Option<Spanned<SplitSection>>,
    /// `binary`: the score from which a row is predicted positive. Default: 0.5.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Online predictions (`POST /v1/predict`) refuse a request that leaves an
    /// input missing (422, naming them) instead of scoring it as missing.
    /// Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_inputs: Option<bool>,
    /// Bounds on validation metrics a version must meet to be promoted:
    /// `promote = { auc = { min = 0.7 }, log_loss = { max = 0.6 } }`, and
    /// `better_than_serving = true`: not worse than the serving version on
    /// those metrics (on the task's first metric when none is bounded).
    #[serde(default)]
    pub promote: IndexMap<String, Spanned<PromoteEntry>>,
    /// Batch predictions: `[models.NAME.predictions]`.
    #[serde(default)]
    pub predictions: Option<Spanned<PredictionsSection>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `learner = "..."`: the learners sluice trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LearnerKind {
    /// Gradient-boosted trees: `params` are [`crate::models::GbdtParams`].
    Gbdt,
    /// Logistic regression (binary): [`crate::models::LogisticParams`].
    Logistic,
    /// Least squares (regression): [`crate::models::LinearParams`].
    Linear,
}

impl LearnerKind {
    /// The word used in the project file.
    pub fn as_str(self) -> &'static str {
        match self {
            LearnerKind::Gbdt => "gbdt",
            LearnerKind::Logistic => "logistic",
            LearnerKind::Linear => "linear",
        }
    }
}

impl<'de> Deserialize<'de> for LearnerKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        closed_word(
            d,
            "learner",
            &[
                LearnerKind::Gbdt,
                LearnerKind::Logistic,
                LearnerKind::Linear,
            ],
            LearnerKind::as_str,
            " (or import a trained model with `onnx = \"FILE\"`)",
        )
    }
}

/// One of a closed set of words; anything else is an error naming `what` it
/// is and the words there are (serde's own says "variant").
pub(crate) fn closed_word<'de, D: serde::Deserializer<'de>, T: Copy>(
    d: D,
    what: &str,
    all: &[T],
    word: fn(T) -> &'static str,
    hint: &str,
) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    all.iter().copied().find(|w| word(*w) == s).ok_or_else(|| {
        let words: Vec<String> = all.iter().map(|w| format!("`{}`", word(*w))).collect();
        serde::de::Error::custom(format!(
            "unknown {what} `{s}`, expected one of {}{hint}",
            words.join(", ")
        ))
    })
}

/// `params = { ... }` as written: each name and value with its position, read
/// into the learner's typed struct when the model compiles (which learner
/// reads them may be written after them). Serialized as the table it is, so
/// that a model's fingerprint does not depend on how sluice reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct ParamsSection(pub IndexMap<Spanned<String>, Spanned<toml::Value>>);

/// `split = { before = "..." }` or `split = { last = "20%" }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSection {
    /// Rows before this time (RFC 3339 or a date) train; the rest validate.
    #[serde(default)]
    pub before: Option<String>,
    /// The last share of the spine's time span validates: `"20%"` or `0.2`.
    #[serde(default)]
    pub last: Option<toml::Value>,
}

/// `[models.NAME.predictions]`: the model's scores for the rows of a spine,
/// materialized as the asset `NAME_predictions` and kept in the online store.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionsSection {
    /// The asset whose rows are scored: the model's entity keys and columns, and a time.
    pub spine: Spanned<String>,
    /// The column (or columns) that key a prediction online.
    pub entity: Spanned<OneOrMany>,
    /// The spine's time column: features are taken as of it. Default: the
    /// spine's only timestamp or date column.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// What the scores must be: row rules and expectations, drift included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}
