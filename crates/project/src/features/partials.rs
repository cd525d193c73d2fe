//! A view as of a reference time, aggregated in two steps: one `GROUP BY` of the
//! source's rows by the entity and by what tells its features apart (how many of
//! the windows hold the event, each filter's value, each pivot's category), with
//! one partial aggregate per (function, column); then a `GROUP BY` of those few
//! rows per entity that combines the partials under each feature's window and
//! filter.
//!
//! The rows are read once and each predicate is evaluated once per row, instead
//! of once per feature; the features' `FILTER`s then run over a handful of rows
//! per entity. Only functions that combine exactly from partials qualify: `sum`
//! and `mean` of integers and floats, `count`, `min` and `max`. Any other
//! aggregate (`stddev`, `last`) keeps the view on the one-step query. A
//! `count_distinct` of a pivot's column counts the first step's categories: where
//! the pivot found every value in the data (up to 62), as the bits a `bit_or`
//! sets, one per value, else by marks that window functions put on one row per
//! entity and value; one of another column is computed beside, as in the
//! one-step query.

use std::time::Duration;

use super::sql::{quote, sql_string};
use super::*;
use crate::raw::AggregateFunction;

/// Aliases of expressions, each written once however often it is asked for.
struct Named {
    prefix: &'static str,
    exprs: Vec<String>,
}

impl Named {
    fn new(prefix: &'static str) -> Self {
        Named {
            prefix,
            exprs: vec![],
        }
    }

    fn alias(&mut self, expr: String) -> String {
        let i = match self.exprs.iter().position(|e| *e == expr) {
            Some(i) => i,
            None => {
                self.exprs.push(expr);
                self.exprs.len() - 1
            }
        };
        format!("{}{i}", self.prefix)
    }

    fn select(&self) -> impl Iterator<Item = String> + '_ {
        self.exprs
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS {}{i}", self.prefix))
    }
}

/// Whether `sum` and `mean` of a column of this type combine exactly from
/// partial sums with the one-step query's result type (a decimal's sum widens
/// once more at each step).
fn summable(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Float32 | DataType::Float64)
}

/// Whether every aggregate of the view combines from partials (and no pivot
/// is of an entity's key column, which would be grouped by twice).
pub(super) fn two_step_applies(
    def: &FeatureDef,
    d: &Declared,
    type_of: &dyn Fn(&str) -> Option<DataType>,
) -> bool {
    let numeric = |c: &Option<String>| c.as_deref().and_then(type_of).is_some_and(|t| summable(&t));
    d.aggregates.iter().all(|a| match a.agg {
        AggregateFunction::Count
        | AggregateFunction::Min
        | AggregateFunction::Max
        | AggregateFunction::CountDistinct => true,
        AggregateFunction::Sum | AggregateFunction::Mean => numeric(&a.column),
        AggregateFunction::Stddev | AggregateFunction::Last => false,
    }) && d
        .pivots
        .iter()
        .all(|p| (p.value.is_none() || numeric(&p.value)) && !def.entity.contains(&p.column))
}

/// Whether a `count_distinct` is computed in the two steps: its column is a
/// pivot's, so it is a key of the first step already (counting another
/// column's values there would multiply the first step's rows by them; those
/// are counted beside, as in the one-step query).
pub(super) fn folds(d: &Declared, a: &Aggregate) -> bool {
    a.agg == AggregateFunction::CountDistinct
        && a.column
            .as_ref()
            .is_some_and(|c| d.pivots.iter().any(|p| p.column == *c))
}

/// Every value a `count_distinct`'s column holds, when a pivot of that column
/// found them in the data (a pivot given its `values` may not see them all), and
/// there are from 1 to 62, each a bit of a `BIGINT`.
fn every_value<'a>(
    d: &Declared,
    categories: &'a [Vec<String>],
    a: &Aggregate,
) -> Option<&'a [String]> {
    let column = a.column.as_ref()?;
    let i = d
        .pivots
        .iter()
        .position(|p| p.column == *column && p.values.is_none())?;
    let values = categories.get(i)?;
    (1..=62)
        .contains(&values.len())
        .then_some(values.as_slice())
}

/// The view's main query in two steps, with the columns of the one-step query in
/// its order (keys, timestamp, created, each aggregate but the `count_distinct`s
/// that do not [`folds`], the pivot columns), for a view [`two_step_applies`] to.
/// `type_of` gives a source column's type; `where_` selects the source's rows.
pub(super) fn two_step_sql(
    def: &FeatureDef,
    d: &Declared,
    reference: &TimeLiteral,
    categories: &[Vec<String>],
    type_of: &dyn Fn(&str) -> Option<DataType>,
    where_: &str,
) -> String {
    let keys: Vec<String> = def.entity.iter().map(|k| quote(k)).collect();
    let ts = quote(&def.timestamp);
    // How many windows hold the event: window `i` of the ascending list holds it
    // when that count is at least `windows.len() - i`.
    let mut windows: Vec<Duration> = d
        .aggregates
        .iter()
        .filter(|a| a.agg != AggregateFunction::CountDistinct || folds(d, a))
        .filter_map(|a| a.window)
        .chain(
            d.pivots
                .iter()
                .filter_map(|p| p.window.as_ref().map(|(w, _)| *w)),
        )
        .collect();
    windows.sort();
    windows.dedup();
    let mut groups = Named::new("__g");
    let mut partials = Named::new("__p");
    let mut distinct = Named::new("__d");
    // `windows_holding` (sluice-transform's) counts them in one pass over the
    // times; it takes at most 127 starts.
    let tier = (!windows.is_empty()).then(|| {
        let starts: Vec<String> = windows.iter().map(|w| reference.minus(*w)).collect();
        groups.alias(if starts.len() <= i8::MAX as usize {
            format!("windows_holding({ts}, {})", starts.join(", "))
        } else {
            starts
                .iter()
                .map(|s| format!("CAST({ts} >= {s} AS TINYINT)"))
                .collect::<Vec<_>>()
                .join(" + ")
        })
    });
    let conds = |groups: &mut Named, window: Option<Duration>, filter: Option<&str>| {
        let mut c = vec![];
        if let (Some(w), Some(tier)) = (window, &tier) {
            let i = windows.iter().position(|x| *x == w).unwrap_or_default();
            c.push(format!("{tier} >= {}", windows.len() - i));
        }
        if let Some(f) = filter {
            c.push(groups.alias(format!("({f})")));
        }
        c
    };
    let filtered = |body: String, conds: &[String]| {
        if conds.is_empty() {
            body
        } else {
            format!("{body} FILTER (WHERE {})", conds.join(" AND "))
        }
    };

    let mut select: Vec<String> = keys.clone();
    select.push(format!(
        "max({}) AS {ts}",
        partials.alias(format!("max({ts})"))
    ));
    if let Some(c) = &def.created {
        let c = quote(c);
        select.push(format!(
            "max({}) AS {c}",
            partials.alias(format!("max({c})"))
        ));
    }
    for a in &d.aggregates {
        let col = a.column.as_deref().map(quote);
        let c = conds(&mut groups, a.window, a.filter.as_deref());
        let count = |partials: &mut Named| match &col {
            Some(col) => partials.alias(format!("count({col})")),
            None => partials.alias("count(*)".into()),
        };
        let every =
            every_value(d, categories, a).filter(|_| a.agg == AggregateFunction::CountDistinct);
        let value = match (a.agg, &col) {
            (AggregateFunction::CountDistinct, Some(col)) if every.is_some() => {
                let values = every.unwrap_or_default();
                // Every value the column holds is known (a pivot found them in
                // the data): each is a bit, a value's rows that pass set it,
                // and the bits set are counted, all in the second step's
                // `GROUP BY`.
                let value = groups.alias(col.clone());
                let bit = distinct.alias(format!(
                    "CASE CAST({value} AS VARCHAR) {} END",
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| format!("WHEN {} THEN {}", sql_string(v), 1i64 << i))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                let set = filtered(format!("bit_or({bit})"), &c);
                let bits: Vec<String> = (0..values.len())
                    .map(|i| format!("(({set} >> {i}) & 1)"))
                    .collect();
                format!("coalesce({}, 0)", bits.join(" + "))
            }
            (AggregateFunction::CountDistinct, Some(col)) if folds(d, a) => {
                // The first step's rows are unique per value (a key of it),
                // window and filter: a value counts when any of its rows
                // passes, marked on one of its rows. A `count(DISTINCT)`
                // here would build a hash set per entity and window.
                let value = groups.alias(col.clone());
                let mut passes = vec![format!("{value} IS NOT NULL")];
                passes.extend(c);
                let by = format!("PARTITION BY {}, {value}", keys.join(", "));
                let mark = distinct.alias(format!(
                    "CASE WHEN row_number() OVER ({by}) = 1 THEN max(CAST(({}) AS BIGINT)) OVER ({by}) END",
                    passes.join(" AND ")
                ));
                format!("coalesce(sum({mark}), 0)")
            }
            (AggregateFunction::CountDistinct, _) => continue,
            (AggregateFunction::Count, _) => {
                format!(
                    "coalesce({}, 0)",
                    filtered(format!("sum({})", count(&mut partials)), &c)
                )
            }
            (AggregateFunction::Sum, Some(col)) => filtered(
                format!("sum({})", partials.alias(format!("sum({col})"))),
                &c,
            ),
            (AggregateFunction::Mean, Some(col)) => {
                // `avg` sums as doubles and divides by the count of values.
                let is_double = a.column.as_deref().and_then(type_of) == Some(DataType::Float64);
                let sum = if is_double {
                    partials.alias(format!("sum({col})"))
                } else {
                    partials.alias(format!("sum(CAST({col} AS DOUBLE))"))
                };
                format!(
                    "{} / {}",
                    filtered(format!("sum({sum})"), &c),
                    filtered(format!("sum({})", count(&mut partials)), &c)
                )
            }
            (AggregateFunction::Min, Some(col)) => filtered(
                format!("min({})", partials.alias(format!("min({col})"))),
                &c,
            ),
            (AggregateFunction::Max, Some(col)) => filtered(
                format!("max({})", partials.alias(format!("max({col})"))),
                &c,
            ),
            // Stddev and last are not two-step views; min, max, sum and mean
            // without a column were refused when the view was read.
            _ => continue,
        };
        select.push(format!("{value} AS {}", quote(&a.name)));
    }
    for (i, p) in d.pivots.iter().enumerate() {
        let cats = p.categories(categories.get(i));
        let category = groups.alias(quote(&p.column));
        let window = p.window.as_ref().map(|(w, _)| *w);
        for cat in cats {
            let mut c = conds(&mut groups, window, p.filter.as_deref());
            c.insert(0, format!("{category} = {}", sql_string(&cat)));
            let (sum_col, count_col) = p.columns(&cat);
            if let (Some(v), Some(name)) = (&p.value, sum_col) {
                let sum = partials.alias(format!("sum({})", quote(v)));
                select.push(format!(
                    "coalesce({}, 0) AS {}",
                    filtered(format!("sum({sum})"), &c),
                    quote(&name)
                ));
            }
            let rows = partials.alias("count(*)".into());
            select.push(format!(
                "coalesce({}, 0) AS {}",
                filtered(format!("sum({rows})"), &c),
                quote(&count_col)
            ));
        }
    }
    let mut inner: Vec<String> = keys.clone();
    inner.extend(groups.select());
    inner.extend(partials.select());
    let mut by = keys.clone();
    by.extend(groups.exprs.iter().cloned());
    let mut partial = format!(
        "(SELECT {} FROM {} WHERE {where_} GROUP BY {}) AS __partial",
        inner.join(", "),
        quote(d.source.as_str()),
        by.join(", "),
    );
    if !distinct.exprs.is_empty() {
        let marks: Vec<String> = distinct.select().collect();
        partial = format!(
            "(SELECT *, {} FROM {partial}) AS __marked",
            marks.join(", ")
        );
    }
    format!(
        "SELECT {} FROM {partial} GROUP BY {}",
        select.join(",\n  "),
        keys.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregate(name: &str, agg: AggregateFunction, column: Option<&str>) -> Aggregate {
        Aggregate {
            name: name.into(),
            agg,
            column: column.map(str::to_string),
            window: Some(Duration::from_secs(86_400)),
            filter: Some("kind = 'buy'".into()),
            ignore_nulls: true,
            closed_left: false,
            column_at: Location::new("sluice.toml", 1, 1),
            filter_origin: None,
        }
    }

    /// A view of `user` over `events` as of its newest event, with its
    /// reference time and the source's column types.
    fn view(
        aggregates: Vec<Aggregate>,
        pivots: Vec<Pivot>,
    ) -> (
        FeatureDef,
        Declared,
        TimeLiteral,
        impl Fn(&str) -> Option<DataType>,
    ) {
        let def = FeatureDef {
            entity: vec!["user".into()],
            timestamp: "ts".into(),
            created: None,
            ttl: None,
            body: FeatureBody::Sql {
                sql: String::new(),
                origin: SqlOrigin {
                    file: "sluice.toml".into(),
                    line: 1,
                    column: 1,
                },
            },
            refresh: None,
            tiles: None,
            written_at: vec![],
        };
        let d = Declared {
            source: AssetName::new("events").expect("name"),
            as_of: AsOf::Newest,
            spine_anchored: false,
            aggregates,
            pivots,
            derived: vec![],
        };
        let reference = TimeLiteral {
            micros: 0,
            data_type: DataType::Timestamp(TimeUnit::Microsecond, None),
        };
        let type_of = |c: &str| match c {
            "amount" => Some(DataType::Float64),
            "n" => Some(DataType::Int32),
            "price" => Some(DataType::Decimal128(10, 2)),
            "name" => Some(DataType::Utf8),
            _ => None,
        };
        (def, d, reference, type_of)
    }

    fn two_step(aggregates: Vec<Aggregate>, pivots: Vec<Pivot>) -> Option<String> {
        let (def, d, reference, type_of) = view(aggregates, pivots);
        two_step_applies(&def, &d, &type_of)
            .then(|| two_step_sql(&def, &d, &reference, &[], &type_of, "TRUE"))
    }

    /// The view's query as `FeatureDef::sql` writes it: two steps where they
    /// apply, one where a feature does not combine from partials.
    #[test]
    fn the_views_query_takes_two_steps_where_they_apply() {
        use AggregateFunction::*;
        let query = |aggregates| {
            let (def, d, reference, type_of) = view(aggregates, vec![]);
            declared_sql(&def, &d, Some(&reference), &[], &type_of)
        };
        let sql = query(vec![aggregate("a", Sum, Some("amount"))]);
        assert!(sql.contains(") AS __partial GROUP BY"), "{sql}");
        let sql = query(vec![
            aggregate("a", Sum, Some("amount")),
            aggregate("s", Stddev, Some("amount")),
        ]);
        assert!(!sql.contains("__partial"), "{sql}");
        assert!(sql.contains("stddev_samp(\"amount\")"), "{sql}");
    }

    #[test]
    fn only_aggregates_that_combine_from_partials_take_two_steps() {
        use AggregateFunction::*;
        let aggregates = vec![
            aggregate("a", Sum, Some("amount")),
            aggregate("b", Mean, Some("n")),
            aggregate("c", Count, None),
            aggregate("d", Min, Some("name")),
            aggregate("e", CountDistinct, Some("name")),
        ];
        let sql = two_step(aggregates.clone(), vec![]).expect("two steps");
        // The window and the filter are each one group key of the first step
        // (written in its select and its GROUP BY); the second step reads them.
        let (second, first) = sql.split_once(" FROM (SELECT ").expect("two steps");
        for key in ["windows_holding(\"ts\", arrow_cast", "kind = 'buy'"] {
            assert_eq!(first.matches(key).count(), 2, "{sql}");
            assert_eq!(second.matches(key).count(), 0, "{sql}");
        }
        assert!(sql.contains("sum(CAST(\"n\" AS DOUBLE))"), "{sql}");
        // A distinct count is left to the query beside, unless its column is a
        // pivot's, a key of the first step.
        assert!(!sql.contains("DISTINCT"), "{sql}");
        let pivot = Pivot {
            name: "by_name".into(),
            column: "name".into(),
            value: Some("amount".into()),
            values: Some(vec!["x".into()]),
            window: None,
            filter: None,
            column_at: Location::new("sluice.toml", 1, 1),
            value_at: None,
            filter_origin: None,
        };
        let sql = two_step(aggregates.clone(), vec![pivot.clone()]).expect("two steps");
        // A pivot's column is a key of the first step: each value is marked on
        // one of its rows when any of its rows passes the window and filter.
        assert!(sql.contains("coalesce(sum(__d0), 0) AS \"e\""), "{sql}");
        assert!(
            sql.contains(
                "CASE WHEN row_number() OVER (PARTITION BY \"user\", __g2) = 1 THEN \
                 max(CAST((__g2 IS NOT NULL AND __g0 >= 1 AND __g1) AS BIGINT)) \
                 OVER (PARTITION BY \"user\", __g2) END AS __d0"
            ),
            "{sql}"
        );
        assert!(!sql.contains("DISTINCT"), "{sql}");
        // A pivot that found its values in the data knows every value: each
        // is a bit, and the distinct count counts the bits set, with no window.
        let found = Pivot {
            values: None,
            ..pivot
        };
        let (def, d, reference, type_of) = view(aggregates, vec![found]);
        let values = vec!["it's".to_string(), "x".to_string(), "y".to_string()];
        let sql = two_step_sql(&def, &d, &reference, &[values], &type_of, "TRUE");
        assert!(
            sql.contains(
                "CASE CAST(__g2 AS VARCHAR) WHEN 'it''s' THEN 1 WHEN 'x' THEN 2 WHEN 'y' THEN 4 END AS __d0"
            ),
            "{sql}"
        );
        let set = "bit_or(__d0) FILTER (WHERE __g0 >= 1 AND __g1)";
        assert!(
            sql.contains(&format!(
                "coalesce((({set} >> 0) & 1) + (({set} >> 1) & 1) + (({set} >> 2) & 1), 0) AS \"e\""
            )),
            "{sql}"
        );
        assert!(!sql.contains("OVER"), "{sql}");
        for refused in [
            aggregate("s", Stddev, Some("amount")),
            aggregate("l", Last, Some("amount")),
            aggregate("p", Sum, Some("price")),
            aggregate("m", Mean, Some("name")),
        ] {
            assert_eq!(two_step(vec![refused.clone()], vec![]), None, "{refused:?}");
        }
    }
}
