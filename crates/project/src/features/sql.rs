//! A declared feature view written as DataFusion SQL: rolling windows over the
//! event time, or, as of a time, one `GROUP BY` with filtered aggregates (or two
//! `GROUP BY`s, see `partials.rs`, when every aggregate combines from partials).

use std::time::Duration;

use super::partials::{folds, two_step_applies, two_step_sql};
use super::*;
use crate::raw::AggregateFunction;

/// `"name"`, with quotes inside doubled.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(super) fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn interval(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("INTERVAL '{} seconds'", d.as_secs())
    } else {
        format!("INTERVAL '{} milliseconds'", d.as_millis())
    }
}

pub(crate) fn declared_sql(
    def: &FeatureDef,
    d: &Declared,
    reference: Option<&TimeLiteral>,
    categories: &[Vec<String>],
    type_of: &dyn Fn(&str) -> Option<DataType>,
) -> String {
    let keys: Vec<String> = def.entity.iter().map(|k| quote(k)).collect();
    let ts = quote(&def.timestamp);
    let mut not_null: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
    not_null.push(format!("{ts} IS NOT NULL"));
    let source = quote(d.source.as_str());
    let mut select: Vec<String> = keys.clone();
    let mut where_ = not_null;
    let rolling = d.as_of == AsOf::Event || reference.is_none();
    let in_two_steps = !rolling && two_step_applies(def, d, type_of);

    // One aggregate call: `func(arg)` over the rows that pass `conds`.
    let call = |agg: AggregateFunction,
                column: Option<&str>,
                window: Option<Duration>,
                filter: Option<&str>,
                ignore_nulls: bool|
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
                AggregateFunction::Last if ignore_nulls => {
                    format!("last_value({}) IGNORE NULLS {over}", arg(value))
                }
                // The newest event's value even when null: without a filter
                // that is the frame's last row; with one, the value rides in a
                // struct, so that a null value is not taken for a row the filter
                // left out.
                AggregateFunction::Last => match filter {
                    None => format!("last_value({value}) {over}"),
                    Some(f) => format!(
                        "get_field(last_value(CASE WHEN ({f}) THEN named_struct('v', {value}) END) IGNORE NULLS {over}, 'v')"
                    ),
                },
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
                    if ignore_nulls {
                        conds.push(format!("{value} IS NOT NULL"));
                    }
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
        if !rolling && a.agg == AggregateFunction::CountDistinct && !(in_two_steps && folds(d, a)) {
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
            call(
                a.agg,
                a.column.as_deref(),
                a.window,
                a.filter.as_deref(),
                a.ignore_nulls,
            ),
            quote(&a.name)
        ));
        order.push((a.name.clone(), None));
    }
    for (i, p) in d.pivots.iter().enumerate() {
        let cats = p.categories(categories.get(i));
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
                    call(AggregateFunction::Sum, Some(v), window, Some(&cond), true),
                    quote(&name)
                ));
            }
            select.push(format!(
                "{} AS {}",
                call(AggregateFunction::Count, None, window, Some(&cond), true),
                quote(&count_col)
            ));
            order.extend(sum_col_name(p, &cat).map(|n| (n, None)));
            order.push((count_col, None));
        }
    }
    let where_ = where_.join(" AND ");
    let two_step = match reference {
        Some(r) if in_two_steps => Some(two_step_sql(def, d, r, categories, type_of, &where_)),
        _ => None,
    };
    let mut sql = two_step.unwrap_or_else(|| {
        let mut sql = format!(
            "SELECT {} FROM {source} WHERE {where_}",
            select.join(",\n  "),
        );
        if !rolling {
            sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
        }
        sql
    });
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
