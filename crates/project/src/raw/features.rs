//! `[features.NAME]`: a feature view, declared or in SQL.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::*;

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
    /// A view computed at every event (`as_of` left out): the tile of its online
    /// windows. The online store keeps per entity partial aggregates per tile and
    /// reads each window as of the request time, exact when that time and the
    /// window are multiples of the tile. Default: `"1h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<Spanned<DurationWord>>,
    /// With tiles: how far before an entity's newest event an online read
    /// (`?as_of=`) may go, beyond its longest window. Default: `"7d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_history: Option<Spanned<DurationWord>>,
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
