//! Feature views: `[features.NAME]` compiled into a [`FeatureDef`], and a
//! declarative view turned into the DataFusion SQL that computes it.
//!
//! A view's offline table holds, per row, the entity's key columns, the event
//! timestamp, the created timestamp (if declared) and the features. Windows are
//! closed at both ends: an event at time `e` is inside the window of length `w` of a
//! row at time `t` when `t - w <= e <= t`, so no feature ever reads an event after
//! its row's time.
//!
//! `compile.rs` reads the section; `sql.rs` writes a declared view's query, and
//! `partials.rs` the two-step query of a view as of a time.

mod compile;
mod partials;
mod sql;

pub(crate) use compile::add;
pub(crate) use sql::declared_sql;
pub use sql::quote;

use std::time::Duration;

use datafusion::arrow::datatypes::TimeUnit;
use sluice_core::{AssetName, DataType, Location};

use crate::raw::AggregateFunction;
use crate::sql::SqlOrigin;

/// A compiled feature view.
#[derive(Debug, Clone)]
pub struct FeatureDef {
    /// The entity's key columns.
    pub entity: Vec<String>,
    /// The event-timestamp column.
    pub timestamp: String,
    /// The created-timestamp column, if any.
    pub created: Option<String>,
    /// How old a feature row may be at a training row's time; `None` = unlimited.
    pub ttl: Option<Duration>,
    /// How the features are computed.
    pub body: FeatureBody,
    /// For a view as of `now`: how long a build stays current (zero: every run
    /// rebuilds it).
    pub refresh: Option<Duration>,
    /// For a declared view computed at every event: how its online windows are
    /// tiled (`None` for other views: the online store keeps their newest row).
    pub tiles: Option<Tiling>,
    /// Where each key and time column is named, by column: a mistake found
    /// against the data (the source has no such column) is reported there.
    pub written_at: Vec<(String, Location)>,
}

/// How a view's online windows are tiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// The tile.
    pub size: Duration,
    /// How far before an entity's newest event online reads may go.
    pub history: Duration,
}

impl Tiling {
    /// One-hour tiles and a week of history.
    pub const DEFAULT: Tiling = Tiling {
        size: Duration::from_secs(3600),
        history: Duration::from_secs(7 * 86_400),
    };
}

/// SQL written by the user, or declared aggregations.
#[derive(Debug, Clone)]
pub enum FeatureBody {
    /// A query whose result holds the keys, the timestamps and the features.
    Sql {
        /// The query.
        sql: String,
        /// Where it is written.
        origin: SqlOrigin,
    },
    /// Aggregations over a source asset.
    Declared(Declared),
}

/// When a declarative view's features are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// At every event of the source (rolling windows): one row per event.
    Event,
    /// At the newest event of the source: one row per entity.
    Newest,
    /// At the time of the build: one row per entity.
    Now,
    /// At a fixed time (microseconds since the epoch, UTC): one row per entity.
    At(i64),
}

/// A declarative feature view.
#[derive(Debug, Clone)]
pub struct Declared {
    /// The asset whose rows are aggregated.
    pub source: AssetName,
    /// When the features are computed.
    pub as_of: AsOf,
    /// `as_of` left out: the view's table is computed at every event, but a
    /// training set or model computes the aggregates at each spine row's own
    /// time from the source (`as_of = "event"` written keeps the per-event join).
    pub spine_anchored: bool,
    /// Aggregations, in order.
    pub aggregates: Vec<Aggregate>,
    /// Category pivots, in order.
    pub pivots: Vec<Pivot>,
    /// Expressions over the features, by name, in order.
    pub derived: Vec<(String, String)>,
}

/// One aggregation.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// The feature's name.
    pub name: String,
    /// The function.
    pub agg: AggregateFunction,
    /// The column (none: `count` of rows).
    pub column: Option<String>,
    /// The window; `None` = all time.
    pub window: Option<Duration>,
    /// A condition on the source's rows.
    pub filter: Option<String>,
    /// `last`: skip nulls (the default) or take the newest value even if null.
    pub ignore_nulls: bool,
    /// `closed = "left"`: at a spine row's time `T` the window is `[T - w, T)`.
    /// The view's own per-event rows are unaffected (each row includes its event).
    pub closed_left: bool,
    /// Where `column` is written (else where the feature is).
    pub column_at: Location,
    /// Where `filter` is written, to place its SQL errors.
    pub filter_origin: Option<SqlOrigin>,
}

/// One category pivot.
#[derive(Debug, Clone)]
pub struct Pivot {
    /// The prefix of its columns.
    pub name: String,
    /// The category column.
    pub column: String,
    /// The summed column, if any.
    pub value: Option<String>,
    /// The categories, when given in the file.
    pub values: Option<Vec<String>>,
    /// The window and how it was written (for column names).
    pub window: Option<(Duration, String)>,
    /// A condition on the source's rows.
    pub filter: Option<String>,
    /// Where `column` is written (else where the pivot is).
    pub column_at: Location,
    /// Where `value` is written.
    pub value_at: Option<Location>,
    /// Where `filter` is written, to place its SQL errors.
    pub filter_origin: Option<SqlOrigin>,
}

impl Pivot {
    /// The categories: those the file lists, else `found` in the data.
    pub(crate) fn categories(&self, found: Option<&Vec<String>>) -> Vec<String> {
        self.values.as_ref().or(found).cloned().unwrap_or_default()
    }

    /// The columns for `category`: the sum (when there is a value column) and the count.
    pub fn columns(&self, category: &str) -> (Option<String>, String) {
        // Characters a stored column name cannot hold become `_`.
        let category: String = category
            .chars()
            .map(|c| if " ,;{}()\n\t=".contains(c) { '_' } else { c })
            .collect();
        let suffix = self
            .window
            .as_ref()
            .map(|(_, w)| format!("_{w}"))
            .unwrap_or_default();
        (
            self.value
                .as_ref()
                .map(|v| format!("{}_{v}_{category}{suffix}", self.name)),
            format!("{}_count_{category}{suffix}", self.name),
        )
    }
}

impl FeatureDef {
    /// The names of the columns that are not features: keys, timestamp, created.
    pub fn key_columns(&self) -> Vec<String> {
        let mut cols = self.entity.clone();
        cols.push(self.timestamp.clone());
        cols.extend(self.created.clone());
        cols
    }

    /// The pivots whose categories must be found in the data before the SQL can be
    /// written, with the query that finds them.
    pub fn discovery_queries(&self) -> Vec<(usize, String)> {
        let FeatureBody::Declared(d) = &self.body else {
            return vec![];
        };
        d.pivots
            .iter()
            .enumerate()
            .filter(|(_, p)| p.values.is_none())
            .map(|(i, p)| {
                (
                    i,
                    format!(
                        "SELECT DISTINCT CAST({c} AS VARCHAR) AS v FROM {s} WHERE {c} IS NOT NULL ORDER BY v",
                        c = quote(&p.column),
                        s = quote(d.source.as_str()),
                    ),
                )
            })
            .collect()
    }

    /// The query that computes the view. `reference` is the reference time as a SQL
    /// literal of the timestamp column's type (needed unless the view is computed
    /// at every event); `categories[i]` holds the categories of pivot `i` (used
    /// when the file does not list them); `type_of` gives the type of a source
    /// column. For a SQL view, the user's query.
    pub fn sql(
        &self,
        reference: Option<&TimeLiteral>,
        categories: &[Vec<String>],
        type_of: &dyn Fn(&str) -> Option<DataType>,
    ) -> String {
        match &self.body {
            FeatureBody::Sql { sql, .. } => sql.clone(),
            FeatureBody::Declared(d) => declared_sql(self, d, reference, categories, type_of),
        }
    }
}

/// A time as SQL: a literal of the timestamp column's type.
#[derive(Debug, Clone)]
pub struct TimeLiteral {
    /// Microseconds since the epoch, UTC.
    pub micros: i64,
    /// The type of the timestamp column: a timestamp of any unit or a date.
    pub data_type: DataType,
}

impl TimeLiteral {
    /// The literal `micros - back`, in the column's type.
    fn minus(&self, back: Duration) -> String {
        let m = self
            .micros
            .saturating_sub(back.as_micros().min(i64::MAX as u128) as i64);
        let value = match &self.data_type {
            DataType::Timestamp(TimeUnit::Second, _) => m.div_euclid(1_000_000),
            DataType::Timestamp(TimeUnit::Millisecond, _) => m.div_euclid(1_000),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => m.saturating_mul(1_000),
            DataType::Date32 => m.div_euclid(86_400_000_000),
            DataType::Date64 => m.div_euclid(1_000),
            _ => m,
        };
        let cast_from = if self.data_type == DataType::Date32 {
            "Int32"
        } else {
            "Int64"
        };
        format!(
            "arrow_cast(arrow_cast({value}, '{cast_from}'), '{}')",
            self.data_type
        )
    }
}
