//! Windows as of spine rows: hand-computed cases, and a naive reference that scans
//! every event of the entity for each spine row.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, TimeUnit,
};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use proptest::prelude::*;

use super::*;

pub(super) const SECOND: i64 = 1_000_000;

fn ts_field(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}

fn seconds(v: &[Option<i64>]) -> Arc<TimestampMicrosecondArray> {
    Arc::new(TimestampMicrosecondArray::from_iter(
        v.iter().map(|t| t.map(|t| t * SECOND)),
    ))
}

/// What a test asks for besides the data.
pub(super) struct Setup<'a> {
    pub(super) entity: &'a [&'a str],
    pub(super) created: Option<&'a str>,
    pub(super) ttl: Option<i64>,
    pub(super) features: Vec<WindowFeature>,
    pub(super) batch: usize,
}

impl<'a> Setup<'a> {
    pub(super) fn new(features: Vec<WindowFeature>) -> Self {
        Setup {
            entity: &["k"],
            created: Some("created"),
            ttl: None,
            features,
            batch: 3,
        }
    }
}

/// Runs `spine_windows` on one input, the events in two partitions and both sides
/// in batches of `setup.batch` rows; returns the output as one batch.
pub(super) fn run(spine: RecordBatch, events: RecordBatch, setup: &Setup) -> Result<RecordBatch> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    rt.block_on(async {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_batch_size(setup.batch)
                .with_target_partitions(2),
        );
        let chunks = |b: &RecordBatch| -> Vec<RecordBatch> {
            (0..b.num_rows())
                .step_by(setup.batch)
                .map(|at| b.slice(at, setup.batch.min(b.num_rows() - at)))
                .collect()
        };
        let parts = chunks(&events);
        let half = parts.len() / 2;
        let table = MemTable::try_new(
            events.schema(),
            vec![parts[..half].to_vec(), parts[half..].to_vec()],
        )?;
        let input = EventWindows {
            name: "events".into(),
            events: ctx.read_table(Arc::new(table))?,
            entity: setup.entity.iter().map(|k| k.to_string()).collect(),
            timestamp: "ts".into(),
            created: setup.created.map(str::to_string),
            ttl: setup.ttl.map(|t| Duration::from_secs(t as u64)),
            features: setup.features.clone(),
        };
        let stream = MemoryStream::try_new(chunks(&spine), spine.schema(), None)?;
        let out = spine_windows(&ctx, Box::pin(stream), "t", &[input]).await?;
        let schema = out.schema();
        let batches: Vec<RecordBatch> = out
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        Ok(concat_batches(&schema, &batches)?)
    })
}

/// A value of an output column, for comparisons.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum V {
    Null,
    I(i64),
    F(f64),
    S(String),
}

pub(super) fn values(batch: &RecordBatch, name: &str) -> Vec<V> {
    let Ok(i) = batch.schema().index_of(name) else {
        panic!("no column {name}");
    };
    let c = batch.column(i);
    (0..c.len())
        .map(|r| {
            if c.is_null(r) {
                return V::Null;
            }
            match c.data_type() {
                DataType::Int64 => V::I(c.as_primitive::<Int64Type>().value(r)),
                DataType::Float64 => V::F(c.as_primitive::<Float64Type>().value(r)),
                DataType::Utf8 => V::S(c.as_string::<i32>().value(r).to_string()),
                t => panic!("unexpected type {t}"),
            }
        })
        .collect()
}

/// One event of the generated data: key, time, created, x, n, c, f.
#[derive(Debug, Clone)]
pub(super) struct Ev {
    pub(super) k: Option<i64>,
    pub(super) ts: Option<i64>,
    pub(super) created: i64,
    pub(super) x: Option<f64>,
    pub(super) n: Option<i64>,
    pub(super) c: Option<String>,
    pub(super) f: Option<bool>,
}

pub(super) fn events_batch(rows: &[Ev]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        ts_field("ts"),
        ts_field("created"),
        Field::new("x", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("c", DataType::Utf8, true),
        Field::new("f", DataType::Boolean, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.k))),
            seconds(&rows.iter().map(|r| r.ts).collect::<Vec<_>>()),
            seconds(&rows.iter().map(|r| Some(r.created)).collect::<Vec<_>>()),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.x))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.n))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.c.clone()))),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.f))),
        ],
    )
    .unwrap()
}

/// Spine rows: key, time; the label is the row's position.
pub(super) fn spine_batch(rows: &[(Option<i64>, Option<i64>)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Int64, false),
        Field::new("k", DataType::Int64, true),
        ts_field("t"),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.0))),
            seconds(&rows.iter().map(|r| r.1).collect::<Vec<_>>()),
        ],
    )
    .unwrap()
}

fn ev(k: i64, ts: i64, x: Option<f64>) -> Ev {
    Ev {
        k: Some(k),
        ts: Some(ts),
        created: 0,
        x,
        n: x.map(|x| x as i64),
        c: x.map(|x| format!("v{x}")),
        f: None,
    }
}

fn feature(name: &str, agg: WindowAgg, column: Option<&str>, window: Option<i64>) -> WindowFeature {
    let f = WindowFeature::new(name, agg, column);
    match window {
        Some(w) => f.over(Duration::from_secs(w as u64)),
        None => f,
    }
}

fn ints(v: &[Option<i64>]) -> Vec<V> {
    v.iter().map(|x| x.map_or(V::Null, V::I)).collect()
}

fn floats(v: &[Option<f64>]) -> Vec<V> {
    v.iter().map(|x| x.map_or(V::Null, V::F)).collect()
}

#[test]
fn window_bounds_closed_right_and_left() -> Result<()> {
    // Entity 1: events at 0, 5 and 10; window 5 s.
    let events = events_batch(&[
        ev(1, 10, Some(4.0)),
        ev(1, 0, Some(1.0)),
        ev(1, 5, Some(2.0)),
    ]);
    let spine = spine_batch(&[
        (Some(1), Some(10)), // [5, 10] holds 5 and 10; [5, 10) holds 5
        (Some(1), Some(15)), // [10, 15] holds 10; [10, 15) too
        (Some(1), Some(4)),  // [-1, 4] holds 0
        (Some(1), Some(-1)), // nothing
        (Some(1), Some(5)),  // [0, 5] holds 0 and 5; [0, 5) holds 0
    ]);
    let w = Some(5);
    let left = |f: WindowFeature| f.closed(Closed::Left);
    let setup = Setup::new(vec![
        feature("count", WindowAgg::Count, None, w),
        feature("sum", WindowAgg::Sum, Some("x"), w),
        left(feature("count_l", WindowAgg::Count, None, w)),
        left(feature("sum_l", WindowAgg::Sum, Some("x"), w)),
        feature("all", WindowAgg::Count, None, None),
        left(feature("all_l", WindowAgg::Count, None, None)),
        feature("last", WindowAgg::Last, Some("x"), w),
        left(feature("last_l", WindowAgg::Last, Some("x"), w)),
    ]);
    let out = run(spine, events, &setup)?;
    assert_eq!(
        values(&out, "label"),
        ints(&[Some(0), Some(1), Some(2), Some(3), Some(4)])
    );
    assert_eq!(
        values(&out, "count"),
        ints(&[Some(2), Some(1), Some(1), Some(0), Some(2)])
    );
    assert_eq!(
        values(&out, "sum"),
        floats(&[Some(6.0), Some(4.0), Some(1.0), None, Some(3.0)])
    );
    assert_eq!(
        values(&out, "count_l"),
        ints(&[Some(1), Some(1), Some(1), Some(0), Some(1)])
    );
    assert_eq!(
        values(&out, "sum_l"),
        floats(&[Some(2.0), Some(4.0), Some(1.0), None, Some(1.0)])
    );
    assert_eq!(
        values(&out, "all"),
        ints(&[Some(3), Some(3), Some(1), Some(0), Some(2)])
    );
    assert_eq!(
        values(&out, "all_l"),
        ints(&[Some(2), Some(3), Some(1), Some(0), Some(1)])
    );
    assert_eq!(
        values(&out, "last"),
        floats(&[Some(4.0), Some(4.0), Some(1.0), None, Some(2.0)])
    );
    assert_eq!(
        values(&out, "last_l"),
        floats(&[Some(2.0), Some(4.0), Some(1.0), None, Some(1.0)])
    );
    Ok(())
}

#[test]
fn every_aggregate_over_nulls_filters_and_ties() -> Result<()> {
    let mut rows = vec![
        ev(1, 1, Some(3.0)),
        ev(1, 2, None),
        ev(1, 4, Some(1.0)),
        ev(1, 4, Some(3.0)),
        ev(1, 6, None),
        ev(2, 3, Some(7.0)),
    ];
    // Two events at 4: the one created later is the newest.
    rows[2].created = 2;
    rows[3].created = 1;
    rows[0].f = Some(true);
    rows[2].f = Some(false);
    rows[3].f = Some(true);
    rows[4].f = Some(true);
    let events = events_batch(&rows);
    let spine = spine_batch(&[
        (Some(1), Some(6)),
        (Some(1), Some(4)),
        (Some(2), Some(100)),
        (Some(3), Some(6)), // no events
        (None, Some(6)),    // a null key matches nothing
        (Some(1), None),    // no time: no window
    ]);
    let setup = Setup::new(vec![
        feature("rows", WindowAgg::Count, None, None),
        feature("values", WindowAgg::Count, Some("x"), None),
        feature("distinct", WindowAgg::CountDistinct, Some("x"), None),
        feature("sum", WindowAgg::Sum, Some("n"), None),
        feature("zsum", WindowAgg::ZeroFilledSum, Some("n"), None),
        feature("mean", WindowAgg::Mean, Some("x"), None),
        feature("min", WindowAgg::Min, Some("c"), None),
        feature("max", WindowAgg::Max, Some("x"), None),
        feature("sd", WindowAgg::Stddev, Some("x"), None),
        feature("last", WindowAgg::Last, Some("x"), None),
        feature("last_n", WindowAgg::LastWithNulls, Some("x"), None),
        feature("f_rows", WindowAgg::Count, None, None).filtered("f"),
        feature("f_sum", WindowAgg::Sum, Some("x"), None).filtered("f"),
    ]);
    let out = run(spine, events, &setup)?;
    let n = None;
    assert_eq!(
        values(&out, "rows"),
        ints(&[Some(5), Some(4), Some(1), Some(0), Some(0), n])
    );
    assert_eq!(
        values(&out, "values"),
        ints(&[Some(3), Some(3), Some(1), Some(0), Some(0), n])
    );
    assert_eq!(
        values(&out, "distinct"),
        ints(&[Some(2), Some(2), Some(1), Some(0), Some(0), n])
    );
    assert_eq!(
        values(&out, "sum"),
        ints(&[Some(7), Some(7), Some(7), n, n, n])
    );
    assert_eq!(
        values(&out, "zsum"),
        ints(&[Some(7), Some(7), Some(7), Some(0), Some(0), n])
    );
    let mean = 7.0 / 3.0;
    assert_eq!(
        values(&out, "mean"),
        floats(&[Some(mean), Some(mean), Some(7.0), None, None, None])
    );
    let min = |s: &str| V::S(s.into());
    assert_eq!(
        values(&out, "min"),
        vec![min("v1"), min("v1"), min("v7"), V::Null, V::Null, V::Null]
    );
    assert_eq!(
        values(&out, "max"),
        floats(&[Some(3.0), Some(3.0), Some(7.0), None, None, None])
    );
    let sd = (((3.0 - mean) * (3.0 - mean) * 2.0 + (1.0 - mean) * (1.0 - mean)) / 2.0f64).sqrt();
    let got = values(&out, "sd");
    for v in &got[..2] {
        assert!(matches!(v, V::F(x) if (x - sd).abs() < 1e-12), "{got:?}");
    }
    assert_eq!(got[2..], floats(&[None, None, None, None])[..]);
    // At 4 the event created later (value 1) is the newest; at 6 the newest is null.
    assert_eq!(
        values(&out, "last"),
        floats(&[Some(1.0), Some(1.0), Some(7.0), None, None, None])
    );
    assert_eq!(
        values(&out, "last_n"),
        floats(&[None, Some(1.0), Some(7.0), None, None, None])
    );
    // The filter: true at 1, 4 (value 3) and 6 (null value); false and null elsewhere.
    assert_eq!(
        values(&out, "f_rows"),
        ints(&[Some(3), Some(2), Some(0), Some(0), Some(0), n])
    );
    assert_eq!(
        values(&out, "f_sum"),
        floats(&[Some(6.0), Some(6.0), None, None, None, None])
    );
    Ok(())
}

#[test]
fn ttl_cuts_every_window() -> Result<()> {
    let events = events_batch(&[
        ev(1, 0, Some(1.0)),
        ev(1, 7, Some(2.0)),
        ev(1, 10, Some(4.0)),
    ]);
    let spine = spine_batch(&[(Some(1), Some(10)), (Some(1), Some(13))]);
    let mut setup = Setup::new(vec![
        feature("all", WindowAgg::Sum, Some("x"), None),
        feature("w8", WindowAgg::Sum, Some("x"), Some(8)),
        feature("w2", WindowAgg::Sum, Some("x"), Some(2)),
    ]);
    setup.ttl = Some(3);
    let out = run(spine, events, &setup)?;
    // ttl 3: [7, 10] and [10, 13]; the 2 s window stays [8, 10] and [11, 13].
    assert_eq!(values(&out, "all"), floats(&[Some(6.0), Some(4.0)]));
    assert_eq!(values(&out, "w8"), floats(&[Some(6.0), Some(4.0)]));
    assert_eq!(values(&out, "w2"), floats(&[Some(4.0), None]));
    Ok(())
}

#[test]
fn two_key_columns_a_date_spine_and_value_types() -> Result<()> {
    const DAY: i64 = 86_400;
    let events = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("region", DataType::Utf8, true),
            Field::new("k", DataType::Int64, true),
            ts_field("ts"),
            Field::new("q", DataType::Int32, true),
        ])),
        vec![
            Arc::new(StringArray::from(vec![
                Some("eu"),
                Some("eu"),
                Some("us"),
                None,
            ])),
            Arc::new(Int64Array::from(vec![Some(1), Some(1), Some(1), Some(1)])),
            seconds(&[Some(DAY), Some(2 * DAY + 5), Some(DAY), Some(DAY)]),
            Arc::new(Int32Array::from(vec![Some(2), Some(3), Some(5), Some(7)])),
        ],
    )?;
    // The spine's time is a date: midnight UTC.
    let spine = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("region", DataType::Utf8, true),
            Field::new("t", DataType::Date32, true),
        ])),
        vec![
            Arc::new(Int32Array::from(vec![Some(1), Some(1), Some(1), Some(1)])),
            Arc::new(StringArray::from(vec![
                Some("eu"),
                Some("us"),
                Some("eu"),
                None,
            ])),
            Arc::new(Date32Array::from(vec![Some(3), Some(1), Some(1), Some(3)])),
        ],
    )?;
    let mut setup = Setup::new(vec![
        feature("sum", WindowAgg::Sum, Some("q"), None),
        feature("max", WindowAgg::Max, Some("q"), None),
        feature("week", WindowAgg::Count, None, Some(7 * DAY)),
    ]);
    setup.entity = &["region", "k"];
    setup.created = None;
    let out = run(spine, events, &setup)?;
    let schema = out.schema();
    assert_eq!(schema.field_with_name("sum")?.data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("max")?.data_type(), &DataType::Int32);
    assert_eq!(
        values(&out, "sum"),
        ints(&[Some(5), Some(5), Some(2), None])
    );
    let max = out
        .column(schema.index_of("max")?)
        .as_primitive::<Int32Type>();
    assert_eq!(
        max.iter().collect::<Vec<_>>(),
        vec![Some(3), Some(5), Some(2), None]
    );
    assert_eq!(
        values(&out, "week"),
        ints(&[Some(2), Some(1), Some(1), Some(0)])
    );
    Ok(())
}

#[test]
fn a_feature_that_cannot_be_computed_is_refused() {
    let events = events_batch(&[ev(1, 0, Some(1.0))]);
    let spine = spine_batch(&[(Some(1), Some(0))]);
    for (f, message) in [
        (feature("a", WindowAgg::Sum, None, None), "needs a column"),
        (
            feature("a", WindowAgg::Mean, Some("c"), None),
            "not a number",
        ),
        (
            feature("a", WindowAgg::Max, Some("nope"), None),
            "no column `nope`",
        ),
        (
            feature("a", WindowAgg::Count, None, None).filtered("x"),
            "not a boolean",
        ),
        (
            feature("label", WindowAgg::Count, None, None),
            "already has a column",
        ),
    ] {
        let Err(e) = run(spine.clone(), events.clone(), &Setup::new(vec![f])) else {
            panic!("{message}: accepted");
        };
        assert!(e.to_string().contains(message), "{e}");
    }
}

/// The definition, row by row: every event of the entity, for each spine row.
fn naive(spine: &[(Option<i64>, Option<i64>)], events: &[Ev], setup: &Setup) -> Vec<Vec<V>> {
    let value = |e: &Ev, column: Option<&str>| match column {
        Some("x") => e.x.map_or(V::Null, V::F),
        Some("n") => e.n.map_or(V::Null, V::I),
        Some("c") => e.c.clone().map_or(V::Null, V::S),
        _ => V::I(1),
    };
    let as_f64 = |v: &V| match v {
        V::F(x) => *x,
        V::I(x) => *x as f64,
        _ => f64::NAN,
    };
    let cmp = |a: &V, b: &V| match (a, b) {
        (V::S(a), V::S(b)) => a.cmp(b),
        (V::I(a), V::I(b)) => a.cmp(b),
        _ => as_f64(a).total_cmp(&as_f64(b)),
    };
    spine
        .iter()
        .map(|&(k, t)| {
            setup
                .features
                .iter()
                .map(|f| {
                    let Some(t) = t else {
                        return V::Null;
                    };
                    let window = match (f.window.map(|w| w.as_secs() as i64), setup.ttl) {
                        (Some(w), Some(ttl)) => Some(w.min(ttl)),
                        (w, ttl) => w.or(ttl),
                    };
                    let mut inside: Vec<&Ev> = events
                        .iter()
                        .filter(|e| k.is_some() && e.k == k)
                        .filter(|e| match (e.ts, f.closed) {
                            (Some(s), Closed::Right) => s <= t,
                            (Some(s), Closed::Left) => s < t,
                            (None, _) => false,
                        })
                        .filter(|e| window.is_none_or(|w| e.ts.unwrap_or(0) >= t - w))
                        .filter(|e| f.filter.is_none() || e.f == Some(true))
                        .collect();
                    inside.sort_by_key(|e| (e.ts, e.created));
                    let col = f.column.as_deref();
                    let vals: Vec<V> = inside
                        .iter()
                        .map(|e| value(e, col))
                        .filter(|v| *v != V::Null)
                        .collect();
                    let nums: Vec<f64> = vals.iter().map(as_f64).collect();
                    let sum = || nums.iter().sum::<f64>();
                    match f.agg {
                        WindowAgg::Count => V::I(vals.len() as i64),
                        WindowAgg::CountDistinct => {
                            let mut d: Vec<&V> = vals.iter().collect();
                            d.sort_by(|a, b| cmp(a, b));
                            d.dedup();
                            V::I(d.len() as i64)
                        }
                        WindowAgg::Sum | WindowAgg::ZeroFilledSum => {
                            let zero = f.agg == WindowAgg::ZeroFilledSum;
                            match (col, vals.is_empty()) {
                                (Some("n"), true) if zero => V::I(0),
                                (Some("n"), false) => {
                                    V::I(vals.iter().map(|v| as_f64(v) as i64).sum())
                                }
                                (_, true) if zero => V::F(0.0),
                                (_, true) => V::Null,
                                (_, false) => V::F(sum()),
                            }
                        }
                        WindowAgg::Mean if !nums.is_empty() => V::F(sum() / nums.len() as f64),
                        WindowAgg::Stddev if nums.len() >= 2 => {
                            let mean = sum() / nums.len() as f64;
                            let m2: f64 = nums.iter().map(|x| (x - mean) * (x - mean)).sum();
                            V::F((m2 / (nums.len() - 1) as f64).sqrt())
                        }
                        WindowAgg::Min => vals
                            .iter()
                            .min_by(|a, b| cmp(a, b))
                            .cloned()
                            .unwrap_or(V::Null),
                        WindowAgg::Max => vals
                            .iter()
                            .max_by(|a, b| cmp(a, b))
                            .cloned()
                            .unwrap_or(V::Null),
                        WindowAgg::Last => vals.last().cloned().unwrap_or(V::Null),
                        WindowAgg::LastWithNulls => {
                            inside.last().map_or(V::Null, |e| value(e, col))
                        }
                        _ => V::Null,
                    }
                })
                .collect()
        })
        .collect()
}

/// Exact for everything but sums, means and standard deviations of floats
/// (relative 1e-9; the data are quarters, so equal values give exact zeros).
pub(super) fn close(got: &V, want: &V) -> bool {
    match (got, want) {
        (V::F(a), V::F(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
        _ => got == want,
    }
}

pub(super) fn generated_events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.9, 0i64..4),
            prop::option::weighted(0.95, 0i64..30),
            prop::option::weighted(0.85, -40i64..40),
            prop::option::weighted(0.85, -50i64..50),
            prop::option::weighted(0.85, 0u8..5),
            prop::option::weighted(0.9, any::<bool>()),
        ),
        0..80,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (k, ts, x, n, c, f))| Ev {
                k,
                ts,
                // Unique, and not in time order: ties at one time go to it.
                created: (i as i64 * 7) % 101,
                x: x.map(|x| x as f64 / 4.0),
                n,
                c: c.map(|c| ["a", "b", "c", "d", "e"][c as usize].to_string()),
                f,
            })
            .collect()
    })
}

pub(super) fn generated_features() -> impl Strategy<Value = Vec<WindowFeature>> {
    prop::collection::vec(
        (
            0usize..10,
            0usize..3,
            prop::option::weighted(0.8, 0i64..12),
            any::<bool>(),
            prop::bool::weighted(0.3),
        ),
        1..8,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (agg, col, window, left, filtered))| {
                let (agg, columns): (WindowAgg, &[Option<&str>]) = match agg {
                    0 => (WindowAgg::Sum, &[Some("x"), Some("n")]),
                    1 => (WindowAgg::ZeroFilledSum, &[Some("x"), Some("n")]),
                    2 => (WindowAgg::Mean, &[Some("x"), Some("n")]),
                    3 => (WindowAgg::Min, &[Some("x"), Some("n"), Some("c")]),
                    4 => (WindowAgg::Max, &[Some("x"), Some("n"), Some("c")]),
                    5 => (WindowAgg::Count, &[None, Some("x"), Some("c")]),
                    6 => (WindowAgg::CountDistinct, &[Some("c"), Some("n"), Some("x")]),
                    7 => (WindowAgg::Stddev, &[Some("x"), Some("n")]),
                    8 => (WindowAgg::Last, &[Some("x"), Some("n"), Some("c")]),
                    _ => (WindowAgg::LastWithNulls, &[Some("x"), Some("n"), Some("c")]),
                };
                let mut f = feature(&format!("f{i}"), agg, columns[col % columns.len()], window);
                if left {
                    f = f.closed(Closed::Left);
                }
                if filtered {
                    f = f.filtered("f");
                }
                f
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn matches_the_naive_reference(
        events in generated_events(),
        spine in prop::collection::vec(
            (prop::option::weighted(0.9, 0i64..5), prop::option::weighted(0.95, -2i64..34)),
            0..40,
        ),
        features in generated_features(),
        ttl in prop::option::weighted(0.2, 0i64..15),
        batch in 1usize..8,
    ) {
        let mut setup = Setup::new(features);
        setup.ttl = ttl;
        setup.batch = batch;
        let out = run(spine_batch(&spine), events_batch(&events), &setup)?;
        let want = naive(&spine, &events, &setup);
        prop_assert_eq!(out.num_rows(), spine.len());
        let labels = values(&out, "label");
        prop_assert_eq!(labels, (0..spine.len() as i64).map(V::I).collect::<Vec<_>>());
        for (j, f) in setup.features.iter().enumerate() {
            let got = values(&out, &f.name);
            for (i, row) in want.iter().enumerate() {
                prop_assert!(
                    close(&got[i], &row[j]),
                    "spine row {} {:?}, {:?}: got {:?}, want {:?}",
                    i, spine[i], f, got[i], row[j]
                );
            }
        }
    }
}
