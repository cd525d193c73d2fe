//! Tests of the point-in-time join: against a naive reference with proptest,
//! fixed cases for every rule, and rows from the future.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::SessionConfig;
use futures::StreamExt;
use proptest::prelude::*;

use super::*;

/// A feature row: key, event time, created time, value.
type FRow = (Option<i64>, i64, i64, f64);
/// A spine row: key, time, label.
type SRow = (Option<i64>, Option<i64>, i64);
/// An output row: label, key, time, one feature per view.
type OutRow = (i64, Option<i64>, Option<i64>, Vec<Option<f64>>);

const SECOND: i64 = 1_000_000;

fn ts_field(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, None),
        nullable,
    )
}

fn view_batches(rows: &[FRow], chunk: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        ts_field("ts", false),
        ts_field("created", false),
        Field::new("f", DataType::Float64, true),
    ]));
    let batches = rows
        .chunks(chunk.max(1))
        .map(|c| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter(c.iter().map(|r| r.0))),
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        c.iter().map(|r| r.1 * SECOND),
                    )),
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        c.iter().map(|r| r.2 * SECOND),
                    )),
                    Arc::new(Float64Array::from_iter_values(c.iter().map(|r| r.3))),
                ],
            )
            .unwrap()
        })
        .collect();
    (schema, batches)
}

fn spine_batches(rows: &[SRow], chunk: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Int64, false),
        Field::new("k", DataType::Int64, true),
        ts_field("t", true),
    ]));
    let batches = rows
        .chunks(chunk.max(1))
        .map(|c| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(c.iter().map(|r| r.2))),
                    Arc::new(Int64Array::from_iter(c.iter().map(|r| r.0))),
                    Arc::new(TimestampMicrosecondArray::from_iter(
                        c.iter().map(|r| r.1.map(|t| t * SECOND)),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    (schema, batches)
}

/// Runs the join; returns per spine row (label, k, t, feature).
fn join(spine: &[SRow], views: &[(Vec<FRow>, Option<i64>)], batch_size: usize) -> Vec<OutRow> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_batch_size(batch_size)
                .with_target_partitions(2),
        );
        let mut inputs = vec![];
        for (i, (rows, ttl)) in views.iter().enumerate() {
            let (schema, batches) = view_batches(rows, batch_size);
            // Two partitions, so the sort merges.
            let half = batches.len() / 2;
            let parts = vec![batches[..half].to_vec(), batches[half..].to_vec()];
            let table = MemTable::try_new(schema, parts).unwrap();
            inputs.push(ViewInput {
                view: format!("v{i}"),
                rows: ctx.read_table(Arc::new(table)).unwrap(),
                entity: vec!["k".into()],
                timestamp: "ts".into(),
                created: Some("created".into()),
                ttl: ttl.map(|t| Duration::from_secs(t as u64)),
                features: vec![("f".into(), format!("f{i}"))],
            });
        }
        let (schema, batches) = spine_batches(spine, batch_size);
        let stream = MemoryStream::try_new(batches, schema, None).unwrap();
        let out = point_in_time_join(&ctx, Box::pin(stream), "t", &inputs)
            .await
            .unwrap();
        let batches: Vec<RecordBatch> = out.map(|b| b.unwrap()).collect().await;
        let mut rows = vec![];
        for b in batches {
            assert_eq!(b.num_columns(), 3 + views.len());
            let label = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let k = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            let t = b
                .column(2)
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            for i in 0..b.num_rows() {
                let feats = (0..views.len())
                    .map(|v| {
                        let f = b
                            .column(3 + v)
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .unwrap();
                        (!f.is_null(i)).then(|| f.value(i))
                    })
                    .collect();
                rows.push((
                    label.value(i),
                    (!k.is_null(i)).then(|| k.value(i)),
                    (!t.is_null(i)).then(|| t.value(i) / SECOND),
                    feats,
                ));
            }
        }
        rows
    })
}

/// Feast's definition, row by row, with no cleverness.
fn naive(spine: &[SRow], views: &[(Vec<FRow>, Option<i64>)]) -> Vec<OutRow> {
    spine
        .iter()
        .map(|&(k, t, label)| {
            let feats = views
                .iter()
                .map(|(rows, ttl)| {
                    let (Some(k), Some(t)) = (k, t) else {
                        return None;
                    };
                    rows.iter()
                        .filter(|r| r.0 == Some(k) && r.1 <= t)
                        .filter(|r| ttl.is_none_or(|ttl| r.1 >= t - ttl))
                        .max_by_key(|r| (r.1, r.2))
                        .map(|r| r.3)
                })
                .collect();
            (label, k, t, feats)
        })
        .collect()
}

fn feature_rows() -> impl Strategy<Value = Vec<FRow>> {
    prop::collection::vec(
        (prop::option::weighted(0.9, 0i64..6), 0i64..20, 0i64..3),
        0..60,
    )
    .prop_map(|mut rows| {
        // One row per (key, event, created): a tie on all three has no winner.
        rows.sort();
        rows.dedup();
        // Out of order, with values that identify the row.
        let n = rows.len();
        let mut out: Vec<FRow> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (k, t, c))| (k, t, c, i as f64 + 0.5))
            .collect();
        out.reverse();
        if n > 2 {
            out.swap(0, n / 2);
        }
        out
    })
}

fn spine_rows() -> impl Strategy<Value = Vec<SRow>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.9, 0i64..7),
            prop::option::weighted(0.95, -2i64..23),
        ),
        0..50,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (k, t))| (k, t, i as i64))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn matches_the_naive_reference(
        spine in spine_rows(),
        a in feature_rows(),
        b in feature_rows(),
        ttl_a in prop::option::of(0i64..8),
        batch in 1usize..8,
    ) {
        let views = vec![(a, ttl_a), (b, None)];
        prop_assert_eq!(join(&spine, &views, batch), naive(&spine, &views));
    }
}

/// Every rule, with the expected rows written out by hand.
#[test]
fn fixed_cases() {
    let view: Vec<FRow> = vec![
        // key 1: events at 10 (two created times), 5 and 20 (the future for T=15).
        (Some(1), 10, 1, 1.0),
        (Some(1), 10, 2, 2.0),
        (Some(1), 5, 0, 3.0),
        (Some(1), 20, 0, 4.0),
        // key 2: one event at 3.
        (Some(2), 3, 0, 5.0),
        // a row without a key matches nothing.
        (None, 1, 0, 6.0),
    ];
    let spine: Vec<SRow> = vec![
        (Some(1), Some(15), 0), // greatest event <= 15 is 10; tie -> created 2 -> 2.0
        (Some(1), Some(10), 1), // event exactly at T counts -> 2.0
        (Some(1), Some(9), 2),  // only 5 is <= 9 -> 3.0
        (Some(1), Some(4), 3),  // nothing at or before 4 -> null
        (Some(2), Some(13), 4), // ttl 10: 3 >= 13 - 10 -> at the edge, kept -> 5.0
        (Some(2), Some(14), 5), // 3 < 14 - 10 -> too old -> null
        (Some(3), Some(30), 6), // entity absent from the view -> null
        (None, Some(30), 7),    // null key -> null
        (Some(1), None, 8),     // null time -> null
        (Some(1), Some(25), 9), // 20 -> 4.0 (spine rows keep their order)
    ];
    let got = join(&spine, &[(view, Some(10))], 2);
    let expected: Vec<Option<f64>> = vec![
        Some(2.0),
        Some(2.0),
        Some(3.0),
        None,
        Some(5.0),
        None,
        None,
        None,
        None,
        Some(4.0),
    ];
    assert_eq!(got.len(), spine.len());
    for (i, row) in got.iter().enumerate() {
        assert_eq!(row.0, i as i64, "spine order");
        assert_eq!(row.3, vec![expected[i]], "spine row {i}");
    }
    // ttl 0 (unlimited) keeps the old row for key 2.
    let view2: Vec<FRow> = vec![(Some(2), 3, 0, 5.0)];
    let got = join(&[(Some(2), Some(1000), 0)], &[(view2, None)], 4);
    assert_eq!(got[0].3, vec![Some(5.0)]);
}

/// Rows from after a spine row's time never change its features.
#[test]
fn future_rows_do_not_change_the_training_set() {
    let past: Vec<FRow> = (0..30).map(|i| (Some(i % 4), i, 0, i as f64)).collect();
    let spine: Vec<SRow> = (0..20).map(|i| (Some(i % 5), Some(29), i)).collect();
    let before = join(&spine, &[(past.clone(), None)], 3);
    let mut with_future = past;
    for i in 0..40i64 {
        let at = (i as usize * 7) % with_future.len();
        with_future.insert(at, (Some(i % 5), 30 + i, 0, -1.0));
    }
    let after = join(&spine, &[(with_future, None)], 3);
    assert_eq!(before, after);
}
