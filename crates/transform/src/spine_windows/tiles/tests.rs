//! Tiles read at multiples of the tile equal the windows computed as of the
//! same spine times; reads at or after an entity's newest event are always
//! answered; reads before the history kept are refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::spine_windows::tests::{
    Ev, SECOND, Setup, V, close, events_batch, generated_events, generated_features, run,
    spine_batch, values,
};
use crate::spine_windows::{EventWindows, WindowFeature};

/// Tiles of `events` per key, built as a view's materialization builds them.
fn tiles(
    events: &[Ev],
    setup: &Setup,
    layout: TileLayout,
) -> Result<(TilePlan, HashMap<i64, Vec<u8>>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    rt.block_on(async {
        let ctx = SessionContext::new();
        let batch = events_batch(events);
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        let input = EventWindows {
            name: "events".into(),
            events: ctx.read_table(Arc::new(table))?,
            entity: vec!["k".into()],
            timestamp: "ts".into(),
            created: setup.created.map(str::to_string),
            ttl: setup.ttl.map(|t| Duration::from_secs(t as u64)),
            features: setup.features.clone(),
        };
        let (plan, mut stream) = build_tiles(&input, layout).await?;
        let mut out = HashMap::new();
        while let Some(b) = stream.next().await {
            let b: RecordBatch = b?;
            let keys = b.column(0).as_primitive::<Int64Type>();
            let blobs = b.column(1).as_binary::<i32>();
            for r in 0..b.num_rows() {
                out.insert(keys.value(r), blobs.value(r).to_vec());
            }
        }
        Ok((plan, out))
    })
}

/// A JSON value as the spine's output would hold it.
fn as_v(v: &Value) -> V {
    match v {
        Value::Null => V::Null,
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| V::F(n.as_f64().unwrap_or(f64::NAN)), V::I),
        Value::String(s) => V::S(s.clone()),
        other => V::S(other.to_string()),
    }
}

/// `features` with every window and the ttl in tiles of `tile` seconds.
fn in_tiles(features: Vec<WindowFeature>, tile: u64) -> Vec<WindowFeature> {
    features
        .into_iter()
        .map(|mut f| {
            f.window = f.window.map(|w| w * tile as u32);
            f
        })
        .collect()
}

fn layout(tile: u64, history: u64) -> TileLayout {
    TileLayout {
        size: Duration::from_secs(tile),
        history: Duration::from_secs(history),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn tiles_at_tile_times_equal_the_spine_windows(
        events in generated_events(),
        features in generated_features(),
        tile in 1u64..4,
        steps in prop::collection::vec((0i64..5, -1i64..12), 0..30),
        ttl in prop::option::weighted(0.2, 0i64..5),
    ) {
        let mut setup = Setup::new(in_tiles(features, tile));
        setup.ttl = ttl.map(|t| t * tile as i64);
        // History long enough that every read is answered.
        let (plan, blobs) = tiles(&events, &setup, layout(tile, 10_000))?;
        let spine: Vec<(Option<i64>, Option<i64>)> = steps
            .iter()
            .map(|(k, j)| (Some(*k), Some(j * tile as i64)))
            .collect();
        let out = run(spine_batch(&spine), events_batch(&events), &setup)?;
        for (i, (k, t)) in spine.iter().enumerate() {
            let (Some(k), Some(t)) = (k, t) else { continue };
            // An entity without events has no tiles (and no online record).
            let Some(blob) = blobs.get(k) else { continue };
            let got = read_tiles(&plan, blob, t * SECOND)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (j, f) in setup.features.iter().enumerate() {
                let want = &values(&out, &f.name)[i];
                prop_assert!(
                    close(&as_v(&got[j]), want),
                    "key {} at {} s, tile {} s, {:?}: tiles {:?}, spine {:?}",
                    k, t, tile, f, got[j], want
                );
            }
        }
    }

    #[test]
    fn reads_after_the_newest_event_are_answered_and_earlier_ones_within_history(
        events in generated_events(),
        features in generated_features(),
        tile in 1u64..4,
        history in 0u64..6,
    ) {
        let setup = Setup::new(in_tiles(features, tile));
        let (plan, blobs) = tiles(&events, &setup, layout(tile, history))?;
        let (full, all) = tiles(&events, &setup, layout(tile, 10_000))?;
        for (k, blob) in &blobs {
            let newest = tiles_newest(blob).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for t in (newest / SECOND - 40)..(newest / SECOND + 40) {
                let at = t * SECOND;
                match read_tiles(&plan, blob, at) {
                    // Kept tiles read as the full history reads (all-time
                    // features merge the folded events first: floats to 1e-9).
                    Ok(got) => {
                        let want = read_tiles(&full, &all[k], at)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        for (g, w) in got.iter().zip(&want) {
                            prop_assert!(close(&as_v(g), &as_v(w)), "at {} s: {} against {}", t, g, w);
                        }
                    }
                    Err(TileError::BeforeHistory { earliest, .. }) => {
                        // What is refused is older than the history asked for.
                        prop_assert!(at < earliest);
                        prop_assert!(
                            earliest <= newest - history as i64 * SECOND,
                            "earliest {} newest {} history {} s", earliest, newest, history
                        );
                    }
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
        }
    }
}

#[test]
fn a_window_empties_as_time_passes_and_a_read_before_history_is_refused() -> Result<()> {
    let ev = |ts: i64, x: f64| Ev {
        k: Some(1),
        ts: Some(ts),
        created: ts,
        x: Some(x),
        n: Some(x as i64),
        c: Some(format!("c{x}")),
        f: Some(true),
    };
    // Events at 0, 20 and 35 s; tiles of 10 s; windows of 20 s; no history.
    let events = [ev(0, 1.0), ev(20, 2.0), ev(35, 4.0)];
    let features = vec![
        WindowFeature::new("n20", crate::WindowAgg::Count, None).over(Duration::from_secs(20)),
        WindowFeature::new("sum20", crate::WindowAgg::Sum, Some("x")).over(Duration::from_secs(20)),
        WindowFeature::new("last20", crate::WindowAgg::Last, Some("c"))
            .over(Duration::from_secs(20)),
        WindowFeature::new("n_all", crate::WindowAgg::Count, None),
    ];
    let setup = Setup::new(features);
    let (plan, blobs) = tiles(&events, &setup, layout(10, 0))?;
    let blob = &blobs[&1];
    let at = |s: i64| read_tiles(&plan, blob, s * SECOND);
    // At 40 s: [20, 40] holds 20 and 35.
    assert_eq!(
        at(40).expect("read"),
        vec![
            Value::from(2),
            Value::from(6.0),
            Value::from("c4"),
            Value::from(3)
        ]
    );
    // At 60 s: [40, 60] is empty; the all-time count keeps every event.
    assert_eq!(
        at(60).expect("read"),
        vec![Value::from(0), Value::Null, Value::Null, Value::from(3)]
    );
    // Kept from 10 s (35 - 20 rounded down; the tile at 0 is folded away): the
    // earliest read is at 30 s.
    assert_eq!(
        at(25),
        Err(TileError::BeforeHistory {
            at: 25 * SECOND,
            earliest: 30 * SECOND
        })
    );
    Ok(())
}
