//! `[... .contract]`: row rules and expectations, and the values they hold.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::*;

/// How a broken rule is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The asset fails; its downstream is blocked; the previous version stays published.
    Error,
    /// Recorded in the report; the rows flow on.
    Warn,
    /// Rows that break the rule go to `<asset>__quarantine`; the rest flow on.
    Quarantine,
}

impl Severity {
    /// The word used in the project file and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
            Severity::Quarantine => "quarantine",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value in a rule: a number, a string (also for dates and times, compared after
/// conversion to the column's type) or a boolean.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged, expecting = "a number, a string or a boolean")]
pub enum Literal {
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v}"),
            Literal::Str(v) => write!(f, "'{v}'"),
            Literal::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// `[sources.X.contract]` / `[tables.X.contract]`: what the asset's rows must be.
/// Row rules reject single rows; expectations judge the whole version.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSection {
    /// Row rules by column: `[....contract.columns.age] min = 0`.
    #[serde(default)]
    pub columns: IndexMap<String, Spanned<ColumnRulesSection>>,
    /// Row rules written as SQL predicates: `[[....contract.rules]]`.
    #[serde(default)]
    pub rules: Vec<Spanned<SqlRuleSection>>,
    /// Table expectations: `[[....contract.expect]]`.
    #[serde(default)]
    pub expect: Vec<Spanned<ExpectSection>>,
}

/// The rules of one column. A null passes every rule but `required`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRulesSection {
    /// The type the values must convert to without loss (a type word as in
    /// `columns`); passing rows are published with this type.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// The value must not be null.
    #[serde(default)]
    pub required: Option<bool>,
    /// Smallest allowed value (inclusive).
    #[serde(default)]
    pub min: Option<Literal>,
    /// Largest allowed value (inclusive).
    #[serde(default)]
    pub max: Option<Literal>,
    /// A regular expression (Rust syntax) the text must match somewhere; anchor it
    /// with `^...$` to match the whole value.
    #[serde(default)]
    pub regex: Option<String>,
    /// The allowed values.
    #[serde(default)]
    pub one_of: Option<Vec<Literal>>,
    /// Fewest characters.
    #[serde(default)]
    pub min_length: Option<u64>,
    /// Most characters.
    #[serde(default)]
    pub max_length: Option<u64>,
    /// No value may occur twice in the version (every row of a repeated value breaks it).
    #[serde(default)]
    pub unique: Option<bool>,
    /// What breaking these rules does. Default: `quarantine`.
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// A row rule written as a SQL predicate over the row's columns. A row breaks it
/// when the predicate is false (null passes, as in a SQL `CHECK`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRuleSection {
    /// The rule's name in reports and in the quarantine.
    pub name: String,
    /// The predicate, e.g. `cancelled OR arr_delay IS NOT NULL`.
    pub check: Spanned<String>,
    /// What breaking it does. Default: `quarantine`.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// Inclusive bounds; either may be left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BoundsSection {
    /// Lower bound.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound.
    #[serde(default)]
    pub max: Option<f64>,
}

/// `null_fraction = { max = 0.01 }`.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaxSection {
    /// The largest allowed value.
    pub max: f64,
}

/// `quantile = { q = 0.9, max = 120 }`.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuantileSection {
    /// Which quantile, in [0, 1] (0.5 is the median).
    pub q: f64,
    /// Lower bound.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound.
    #[serde(default)]
    pub max: Option<f64>,
}

/// `in_set = { values = [...], min_fraction = 0.99 }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InSetSection {
    /// The expected values.
    pub values: Vec<Literal>,
    /// The smallest share of non-null values that must be in the set. Default: 1.
    #[serde(default)]
    pub min_fraction: Option<f64>,
}

/// `freshness = { max_age = "2d" }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessSection {
    /// How old the newest timestamp may be at run time.
    pub max_age: Spanned<DurationWord>,
}

/// The version a drift check compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged, expecting = "\"previous\" or a version number")]
pub enum ReferenceSection {
    /// A pinned version.
    Version(u64),
    /// `"previous"`: the version published before this run.
    Named(PreviousWord),
}

/// The word `previous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviousWord {
    /// The version published before this run.
    Previous,
}

/// `drift = { psi_max = 0.2, ks_max = 0.1 }`: the column's distribution against a
/// reference version.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSection {
    /// The reference. Default: `"previous"`.
    #[serde(default)]
    pub reference: Option<ReferenceSection>,
    /// Number of bins for PSI on a numeric column, cut at the reference's
    /// quantiles (a text column has one bin per category). Default: 10.
    #[serde(default)]
    pub bins: Option<usize>,
    /// The largest allowed population stability index.
    #[serde(default)]
    pub psi_max: Option<f64>,
    /// The largest allowed two-sample Kolmogorov–Smirnov statistic (numeric columns).
    #[serde(default)]
    pub ks_max: Option<f64>,
}

/// One table expectation: exactly one of the kinds, with its `column` where the
/// kind needs one.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSection {
    /// The name in reports. Default: `<column>.<kind>` (or the kind).
    #[serde(default)]
    pub name: Option<String>,
    /// The column the expectation is about.
    #[serde(default)]
    pub column: Option<Spanned<String>>,
    /// What failing it does: `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// The number of rows published.
    #[serde(default)]
    pub row_count: Option<BoundsSection>,
    /// The share of nulls.
    #[serde(default)]
    pub null_fraction: Option<MaxSection>,
    /// The mean.
    #[serde(default)]
    pub mean: Option<BoundsSection>,
    /// The sample standard deviation.
    #[serde(default)]
    pub stddev: Option<BoundsSection>,
    /// A quantile (exact, interpolated linearly).
    #[serde(default)]
    pub quantile: Option<QuantileSection>,
    /// The number of distinct non-null values.
    #[serde(default)]
    pub distinct_count: Option<BoundsSection>,
    /// The share of non-null values in a set.
    #[serde(default)]
    pub in_set: Option<InSetSection>,
    /// The age of the newest timestamp.
    #[serde(default)]
    pub freshness: Option<FreshnessSection>,
    /// Drift against a reference version.
    #[serde(default)]
    pub drift: Option<DriftSection>,
}
