//! The project file as written: serde structs that map one-to-one onto `sluice.toml`.
//!
//! Every struct denies unknown fields so that a typo is an error, not a silently
//! ignored setting. Defaults sit next to their field.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// `[project]`: what the project is called and where it keeps its data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// Name of the project, shown in summaries and metrics.
    pub name: String,
    /// Where versioned tables and the metadata database live, relative to the
    /// project folder. Default: `.sluice`.
    #[serde(default)]
    pub warehouse: Option<Spanned<String>>,
    /// How many assets may materialize at once. Default: the number of CPUs.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// The profile used when `--profile` is not given. Default: none.
    #[serde(default)]
    pub default_profile: Option<Spanned<String>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

// `[profiles.NAME]` is not a struct: a profile holds any key of `[project]`
// (but `default_profile`) and, under `[profiles.NAME.sources.SOURCE]`, any key
// of that source, and is applied to the file's text before the sections are
// read (`crate::parse`), so every section is checked with its overrides in place.

/// The format of a file source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma (or other delimiter) separated values.
    Csv,
    /// Newline-delimited JSON objects, or one JSON array of objects.
    Json,
    /// Apache Parquet.
    Parquet,
}

/// `[sources.NAME]`: where a source's rows come from. A closed set of
/// connectors, each with its own keys (`deny_unknown_fields` per connector):
/// files today; a database or an HTTP API is a new variant, told apart by the
/// key that names it (`postgres = { ... }`), chosen in `Deserialize` below.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum SourceSection {
    /// Files on disk, by path or glob: `path = "data/*.csv"`.
    Files(FileSourceSection),
}

impl SourceSection {
    /// What the rows must be.
    pub fn contract(&self) -> Option<&ContractSection> {
        match self {
            SourceSection::Files(f) => f.contract.as_ref(),
        }
    }

    /// Free text for people.
    pub fn description(&self) -> Option<&String> {
        match self {
            SourceSection::Files(f) => f.description.as_ref(),
        }
    }
}

impl<'de> Deserialize<'de> for SourceSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // One connector so far: every source is read as files, so that a key
        // of another connector is named as unknown with the keys files take.
        FileSourceSection::deserialize(d).map(SourceSection::Files)
    }
}

/// `[sources.NAME]` with `path`: files read from outside the project.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSection {
    /// A path or glob (`data/*.csv`), relative to the project folder.
    pub path: Spanned<String>,
    /// `csv`, `json` or `parquet`. Default: from the file extension
    /// (`.csv`/`.tsv`, `.json`/`.ndjson`/`.jsonl`, `.parquet`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// CSV: the field delimiter, one ASCII character, or `"whitespace"` (also
    /// written `"\\s+"`) for columns aligned with runs of spaces and tabs.
    /// Default: `,` (`\t` for `.tsv`).
    #[serde(default)]
    pub delimiter: Option<Delimiter>,
    /// CSV: the quote character. Default: `"`.
    #[serde(default)]
    pub quote: Option<char>,
    /// CSV: whether the first line holds column names. Default: true.
    #[serde(default)]
    pub header: Option<bool>,
    /// CSV: column names when there is no header. Default: `column_1`, `column_2`...
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// CSV: values that mean "missing" (for example `["NA"]`). The empty field is
    /// always missing. Default: none besides the empty field.
    #[serde(default)]
    pub null: Vec<String>,
    /// Column types that override inference, by column name, in the project file's
    /// type words: `string`, `bool`, `int32`, `int64`, `float64`, `date`,
    /// `timestamp`, `decimal(10,2)`...
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// How many records to read to infer types (0 = the whole file). Default: 10000.
    #[serde(default)]
    pub infer_rows: Option<usize>,
    /// The time zone of timestamps written without an offset. Timestamps are
    /// stored as UTC instants. Default: `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// CSV: fixed-width columns, each one's width in characters, in order
    /// (`[6, 9, 3, 8]`); values are trimmed, and a header line is split the same
    /// way. Not with `delimiter`. Default: none (delimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// CSV and JSON: how date and timestamp columns are written, by column, in
    /// chrono's strftime syntax: `{ sold = "%m/%d/%y", at = "%Y%m%d %H%M" }`. A
    /// column is a timestamp when its format has a time of day (or `columns`
    /// says so), else a date. Default: ISO 8601 only.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub formats: IndexMap<String, String>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[tables.NAME]`: a SQL transform over other assets.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    /// The query, inline.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The query in a file, relative to the project folder.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// What the rows must be; see [`ContractSection`].
    #[serde(default)]
    pub contract: Option<ContractSection>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

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

/// A duration as written (`"7d"`, `"12h"`, `"90 days"` is not one), checked
/// when the file is read so that it is reported with the section's other
/// mistakes. Serialized as written, so fingerprints hold the text.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationWord {
    /// The text as written.
    pub text: String,
    /// Its length.
    pub value: std::time::Duration,
}

impl<'de> Deserialize<'de> for DurationWord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match sluice_core::parse_duration(&text) {
            Ok(value) => Ok(DurationWord { text, value }),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

impl serde::Serialize for DurationWord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
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

/// `[features.NAME]`: a feature view — features of an entity at event times,
/// declared as aggregations over a source asset or written as SQL.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSection {
    /// The entity: one key column or several (`["carrier", "origin"]`).
    pub entity: Spanned<OneOrMany>,
    /// The event-timestamp column.
    pub timestamp: Spanned<String>,
    /// The created-timestamp column, which breaks ties between rows of the same
    /// entity and event time (the greatest wins). Default: none.
    #[serde(default)]
    pub created: Option<Spanned<String>>,
    /// How old a feature row may be at a training row's time: `"90d"`; `"0s"` means
    /// unlimited. Default: unlimited.
    #[serde(default)]
    pub ttl: Option<Spanned<DurationWord>>,
    /// Declarative mode: the asset whose rows are aggregated.
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    /// Declarative mode: when the features are computed. `"event"` (default): one
    /// row per event of the source, with rolling windows ending at it; `"newest"`:
    /// one row per entity as of the newest event of the source; `"now"`: as of the
    /// build; or an RFC 3339 time.
    #[serde(default)]
    pub as_of: Option<Spanned<String>>,
    /// With `as_of = "now"`: how long a build's windows stay current. The view
    /// is stale once this much time has passed since its version was built
    /// (default: every run rebuilds it, so its windows end at the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Spanned<DurationWord>>,
    /// What the view's rows must be: row rules and expectations, drift included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractSection>,
    /// Declarative mode: aggregations by feature name, in order.
    #[serde(default)]
    pub aggregates: IndexMap<String, Spanned<AggregateSection>>,
    /// Declarative mode: category pivots by name.
    #[serde(default)]
    pub pivots: IndexMap<String, Spanned<PivotSection>>,
    /// Declarative mode: SQL expressions over the features above, by name, in order.
    #[serde(default)]
    pub derived: IndexMap<String, Spanned<String>>,
    /// SQL mode: the query, inline. Its result holds the entity and timestamp
    /// columns and the features.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// SQL mode: the query in a file, relative to the project folder.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[exports.NAME]`: rows written to a file on every refresh: JSON keyed by entity
/// (`{"A-san": {...}}`, the shape of a Firebase export), a JSON array, CSV or Parquet.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// The asset exported, every column. A feature view is exported as the
    /// newest row of each entity (what the online store holds).
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Or a query over assets.
    #[serde(default)]
    pub sql: Option<Spanned<String>>,
    /// The file to write, relative to the project folder.
    pub path: Spanned<String>,
    /// `json`, `csv` or `parquet`. Default: from the path's extension.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// JSON: the column (or columns, nested in that order) whose values key the
    /// object. Default: a feature view's entity; otherwise none, and the file
    /// holds an array of rows.
    #[serde(default)]
    pub key: Option<Spanned<OneOrMany>>,
    /// Free text for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// A name or a list of names.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged, expecting = "a column name or a list of column names")]
pub enum OneOrMany {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// An aggregation function of a declarative feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    /// The sum of the values.
    Sum,
    /// The arithmetic mean.
    Mean,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The number of non-null values (of rows, without a column).
    Count,
    /// The number of distinct non-null values.
    CountDistinct,
    /// The sample standard deviation.
    Stddev,
    /// The value of the newest event: nulls skipped, unless `ignore_nulls = false`.
    Last,
}

impl AggregateFunction {
    /// The word used in the project file.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateFunction::Sum => "sum",
            AggregateFunction::Mean => "mean",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
            AggregateFunction::Count => "count",
            AggregateFunction::CountDistinct => "count_distinct",
            AggregateFunction::Stddev => "stddev",
            AggregateFunction::Last => "last",
        }
    }
}

/// `name = { agg = "sum", column = "amount", window = "7d", filter = "..." }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSection {
    /// The function.
    pub agg: AggregateFunction,
    /// The column aggregated; only `count` may go without (it then counts rows).
    #[serde(default)]
    pub column: Option<Spanned<String>>,
    /// How far back from the row's time: `"7d"`, `"12h"`... Default: all time.
    #[serde(default)]
    pub window: Option<Spanned<DurationWord>>,
    /// A SQL condition on the source's rows: only those count.
    #[serde(default)]
    pub filter: Option<Spanned<String>>,
    /// `last` only: `false` takes the newest event's value even when it is null.
    /// Default: true (nulls are skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_nulls: Option<Spanned<bool>>,
    /// `"left"`: in a training set, the window is `[T - w, T)` — an event at the
    /// spine row's own time is left out (for labels decided at `T`). Only for a
    /// view without `as_of` (anchored at each spine row). Default: `"right"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Spanned<String>>,
}

/// `[features.X.pivots.NAME]`: per category of a column, the sum of a value and the
/// count of rows, zero-filled, one column per category.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PivotSection {
    /// The category column. Default: the pivot's name.
    #[serde(default)]
    pub column: Option<Spanned<String>>,
    /// The column summed per category. Default: none (counts only).
    #[serde(default)]
    pub value: Option<Spanned<String>>,
    /// The categories, in order. Default: the distinct values found at build time, sorted.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// How far back from the row's time. Default: all time.
    #[serde(default)]
    pub window: Option<Spanned<DurationWord>>,
    /// A SQL condition on the source's rows: only those count.
    #[serde(default)]
    pub filter: Option<Spanned<String>>,
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

/// A CSV source's field delimiter: one character, or runs of whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// One character (`,`, `;`, `\t`, `|`...).
    Char(char),
    /// Runs of spaces and tabs; leading and trailing ones are ignored.
    Whitespace,
}

impl Delimiter {
    const WHITESPACE: &'static str = "whitespace";
}

impl<'de> Deserialize<'de> for Delimiter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // `\s+` is the regex users bring from pandas and R; it means the same.
        if s == Self::WHITESPACE || s == r"\s+" {
            return Ok(Delimiter::Whitespace);
        }
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Delimiter::Char(c)),
            _ => Err(serde::de::Error::custom(format!(
                "`{s}` is not a delimiter: write one character, or \"whitespace\" for \
                 columns separated by runs of spaces and tabs"
            ))),
        }
    }
}

impl serde::Serialize for Delimiter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // As a bare `char` was written before, so fingerprints stay the same.
            Delimiter::Char(c) => s.serialize_char(*c),
            Delimiter::Whitespace => s.serialize_str(Self::WHITESPACE),
        }
    }
}
