#!/usr/bin/env python3
"""Make the input files of the `features` benchmarks (deterministic: same arguments, same files).

``events``: the seed's pattern-3 sample data, exactly its ``generate_sample_data(n)``
(numpy seed 42; 1,000 users ``u0000``..``u0999``; ``event_time`` every 30 s from
2026-01-01), written once to zstd Parquet. ``event_time`` is stored as ``timestamp[us]``
without a time zone (the values are whole seconds, so nothing is lost from pandas' ns):

    user_id string, event_type string, amount float64, event_time timestamp[us], category string

``features``: the feature rows and the spine of the training-set and online-store
benchmarks, in one directory:

``feature_rows.parquet`` (``--rows`` rows, in random order):
    user_id     string      ``u000000``.. (``max(1000, rows // 100)`` entities: 100k at 10M rows)
    event_ts    timestamp   us, UTC, uniform over 2025
    created_ts  timestamp   us, UTC, event_ts + up to 1 h
    f1..f5      float64
    f6          int64
About 2% of the rows repeat another row's (user_id, event_ts) with a different
created_ts (ties that the created timestamp must break), and 2% of the entities have such
a tie at their newest event_ts (what the online store must hold). No two rows share
(user_id, event_ts, created_ts), so "newest, ties by created_ts" is one row.

``spine.parquet`` (``--spine-rows`` rows, default rows // 10, in random order; no two
rows share (user_id, ts)):
    user_id  string     ~1% ids absent from the feature rows (``missing_...``)
    ts       timestamp  us, UTC
    label    int64      0/1
Most ``ts`` are uniform over [2025-01-01 - 15 d, 2026-01-01 + 45 d], so some rows come
before an entity's first event and some after its last event + the 30-day TTL; 1% equal a
feature row's event_ts exactly (half of them a tied one), 0.5% equal a feature row's
event_ts + 30 days exactly (the TTL boundary, inclusive).

``expected.json`` beside them records the parameters and the planted counts.

Usage:
    python make_data.py events OUT.parquet --rows 1000000
    python make_data.py features OUT_DIR --rows 10000000 [--spine-rows 1000000] [--seed 20261122]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

US = 1_000_000
DAY_US = 86_400 * US
YEAR_START_US = 1_735_689_600 * US  # 2025-01-01T00:00:00Z
YEAR_END_US = 1_767_225_600 * US  # 2026-01-01T00:00:00Z
TTL_DAYS = 30


# ----------------------------------------------------------------------------- (a) events


def generate_sample_data(n: int = 1_000_000) -> pd.DataFrame:
    """The seed's function, verbatim."""
    np.random.seed(42)
    return pd.DataFrame({
        "user_id": np.random.choice([f"u{i:04d}" for i in range(1000)], n),
        "event_type": np.random.choice(["click", "purchase", "view", "signup"], n),
        "amount": np.random.exponential(50, n).round(2),
        "event_time": pd.date_range("2026-01-01", periods=n, freq="30s"),
        "category": np.random.choice(["electronics", "clothing", "food", "books"], n),
    })


def make_events(out: Path, rows: int) -> None:
    t0 = time.perf_counter()
    df = generate_sample_data(rows)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("event_time"), "event_time",
        table.column("event_time").cast(pa.timestamp("us")),  # whole seconds: exact
    )
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out)
    print(f"make_data.py: wrote {out} ({rows:,} rows, {out.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


# ----------------------------------------------------------------------------- (b, c) feature rows + spine


def entity_ids(prefix: str, idx: np.ndarray) -> pa.Array:
    """`prefix` + 6-digit numbers, as an Arrow string array, without a Python loop per row."""
    uniq, inv = np.unique(idx, return_inverse=True)
    names = pa.array([f"{prefix}{i:06d}" for i in uniq], pa.string())
    return names.take(pa.array(inv.astype(np.int64)))


def unique_triples(uidx: np.ndarray, ev: np.ndarray, cr: np.ndarray) -> None:
    """Nudge created_ts (in place) until no two rows share (entity, event_ts, created_ts)."""
    while True:
        order = np.lexsort((cr, ev, uidx))
        a, b, c = uidx[order], ev[order], cr[order]
        same = (a[1:] == a[:-1]) & (b[1:] == b[:-1]) & (c[1:] == c[:-1])
        if not same.any():
            return
        cr[order[1:][same]] += 1


def make_features(out_dir: Path, rows: int, spine_rows: int, seed: int) -> None:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_entities = max(1000, rows // 100)
    n_dup = rows // 50  # rows that repeat another row's (user_id, event_ts)
    n_latest_tie = n_entities // 50  # entities whose newest event_ts is tied
    n_base = rows - n_dup - n_latest_tie
    if n_base < n_entities:
        raise SystemExit(f"make_data.py: --rows {rows} is too small for {n_entities} entities")

    # Base rows: every entity at least once, the rest uniform.
    uidx = np.concatenate([np.arange(n_entities), rng.integers(0, n_entities, n_base - n_entities)])
    ev = rng.integers(YEAR_START_US, YEAR_END_US, n_base)
    cr = ev + rng.integers(0, 3600 * US, n_base)

    # Ties: copies of random base rows' (entity, event_ts) with another created_ts.
    src = rng.integers(0, n_base, n_dup)
    d_uidx, d_ev = uidx[src], ev[src]
    d_cr = d_ev + rng.integers(0, 2 * 3600 * US, n_dup)
    uidx = np.concatenate([uidx, d_uidx])
    ev = np.concatenate([ev, d_ev])
    cr = np.concatenate([cr, d_cr])

    # Ties at the newest event of some entities: the online store must pick by created_ts.
    order = np.lexsort((ev, uidx))
    last_of_entity = order[np.r_[uidx[order][1:] != uidx[order][:-1], True]]  # row of max event_ts per entity
    tie_entities = rng.choice(n_entities, n_latest_tie, replace=False)
    rows_of = last_of_entity[tie_entities]
    t_cr = cr[rows_of] + rng.choice([-1, 1], n_latest_tie) * rng.integers(1, 3600 * US, n_latest_tie)
    uidx = np.concatenate([uidx, uidx[rows_of]])
    ev = np.concatenate([ev, ev[rows_of]])
    cr = np.concatenate([cr, t_cr])
    unique_triples(uidx, ev, cr)

    # Out of order, as rows arrive.
    perm = rng.permutation(rows)
    uidx, ev, cr = uidx[perm], ev[perm], cr[perm]
    f = rng.normal(0.0, 1.0, (5, rows)) * np.array([[1.0], [10.0], [100.0], [0.01], [1e6]])
    f6 = rng.integers(0, 1000, rows)
    ts_type = pa.timestamp("us", tz="UTC")
    features = pa.table({
        "user_id": entity_ids("u", uidx),
        "event_ts": pa.array(ev, pa.int64()).cast(ts_type),
        "created_ts": pa.array(cr, pa.int64()).cast(ts_type),
        **{f"f{i + 1}": pa.array(f[i]) for i in range(5)},
        "f6": pa.array(f6, pa.int64()),
    })

    # Spine.
    order = np.lexsort((ev, uidx))
    dup_key = np.zeros(rows, bool)  # rows whose (entity, event_ts) is shared
    same = (uidx[order][1:] == uidx[order][:-1]) & (ev[order][1:] == ev[order][:-1])
    dup_key[order[1:][same]] = True
    dup_key[order[:-1][same]] = True
    n_missing = spine_rows // 100
    n_exact = spine_rows // 100
    n_ttl_edge = spine_rows // 200
    n_rand = spine_rows - n_missing - n_exact - n_ttl_edge
    tied_rows = np.flatnonzero(dup_key)
    exact_rows = np.concatenate([rng.choice(tied_rows, n_exact // 2), rng.integers(0, rows, n_exact - n_exact // 2)])
    edge_rows = rng.integers(0, rows, n_ttl_edge)
    lo, hi = YEAR_START_US - 15 * DAY_US, YEAR_END_US + 45 * DAY_US
    s_uidx = np.concatenate([rng.integers(0, n_entities, n_rand), uidx[exact_rows], uidx[edge_rows],
                             -1 - rng.integers(0, n_entities, n_missing)])  # < 0: missing ids
    s_ts = np.concatenate([rng.integers(lo, hi, n_rand), ev[exact_rows], ev[edge_rows] + TTL_DAYS * DAY_US,
                           rng.integers(lo, hi, n_missing)])
    fixed = np.zeros(spine_rows, bool)
    fixed[n_rand:n_rand + n_exact + n_ttl_edge] = True
    while True:  # no two spine rows share (user_id, ts): re-draw the random ones that do
        order = np.lexsort((s_ts, s_uidx))
        same = (s_uidx[order][1:] == s_uidx[order][:-1]) & (s_ts[order][1:] == s_ts[order][:-1])
        if not same.any():
            break
        redo = order[1:][same]
        redo_fixed = redo[fixed[redo]]
        fixed[redo_fixed] = False  # a planted row that collides becomes a random one
        s_ts[redo] = rng.integers(lo, hi, len(redo))
    perm = rng.permutation(spine_rows)
    s_uidx, s_ts = s_uidx[perm], s_ts[perm]
    missing = s_uidx < 0
    ids = np.where(missing, 0, s_uidx)
    user = entity_ids("u", ids)
    if missing.any():
        miss_names = entity_ids("missing_", -1 - s_uidx[missing])
        user = user.to_numpy(zero_copy_only=False).astype(object)
        user[missing] = miss_names.to_numpy(zero_copy_only=False)
        user = pa.array(user, pa.string())
    spine = pa.table({
        "user_id": user,
        "ts": pa.array(s_ts, pa.int64()).cast(ts_type),
        "label": pa.array(rng.integers(0, 2, spine_rows), pa.int64()),
    })

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in (("feature_rows.parquet", features), ("spine.parquet", spine)):
        tmp = out_dir / (name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(out_dir / name)
    doc = {
        "rows": rows, "spine_rows": spine_rows, "entities": n_entities, "seed": seed,
        "tied_rows": int(dup_key.sum()), "entities_with_tied_newest": n_latest_tie,
        "spine_missing_ids": int(missing.sum()), "spine_exact_event_ts": n_exact, "spine_ttl_edge": n_ttl_edge,
        "ttl_days": TTL_DAYS,
    }
    (out_dir / "expected.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"make_data.py: wrote {out_dir} ({rows:,} feature rows, {n_entities:,} entities, "
          f"{spine_rows:,} spine rows) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["events", "features"])
    ap.add_argument("out", type=Path, help="events: the Parquet file; features: the directory")
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--spine-rows", type=int, default=None, help="features: spine rows (default rows // 10)")
    ap.add_argument("--seed", type=int, default=20261122, help="features: the numpy seed")
    args = ap.parse_args()
    if args.rows < 1:
        ap.error("--rows must be positive")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.what == "events":
        make_events(args.out, args.rows)
    else:
        spine_rows = args.spine_rows if args.spine_rows is not None else max(1000, args.rows // 10)
        make_features(args.out, args.rows, spine_rows, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
