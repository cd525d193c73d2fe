//! Feature views: `[features.NAME]` compiled into a [`FeatureDef`], and a
//! declarative view turned into the DataFusion SQL that computes it.
//!
//! A view's offline table holds, per row, the entity's key columns, the event
//! timestamp, the created timestamp (if declared) and the features. Windows are
//! closed at both ends: an event at time `e` is inside the window of length `w` of a
//! row at time `t` when `t - w <= e <= t`, so no feature ever reads an event after
//! its row's time.

use std::time::Duration;

use datafusion::arrow::datatypes::TimeUnit;
use sluice_core::{AssetName, DataType, Location, parse_duration};

use crate::diag::{Diagnostic, Diagnostics};
use crate::parse::RawProject;
use crate::raw::{AggregateFunction, FeatureSection};
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
}

impl Pivot {
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
    /// when the file does not list them). For a SQL view, the user's query.
    pub fn sql(&self, reference: Option<&TimeLiteral>, categories: &[Vec<String>]) -> String {
        match &self.body {
            FeatureBody::Sql { sql, .. } => sql.clone(),
            FeatureBody::Declared(d) => declared_sql(self, d, reference, categories),
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

/// `"name"`, with quotes inside doubled.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn interval(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("INTERVAL '{} seconds'", d.as_secs())
    } else {
        format!("INTERVAL '{} milliseconds'", d.as_millis())
    }
}

fn declared_sql(
    def: &FeatureDef,
    d: &Declared,
    reference: Option<&TimeLiteral>,
    categories: &[Vec<String>],
) -> String {
    let keys: Vec<String> = def.entity.iter().map(|k| quote(k)).collect();
    let ts = quote(&def.timestamp);
    let mut not_null: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
    not_null.push(format!("{ts} IS NOT NULL"));
    let source = quote(d.source.as_str());
    let mut select: Vec<String> = keys.clone();
    let mut where_ = not_null;
    let rolling = d.as_of == AsOf::Event || reference.is_none();

    // One aggregate call: `func(arg)` over the rows that pass `conds`.
    let call = |agg: AggregateFunction,
                column: Option<&str>,
                window: Option<Duration>,
                filter: Option<&str>|
     -> String {
        let col = column.map(quote);
        if rolling {
            let arg = |value: String| match filter {
                Some(f) => format!("CASE WHEN ({f}) THEN {value} END"),
                None => value,
            };
            let frame = match window {
                Some(w) => format!("{} PRECEDING", interval(w)),
                None => "UNBOUNDED PRECEDING".to_string(),
            };
            let over = format!(
                "OVER (PARTITION BY {} ORDER BY {ts} RANGE BETWEEN {frame} AND CURRENT ROW)",
                keys.join(", ")
            );
            let value = col.clone().unwrap_or_else(|| "1".to_string());
            match agg {
                AggregateFunction::Last => {
                    format!("last_value({}) IGNORE NULLS {over}", arg(value))
                }
                AggregateFunction::CountDistinct => {
                    format!("count(DISTINCT {}) {over}", arg(value))
                }
                other => format!("{}({}) {over}", sql_function(other), arg(value)),
            }
        } else {
            let mut conds = vec![];
            if let (Some(w), Some(r)) = (window, reference) {
                conds.push(format!("{ts} >= {}", r.minus(w)));
            }
            if let Some(f) = filter {
                conds.push(format!("({f})"));
            }
            let value = col.clone().unwrap_or_else(|| "1".to_string());
            let body = match agg {
                AggregateFunction::Last => {
                    conds.push(format!("{value} IS NOT NULL"));
                    let mut order = vec![ts.clone()];
                    order.extend(def.created.as_deref().map(quote));
                    format!("last_value({value} ORDER BY {})", order.join(", "))
                }
                AggregateFunction::CountDistinct => format!("count(DISTINCT {value})"),
                other => format!("{}({value})", sql_function(other)),
            };
            if conds.is_empty() {
                body
            } else {
                format!("{body} FILTER (WHERE {})", conds.join(" AND "))
            }
        }
    };

    if rolling {
        select.push(ts.clone());
        if let Some(c) = &def.created {
            select.push(quote(c));
        }
    } else {
        select.push(format!("max({ts}) AS {ts}"));
        if let Some(c) = &def.created {
            select.push(format!("max({c}) AS {c}", c = quote(c)));
        }
        if let Some(r) = reference {
            where_.push(format!("{ts} <= {}", r.minus(Duration::ZERO)));
        }
    }
    // As of a reference time, distinct counts are counted from the newest event of
    // each (entity, value) pair: a value occurs in a window exactly when its newest
    // event does. One small GROUP BY per (column, filter), joined on the keys, instead
    // of a hash set per entity and window (several times faster on large inputs).
    let mut distinct: Vec<DistinctGroup> = vec![];
    let mut order: Vec<(String, Option<usize>)> = vec![];
    for a in &d.aggregates {
        if !rolling && a.agg == AggregateFunction::CountDistinct {
            let column = a.column.clone().unwrap_or_default();
            let i = match distinct
                .iter()
                .position(|(c, f, _)| *c == column && *f == a.filter)
            {
                Some(i) => i,
                None => {
                    distinct.push((column, a.filter.clone(), vec![]));
                    distinct.len() - 1
                }
            };
            distinct[i].2.push((a.name.clone(), a.window));
            order.push((a.name.clone(), Some(i)));
            continue;
        }
        select.push(format!(
            "{} AS {}",
            call(a.agg, a.column.as_deref(), a.window, a.filter.as_deref()),
            quote(&a.name)
        ));
        order.push((a.name.clone(), None));
    }
    for (i, p) in d.pivots.iter().enumerate() {
        let cats = p
            .values
            .as_ref()
            .or(categories.get(i))
            .cloned()
            .unwrap_or_default();
        for cat in cats {
            let mut cond = format!("{} = {}", quote(&p.column), sql_string(&cat));
            if let Some(f) = &p.filter {
                cond = format!("{cond} AND ({f})");
            }
            let window = p.window.as_ref().map(|(w, _)| *w);
            let (sum_col, count_col) = p.columns(&cat);
            if let (Some(v), Some(name)) = (&p.value, sum_col) {
                select.push(format!(
                    "coalesce({}, 0) AS {}",
                    call(AggregateFunction::Sum, Some(v), window, Some(&cond)),
                    quote(&name)
                ));
            }
            select.push(format!(
                "{} AS {}",
                call(AggregateFunction::Count, None, window, Some(&cond)),
                quote(&count_col)
            ));
            order.extend(sum_col_name(p, &cat).map(|n| (n, None)));
            order.push((count_col, None));
        }
    }
    let where_ = where_.join(" AND ");
    let mut sql = format!(
        "SELECT {} FROM {source} WHERE {where_}",
        select.join(",\n  "),
    );
    if !rolling {
        sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
    }
    if !distinct.is_empty() {
        let mut outer: Vec<String> = keys.iter().map(|k| format!("__m.{k}")).collect();
        outer.push(format!("__m.{ts}"));
        if let Some(c) = &def.created {
            outer.push(format!("__m.{}", quote(c)));
        }
        for (name, group) in &order {
            outer.push(match group {
                None => format!("__m.{}", quote(name)),
                Some(i) => format!("coalesce(__d{i}.{n}, 0) AS {n}", n = quote(name)),
            });
        }
        let mut from = format!("({sql}) AS __m");
        for (i, (column, filter, outputs)) in distinct.iter().enumerate() {
            let newest = match filter {
                Some(f) => format!("max({ts}) FILTER (WHERE ({f}))"),
                None => format!("max({ts})"),
            };
            let counts: Vec<String> = outputs
                .iter()
                .map(|(name, window)| match (window, reference) {
                    (Some(w), Some(r)) => format!(
                        "count(*) FILTER (WHERE __newest >= {}) AS {}",
                        r.minus(*w),
                        quote(name)
                    ),
                    _ => format!("count(__newest) AS {}", quote(name)),
                })
                .collect();
            let col = quote(column);
            from.push_str(&format!(
                " LEFT JOIN (SELECT {k}, {counts} FROM (SELECT {k}, {col}, {newest} AS __newest FROM {source} WHERE {where_} AND {col} IS NOT NULL GROUP BY {k}, {col}) AS __p GROUP BY {k}) AS __d{i} ON {on}",
                k = keys.join(", "),
                counts = counts.join(", "),
                on = keys
                    .iter()
                    .map(|k| format!("__m.{k} = __d{i}.{k}"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ));
        }
        sql = format!("SELECT {} FROM {from}", outer.join(", "));
    }
    for (name, expr) in &d.derived {
        sql = format!(
            "SELECT *, ({expr}) AS {} FROM ({sql}) AS __features",
            quote(name)
        );
    }
    sql
}

/// Distinct counts of one column under one filter: (column, filter, outputs
/// with their windows).
type DistinctGroup = (String, Option<String>, Vec<(String, Option<Duration>)>);

fn sum_col_name(p: &Pivot, category: &str) -> Option<String> {
    p.columns(category).0
}

fn sql_function(agg: AggregateFunction) -> &'static str {
    match agg {
        AggregateFunction::Sum => "sum",
        AggregateFunction::Mean => "avg",
        AggregateFunction::Min => "min",
        AggregateFunction::Max => "max",
        AggregateFunction::Count => "count",
        AggregateFunction::CountDistinct => "count",
        AggregateFunction::Stddev => "stddev_samp",
        AggregateFunction::Last => "last_value",
    }
}

/// Compiles `[features.NAME]`; mistakes that need no data are reported here.
pub(crate) fn compile_features(
    raw: &RawProject,
    name: &str,
    section: &FeatureSection,
    at: &Location,
    diags: &mut Diagnostics,
) -> Option<FeatureDef> {
    let loc = |offset: usize| raw.location(offset);
    let before = diags.len();
    let entity = section.entity.get_ref().to_vec();
    if entity.is_empty() || entity.iter().any(|k| k.is_empty()) {
        diags.push(
            Diagnostic::new(
                loc(section.entity.span().start),
                "the entity needs a key column",
            )
            .with_help("write `entity = \"user_id\"` or `entity = [\"carrier\", \"origin\"]`"),
        );
    }
    let timestamp = section.timestamp.get_ref().clone();
    let created = section.created.as_ref().map(|c| c.get_ref().clone());
    let ttl = match &section.ttl {
        None => None,
        Some(t) => match parse_duration(t.get_ref()) {
            Ok(d) if d.is_zero() => None,
            Ok(d) => Some(d),
            Err(e) => {
                diags.push(Diagnostic::new(loc(t.span().start), format!("ttl: {e}")));
                None
            }
        },
    };
    let declarative = section.source.is_some()
        || !section.aggregates.is_empty()
        || !section.pivots.is_empty()
        || !section.derived.is_empty()
        || section.as_of.is_some();
    let body = match (&section.sql, &section.file, declarative) {
        (Some(_), Some(_), _) => {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    "a feature view has either `sql` or `file`, not both",
                )
                .with_help("keep one of them"),
            );
            None
        }
        (Some(_), None, true) | (None, Some(_), true) => {
            diags.push(
                Diagnostic::new(
                    at.clone(),
                    "a feature view is either SQL (`sql`/`file`) or declared (`source`, `aggregates`, `pivots`, `derived`, `as_of`), not both",
                )
                .with_help("put the aggregations in the SQL, or drop `sql`/`file`"),
            );
            None
        }
        (Some(sql), None, false) => Some(FeatureBody::Sql {
            sql: sql.get_ref().clone(),
            origin: SqlOrigin::of_toml_string(&raw.file, &raw.text, sql.span().start),
        }),
        (None, Some(file), false) => {
            let path = raw.dir.join(file.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(sql) => Some(FeatureBody::Sql {
                    sql,
                    origin: SqlOrigin {
                        file: path,
                        line: 1,
                        column: 1,
                    },
                }),
                Err(e) => {
                    diags.push(
                        Diagnostic::new(
                            loc(file.span().start),
                            format!("cannot read `{}`: {e}", file.get_ref()),
                        )
                        .with_help("the path is relative to the project folder"),
                    );
                    None
                }
            }
        }
        (None, None, _) => {
            compile_declared(raw, name, section, at, &entity, &timestamp, &created, diags)
                .map(FeatureBody::Declared)
        }
    };
    if diags.len() > before {
        return None;
    }
    Some(FeatureDef {
        entity,
        timestamp,
        created,
        ttl,
        body: body?,
    })
}

#[allow(clippy::too_many_arguments)]
fn compile_declared(
    raw: &RawProject,
    name: &str,
    section: &FeatureSection,
    at: &Location,
    entity: &[String],
    timestamp: &str,
    created: &Option<String>,
    diags: &mut Diagnostics,
) -> Option<Declared> {
    let loc = |offset: usize| raw.location(offset);
    let Some(source) = &section.source else {
        diags.push(
            Diagnostic::new(at.clone(), format!("feature view `{name}` has no source"))
                .with_help("add `source = \"ASSET\"` (the asset whose rows are aggregated), or write the view as `sql = \"SELECT ...\"`"),
        );
        return None;
    };
    let source_name = match AssetName::new(source.get_ref()) {
        Ok(n) => n,
        Err(e) => {
            diags.push(Diagnostic::new(loc(source.span().start), e.to_string()));
            return None;
        }
    };
    let as_of = match section
        .as_of
        .as_ref()
        .map(|a| (a.get_ref().trim(), a.span().start))
    {
        None | Some(("event", _)) => AsOf::Event,
        Some(("newest", _)) => AsOf::Newest,
        Some(("now", _)) => AsOf::Now,
        Some((text, offset)) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(t) => AsOf::At(t.timestamp_micros()),
            Err(e) => {
                diags.push(
                    Diagnostic::new(loc(offset), format!("as_of: `{text}` is not a time ({e})"))
                        .with_help("write `\"event\"`, `\"newest\"`, `\"now\"` or an RFC 3339 time such as `\"2026-01-01T00:00:00Z\"`"),
                );
                AsOf::Event
            }
        },
    };
    let mut names: Vec<String> = entity.to_vec();
    names.push(timestamp.to_string());
    names.extend(created.clone());
    let mut claim = |feature: &str, offset: usize, diags: &mut Diagnostics| {
        if names.iter().any(|n| n == feature) {
            diags.push(
                Diagnostic::new(loc(offset), format!("feature view `{name}` has two columns named `{feature}`"))
                    .with_help("give every feature a name of its own, different from the entity and timestamp columns"),
            );
        } else {
            names.push(feature.to_string());
        }
    };
    let window = |w: &Option<String>, offset: usize, diags: &mut Diagnostics| match w {
        None => None,
        Some(text) => match parse_duration(text) {
            Ok(d) if d.is_zero() => {
                diags.push(
                    Diagnostic::new(loc(offset), "a window of zero length holds no event")
                        .with_help(
                            "leave `window` out for all time, or give a length such as `7d`",
                        ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                diags.push(Diagnostic::new(loc(offset), format!("window: {e}")));
                None
            }
        },
    };
    let mut aggregates = vec![];
    for (feature, spec) in &section.aggregates {
        let offset = spec.span().start;
        let spec = spec.get_ref();
        claim(feature, offset, diags);
        if spec.column.is_none() && spec.agg != AggregateFunction::Count {
            diags.push(
                Diagnostic::new(
                    loc(offset),
                    format!("`{feature}`: `{}` needs a `column`", spec.agg.as_str()),
                )
                .with_help("only `count` may go without a column (it then counts rows)"),
            );
        }
        aggregates.push(Aggregate {
            name: feature.clone(),
            agg: spec.agg,
            column: spec.column.clone(),
            window: window(&spec.window, offset, diags),
            filter: spec.filter.clone(),
        });
    }
    let mut pivots = vec![];
    for (pivot, spec) in &section.pivots {
        let offset = spec.span().start;
        let spec = spec.get_ref();
        let w = window(&spec.window, offset, diags);
        let p = Pivot {
            name: pivot.clone(),
            column: spec.column.clone().unwrap_or_else(|| pivot.clone()),
            value: spec.value.clone(),
            values: spec.values.clone(),
            window: w.zip(spec.window.clone()),
            filter: spec.filter.clone(),
        };
        if let Some(values) = &p.values {
            if values.is_empty() {
                diags.push(
                    Diagnostic::new(loc(offset), format!("pivot `{pivot}` lists no category"))
                        .with_help(
                            "list the categories, or leave `values` out to find them in the data",
                        ),
                );
            }
            for v in values {
                let (sum, count) = p.columns(v);
                if let Some(sum) = sum {
                    claim(&sum, offset, diags);
                }
                claim(&count, offset, diags);
            }
        }
        pivots.push(p);
    }
    let mut derived = vec![];
    for (feature, expr) in &section.derived {
        claim(feature, expr.span().start, diags);
        derived.push((feature.clone(), expr.get_ref().clone()));
    }
    if aggregates.is_empty() && pivots.is_empty() {
        diags.push(
            Diagnostic::new(
                at.clone(),
                format!("feature view `{name}` declares no feature"),
            )
            .with_help("add `[features.NAME.aggregates]` or `[features.NAME.pivots.X]`"),
        );
    }
    Some(Declared {
        source: source_name,
        as_of,
        aggregates,
        pivots,
        derived,
    })
}
