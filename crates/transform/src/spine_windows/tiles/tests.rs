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

/// A plane of the flights bench (`bench/serve/project/plane_wide.toml`): `days`
/// of about four flights a day, 50 features over 7, 30 and 90 days and all time,
/// in daily tiles with 7 days of history (the default).
fn plane_like(days: i64) -> Result<(TilePlan, Vec<u8>)> {
    const DAY: i64 = 86_400;
    let mut events = vec![];
    let mut state = 7u64;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    for day in 0..days {
        for flight in 0..4 {
            let ts = day * DAY + flight * 5 * 3600 + next(3600) as i64;
            let delay = next(120) as f64 - 20.0;
            events.push(Ev {
                k: Some(1),
                ts: Some(ts),
                created: ts,
                x: (next(50) > 0).then_some(delay),
                n: Some(200 + next(2000) as i64),
                c: Some(format!("D{}", next(80))),
                f: Some(delay > 15.0),
            });
        }
    }
    let windows = [Some(7 * DAY), Some(30 * DAY), Some(90 * DAY), None];
    let mut features = vec![];
    let mut add =
        |name: &str, agg: crate::WindowAgg, column: Option<&str>, filter: Option<&str>| {
            for w in windows {
                let suffix = w.map_or("all".to_string(), |w| format!("{}d", w / DAY));
                let mut f = WindowFeature::new(&format!("{name}_{suffix}"), agg, column);
                if let Some(w) = w {
                    f = f.over(Duration::from_secs(w as u64));
                }
                if let Some(c) = filter {
                    f = f.filtered(c);
                }
                features.push(f);
            }
        };
    use crate::WindowAgg::*;
    add("flights", Count, None, None);
    add("delay_mean", Mean, Some("x"), None);
    add("delay_max", Max, Some("x"), None);
    add("delay_min", Min, Some("x"), None);
    add("delay_sd", Stddev, Some("x"), None);
    add("n_mean", Mean, Some("n"), None);
    add("n_max", Max, Some("n"), None);
    add("n_sd", Stddev, Some("n"), None);
    add("miles", Sum, Some("n"), None);
    add("late", Count, None, Some("f"));
    add("delays", Count, Some("x"), None);
    add("dests", CountDistinct, Some("c"), None);
    features.push(WindowFeature::new("origins_all", CountDistinct, Some("n")));
    features.push(WindowFeature::new("last_dest", Last, Some("c")));
    assert_eq!(features.len(), 50);
    let setup = Setup::new(features);
    let (plan, mut blobs) = tiles(&events, &setup, layout(DAY as u64, 7 * DAY as u64))?;
    Ok((plan, blobs.remove(&1).expect("one entity")))
}

/// Times reads of a plane's tiles at the end of its data; run with
/// `cargo test -p sluice-transform time_reads -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn time_reads_of_a_plane_like_blob() -> Result<()> {
    let (plan, blob) = plane_like(365)?;
    let at = 365 * 86_400 * SECOND;
    let reads = 20_000;
    let mut times = Vec::with_capacity(reads);
    let mut check = 0usize;
    for _ in 0..reads {
        let started = std::time::Instant::now();
        let values = read_tiles(&plan, &blob, at).expect("read");
        times.push(started.elapsed().as_nanos() as u64);
        check += values.len();
    }
    assert_eq!(check, reads * 50);
    times.sort_unstable();
    let p =
        |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)] as f64 / 1000.0;
    eprintln!(
        "tiles: {} bytes; read of 50 features: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        blob.len(),
        p(0.5),
        p(0.99),
        p(0.999)
    );
    Ok(())
}

#[test]
fn damaged_truncated_or_old_tiles_are_refused_never_a_panic() -> Result<()> {
    let (plan, blob) = plane_like(12)?;
    let at = 12 * 86_400 * SECOND;
    let whole = read_tiles(&plan, &blob, at).expect("the blob as written reads");
    assert_eq!(whole.len(), 50);
    for n in 0..blob.len() {
        assert!(
            read_tiles(&plan, &blob[..n], at).is_err(),
            "{n} of {} bytes read",
            blob.len()
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(
        read_tiles(&plan, &longer, at),
        Err(TileError::Unreadable(_))
    ));
    // Any byte changed: an answer of every feature, or an error.
    for i in 0..blob.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = blob.clone();
            damaged[i] ^= flip;
            if let Ok(values) = read_tiles(&plan, &damaged, at) {
                assert_eq!(values.len(), 50, "byte {i} ^ {flip:#x}");
            }
        }
    }
    // The first layout had no version: postcard, starting with a varint.
    assert_eq!(
        read_tiles(&plan, &[0x80, 0xc0, 0x9a, 0x0c, 0x00, 0x02], at),
        Err(TileError::OldLayout { found: None })
    );
    let mut newer = blob.clone();
    newer[3] = 9;
    assert_eq!(
        read_tiles(&plan, &newer, at),
        Err(TileError::OldLayout { found: Some(9) })
    );
    // A plan of other inputs than the tiles'.
    let (other, _) = plane_like(1).map(|(mut p, b)| {
        p.inputs.pop();
        (p, b)
    })?;
    assert!(matches!(
        read_tiles(&other, &blob, at),
        Err(TileError::Unreadable(m)) if m.contains("inputs")
    ));
    Ok(())
}
