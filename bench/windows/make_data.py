#!/usr/bin/env python3
"""Make the inputs of the `windows` benchmark (deterministic: the same arguments give the
same files), into one directory:

``events.parquet`` (``--events`` rows, zstd, in time order, as an event log is appended):
    entity  int64         0 .. entities-1 (``--entities``, default events / 500 within
                          [100, 20000]: 20,000 at 10M events). Activity is skewed: each
                          entity's share of the events is lognormal (sigma 1.2), so the
                          busiest entity has about 50 times the mean; 30% of the entities
                          start later in the year (uniform over the first 300 days) and 20%
                          stop early (churn), so windows empty out.
    ts      timestamp[us] no time zone, within 2025 and each entity's active span; 3% of
                          the events are exactly at midnight (ties within an entity too)
    amount  float64       lognormal, in cents; 2% null

``spine.parquet`` (``--spine`` rows, zstd, in random order):
    id      int64         0 .. spine-1, the row number
    entity  int64         1% are ids that never have events (entities .. entities + 1%);
                          the rest 70% uniform over the entities, 30% weighted by activity
    t       timestamp[us] no time zone: 4% exactly an event time of the row's entity, 2% an
                          event time + exactly 7, 30 or 90 days (the closed window's first
                          instant), 3% before the entity's first event, 25% at midnight, the
                          rest arbitrary microseconds over 2025-01-01 .. 2026-01-31 (so
                          after an entity's last event too; a row before the first event is
                          up to 60 days before it, an edge row up to 90 days after 2025)

``expected.json`` records the parameters and the planted counts.

Usage:
    python make_data.py OUT_DIR [--events 10000000] [--spine 1000000] [--entities N] [--seed 20261203]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

US = 1_000_000
DAY_US = 86_400 * US
YEAR_START_US = 1_735_689_600 * US  # 2025-01-01T00:00:00
YEAR_END_US = 1_767_225_600 * US  # 2026-01-01T00:00:00
SPINE_END_US = YEAR_END_US + 30 * DAY_US  # 2026-01-31T00:00:00
WINDOWS_DAYS = (7, 30, 90)


def default_entities(events: int) -> int:
    return int(min(20_000, max(100, events // 500)))


def make(out_dir: Path, n_events: int, n_spine: int, n_entities: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)

    # --- events ---------------------------------------------------------------------
    weight = rng.lognormal(0.0, 1.2, n_entities)
    per_entity = rng.multinomial(n_events, weight / weight.sum())
    start = np.full(n_entities, YEAR_START_US, np.int64)
    late = rng.random(n_entities) < 0.30
    start[late] += rng.integers(0, 300 * DAY_US, int(late.sum()))
    end = np.full(n_entities, YEAR_END_US, np.int64)
    churn = rng.random(n_entities) < 0.20
    lo_end = start[churn] + 30 * DAY_US
    end[churn] = lo_end + (rng.random(int(churn.sum())) * (YEAR_END_US - lo_end)).astype(np.int64)

    entity = np.repeat(np.arange(n_entities, dtype=np.int64), per_entity)
    span = (end - start)[entity]
    ts = start[entity] + (rng.random(n_events) * span).astype(np.int64)
    midnight = rng.random(n_events) < 0.03
    ts[midnight] = ts[midnight] // DAY_US * DAY_US
    amount = np.round(rng.lognormal(3.0, 1.0, n_events), 2)
    amount_null = rng.random(n_events) < 0.02

    order = np.argsort(ts, kind="stable")  # an append-only log: in time order
    entity, ts, amount, amount_null, midnight = (
        entity[order], ts[order], amount[order], amount_null[order], midnight[order])

    # Per entity: the first event and the row numbers of its events (for the planted spine rows).
    by_entity = np.lexsort((ts, entity))
    has_events = per_entity > 0
    first_row = np.searchsorted(entity[by_entity], np.arange(n_entities))
    first_ts = np.full(n_entities, -1, np.int64)
    first_ts[has_events] = ts[by_entity[first_row[has_events]]]

    # --- spine ----------------------------------------------------------------------
    n_missing = n_spine // 100
    n_exact = n_spine * 4 // 100
    n_edge = n_spine * 2 // 100
    n_before = n_spine * 3 // 100
    n_rest = n_spine - n_missing - n_exact - n_edge - n_before
    n_midnight = n_rest * 25 // 94  # 25% of all rows
    n_arbitrary = n_rest - n_midnight

    def some_entities(n: int) -> np.ndarray:
        """70% uniform over the entities with events, 30% weighted by their activity."""
        active = np.flatnonzero(has_events)
        k = int(n * 0.3)
        weighted = rng.choice(n_entities, k, p=per_entity / per_entity.sum())
        uniform = rng.choice(active, n - k)
        out = np.concatenate([uniform, weighted])
        rng.shuffle(out)
        return out

    exact_rows = rng.integers(0, n_events, n_exact)
    edge_rows = rng.integers(0, n_events, n_edge)
    edge_days = rng.choice(np.array(WINDOWS_DAYS, np.int64), n_edge)
    before_entities = rng.choice(np.flatnonzero(has_events), n_before)
    before_gap = rng.integers(1, 60 * DAY_US, n_before)
    mid_entities = some_entities(n_midnight)
    arb_entities = some_entities(n_arbitrary)
    missing_entities = n_entities + rng.integers(0, max(10, n_entities // 100), n_missing)

    s_entity = np.concatenate([entity[exact_rows], entity[edge_rows], before_entities, mid_entities, arb_entities,
                               missing_entities])
    s_t = np.concatenate([
        ts[exact_rows],
        ts[edge_rows] + edge_days * DAY_US,
        first_ts[before_entities] - before_gap,
        YEAR_START_US + rng.integers(0, (SPINE_END_US - YEAR_START_US) // DAY_US, n_midnight) * DAY_US,
        rng.integers(YEAR_START_US, SPINE_END_US, n_arbitrary),
        rng.integers(YEAR_START_US, SPINE_END_US, n_missing),
    ])
    perm = rng.permutation(n_spine)
    s_entity, s_t = s_entity[perm], s_t[perm]

    # --- write ----------------------------------------------------------------------
    ts_type = pa.timestamp("us")
    events = pa.table({
        "entity": pa.array(entity, pa.int64()),
        "ts": pa.array(ts, pa.int64()).cast(ts_type),
        "amount": pa.array(amount, pa.float64(), mask=amount_null),
    })
    spine = pa.table({
        "id": pa.array(np.arange(n_spine, dtype=np.int64)),
        "entity": pa.array(s_entity, pa.int64()),
        "t": pa.array(s_t, pa.int64()).cast(ts_type),
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in (("events.parquet", events), ("spine.parquet", spine)):
        tmp = out_dir / (name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(out_dir / name)
    return {
        "events": n_events, "spine": n_spine, "entities": n_entities, "seed": seed,
        "entities_with_events": int(has_events.sum()),
        "events_of_busiest_entity": int(per_entity.max()),
        "events_per_entity_median": float(np.median(per_entity)),
        "entities_starting_late": int(late.sum()), "entities_churning": int(churn.sum()),
        "events_at_midnight": int(midnight.sum()), "events_null_amount": int(amount_null.sum()),
        "spine_equal_to_an_event_time": n_exact, "spine_at_window_start_edge": n_edge,
        "spine_before_first_event": n_before, "spine_at_midnight": n_midnight, "spine_arbitrary": n_arbitrary,
        "spine_entities_without_events": n_missing,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the directory to write")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--spine", type=int, default=1_000_000)
    ap.add_argument("--entities", type=int, default=None, help="default: events / 500, within [100, 20000]")
    ap.add_argument("--seed", type=int, default=20261203)
    args = ap.parse_args()
    if args.events < 1000 or args.spine < 100:
        ap.error("--events must be at least 1000 and --spine at least 100")
    n_entities = args.entities or default_entities(args.events)
    t0 = time.perf_counter()
    doc = make(args.out, args.events, args.spine, n_entities, args.seed)
    (args.out / "expected.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    size = sum((args.out / f).stat().st_size for f in ("events.parquet", "spine.parquet"))
    print(f"make_data.py: wrote {args.out} ({args.events:,} events, {n_entities:,} entities, {args.spine:,} spine "
          f"rows; {size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
