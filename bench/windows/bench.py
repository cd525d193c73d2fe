#!/usr/bin/env python3
"""windows: a training set whose windows are computed as of each spine row's own time:
sluice against DuckDB (a range join) and Polars (the union-and-rolling workaround).

The inputs come from ``make_data.py``: ``events.parquet`` (entity int64, ts timestamp[us],
amount float64 with nulls) and ``spine.parquet`` (id int64 = row number, entity int64,
t timestamp[us]). For every spine row (entity, t) and each w in 7, 30 and 90 days, over the
entity's events with ts in the closed window [t - w, t]:

    n_{w}d       the number of events (rows, whatever their amount); 0 when none
    amount_{w}d  sum(amount) over the non-null amounts; null when there is none
    mean_{w}d    mean(amount) likewise

one output row per spine row, in spine order: id, entity, t and the 9 features.

Each tool runs as its own subprocess, so that its peak memory (``VmHWM``, the high-water
mark of its resident memory, polled; see ``run_measured``) is its own:

* **sluice**: a fresh project per repetition (``sluice.toml`` with the Parquet source
  ``events``, a symlink to the data file, and the declared view ``w`` of the 9 windowed
  aggregates, no ``as_of``); untimed: ``sluice run --project DIR --json`` (ingests the source
  and builds the per-event view; its summary must say ``ok``); timed: ``sluice training-set
  --project DIR --spine spine.parquet --timestamp t --features w --output out.parquet
  --json``, the process's wall time (start-up included) and peak memory.
* **DuckDB**: one ``COPY`` of ``spine LEFT JOIN events ON e.entity = s.entity AND e.ts
  BETWEEN s.t - INTERVAL 90 DAY AND s.t GROUP BY s.id, s.entity, s.t`` with ``FILTER``
  clauses for the 7- and 30-day windows (``count(e.ts)``, so that an empty window gives
  0), ordered by id, over ``read_parquet``, to zstd Parquet. Timed in process, from the
  query (which reads the files) to the written file; imports excluded.
* **Polars**: the workaround users write: the spine rows (amount null, id set) concatenated
  with the events (id null), sorted by entity, ts, and ``rolling(index_column="ts",
  period="{w}d", group_by="entity", closed="both")`` once per window, counting the events
  (not the spine rows) and summing and averaging the amounts; the sum is nulled where the
  window has no non-null amount (Polars' sum of nothing is 0); the three results are
  concatenated horizontally, the spine rows kept, sorted by id and written to zstd Parquet.
  Timed likewise.

Checks, before any time is printed (any failure exits non-zero):

1. a hand-made case (two entities, events tied at one time, windows starting exactly at an
   event, a window with only null amounts, an entity without events, a row before the first
   event, a repeated spine row) whose answers are written out in this file: DuckDB, Polars,
   the naive reference and sluice must each give exactly those;
2. a sample of the data (the entities holding about ``--check-naive`` events, default
   20,000, with all their events and spine rows, and spine rows of entities without
   events): every tool must equal a naive reference (numpy, one spine row at a time, a
   mask over the entity's events per window);
3. every repetition at full size: every tool's output equals the first output made, cell by
   cell, aligned by id (counts exactly, floats to 1e-9 relative, nulls equal), in spine
   order, with exactly the columns id, entity, t, n_7d, amount_7d, mean_7d, ... mean_90d.

Usage (normally through run.sh):

    python bench.py --sluice-bin PATH [--reps 3] [--json-out FILE] DATA_DIR
    python bench.py --peers-only DATA_DIR
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, parse_sluice_json, sluice_version, sql_str  # noqa: E402

WINDOWS = (7, 30, 90)
FEATURES = [f"{kind}_{w}d" for w in WINDOWS for kind in ("n", "amount", "mean")]
OUT_COLUMNS = ["id", "entity", "t"] + FEATURES
REL_TOL = 1e-9
US = 1_000_000
DAY_US = 86_400 * US
PEERS = ["duckdb", "polars"]

SLUICE_TOML = """\
[project]
name = "windows"

[sources.events]
path = "events.parquet"

[features.w]
source = "events"
entity = "entity"
timestamp = "ts"

[features.w.aggregates]
""" + "".join(
    f'n_{w}d = {{ agg = "count", window = "{w}d" }}\n'
    f'amount_{w}d = {{ agg = "sum", column = "amount", window = "{w}d" }}\n'
    f'mean_{w}d = {{ agg = "mean", column = "amount", window = "{w}d" }}\n'
    for w in WINDOWS
)


# --------------------------------------------------------------------------- the peers' jobs


def duckdb_sql(events: Path, spine: Path) -> str:
    sel = []
    for w in WINDOWS:
        f = "" if w == max(WINDOWS) else f" FILTER (WHERE e.ts >= s.t - INTERVAL {w} DAY)"
        sel += [f"count(e.ts){f} AS n_{w}d", f"sum(e.amount){f} AS amount_{w}d", f"avg(e.amount){f} AS mean_{w}d"]
    return f"""
        SELECT s.id, s.entity, s.t, {', '.join(sel)}
        FROM read_parquet({sql_str(spine)}) s
        LEFT JOIN read_parquet({sql_str(events)}) e
          ON e.entity = s.entity AND e.ts BETWEEN s.t - INTERVAL {max(WINDOWS)} DAY AND s.t
        GROUP BY s.id, s.entity, s.t
        ORDER BY s.id
    """


def duckdb_job(events: Path, spine: Path, out: Path) -> float:
    import duckdb
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"COPY ({duckdb_sql(events, spine)}) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)")
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def polars_query(events: Path, spine: Path):
    """The union-and-rolling workaround, as a LazyFrame."""
    import polars as pl
    ev = pl.scan_parquet(events).select(
        "entity", "ts", "amount", pl.lit(None, pl.Int64).alias("id"))
    sp = pl.scan_parquet(spine).select(
        "entity", pl.col("t").alias("ts"), pl.lit(None, pl.Float64).alias("amount"), "id")
    u = (pl.concat([ev, sp])
         .with_columns(pl.col("id").is_null().alias("is_event"))
         .sort(["entity", "ts"]))
    parts = [u]
    for w in WINDOWS:
        r = u.rolling(index_column="ts", period=f"{w}d", group_by="entity", closed="both").agg(
            pl.col("is_event").sum().cast(pl.Int64).alias(f"n_{w}d"),  # events only, not spine rows
            pl.col("amount").sum().alias(f"__sum_{w}"),  # 0 when no non-null amount...
            pl.col("amount").count().alias(f"__cnt_{w}"),  # ...so null it where this is 0
            pl.col("amount").mean().alias(f"mean_{w}d"),
        )
        parts.append(r.select(
            f"n_{w}d",
            pl.when(pl.col(f"__cnt_{w}") > 0).then(pl.col(f"__sum_{w}")).otherwise(None).alias(f"amount_{w}d"),
            f"mean_{w}d",
        ))
    return (pl.concat(parts, how="horizontal")
            .filter(~pl.col("is_event"))
            .select("id", "entity", pl.col("ts").alias("t"), *FEATURES)
            .sort("id"))


def polars_job(events: Path, spine: Path, out: Path) -> float:
    t0 = time.perf_counter()
    polars_query(events, spine).collect().write_parquet(out, compression="zstd")
    return time.perf_counter() - t0


JOBS = {"duckdb": duckdb_job, "polars": polars_job}


# --------------------------------------------------------------------------- the naive reference


def naive_reference(events: Path, spine: Path) -> pa.Table:
    """One spine row at a time: a mask over the entity's events per window (small inputs only)."""
    ev = pq.read_table(events)
    e_ent = ev.column("entity").to_numpy()
    e_ts = ev.column("ts").cast(pa.int64()).to_numpy()
    amt = ev.column("amount")
    a_null = amt.is_null().to_numpy(zero_copy_only=False)
    a_val = pc.fill_null(amt, 0.0).to_numpy()
    by_entity: dict[int, tuple] = {}
    for ent in np.unique(e_ent):
        m = e_ent == ent
        by_entity[int(ent)] = (e_ts[m], a_val[m], a_null[m])
    sp = pq.read_table(spine)
    ids = sp.column("id").to_numpy()
    ents = sp.column("entity").to_numpy()
    ts = sp.column("t").cast(pa.int64()).to_numpy()
    cols: dict[str, list] = {c: [] for c in FEATURES}
    empty = (np.empty(0, np.int64), np.empty(0), np.empty(0, bool))
    for ent, t in zip(ents.tolist(), ts.tolist()):
        et, av, an = by_entity.get(ent, empty)
        for w in WINDOWS:
            inside = (et >= t - w * DAY_US) & (et <= t)
            vals = av[inside & ~an]
            cols[f"n_{w}d"].append(int(inside.sum()))
            cols[f"amount_{w}d"].append(math.fsum(vals.tolist()) if len(vals) else None)
            cols[f"mean_{w}d"].append(math.fsum(vals.tolist()) / len(vals) if len(vals) else None)
    return pa.table({
        "id": pa.array(ids, pa.int64()), "entity": pa.array(ents, pa.int64()), "t": sp.column("t"),
        **{c: pa.array(v, pa.int64() if c.startswith("n_") else pa.float64()) for c, v in cols.items()},
    })


# --------------------------------------------------------------------------- the hand-made case


def _ts(s: str) -> int:
    """Microseconds since the epoch of a naive ISO time."""
    return (datetime.fromisoformat(s) - datetime(1970, 1, 1)) // timedelta(microseconds=1)


HAND_EVENTS = [  # entity, ts, amount
    (1, "2025-01-01 00:00:00", 10.0),
    (1, "2025-01-05 12:00:00", None),
    (1, "2025-01-08 00:00:00", 5.0),
    (1, "2025-01-08 00:00:00", 1.0),  # the same time as the one before
    (1, "2025-03-01 00:00:00", 2.5),
    (1, "2025-04-01 00:00:00", None),
    (2, "2025-06-01 12:00:00", 7.0),
]
HAND_SPINE = [  # id, entity, t, then (n, amount, mean) for 7, 30 and 90 days
    (0, 1, "2025-01-08 00:00:00", (4, 16.0, 16 / 3), (4, 16.0, 16 / 3), (4, 16.0, 16 / 3)),  # 7d starts at e1
    (1, 1, "2025-01-07 23:59:59.999999", (2, 10.0, 10.0), (2, 10.0, 10.0), (2, 10.0, 10.0)),
    (2, 1, "2025-01-08 00:00:00.000001", (3, 6.0, 3.0), (4, 16.0, 16 / 3), (4, 16.0, 16 / 3)),
    (3, 1, "2025-04-01 00:00:00", (1, None, None), (1, None, None), (6, 18.5, 4.625)),  # 90d starts at e1
    (4, 1, "2024-12-01 00:00:00", (0, None, None), (0, None, None), (0, None, None)),  # before the first event
    (5, 3, "2025-06-01 00:00:00", (0, None, None), (0, None, None), (0, None, None)),  # no events at all
    (6, 2, "2025-06-01 12:00:00", (1, 7.0, 7.0), (1, 7.0, 7.0), (1, 7.0, 7.0)),
    (7, 1, "2025-01-08 00:00:00", (4, 16.0, 16 / 3), (4, 16.0, 16 / 3), (4, 16.0, 16 / 3)),  # row 0 again
    (8, 2, "2025-06-08 12:00:00", (1, 7.0, 7.0), (1, 7.0, 7.0), (1, 7.0, 7.0)),  # 7d starts at the event
    (9, 2, "2025-06-08 12:00:00.000001", (0, None, None), (1, 7.0, 7.0), (1, 7.0, 7.0)),
    (10, 1, "2025-05-30 00:00:00", (0, None, None), (0, None, None), (2, 2.5, 2.5)),  # e5, e6 only
]


def hand_case(d: Path) -> tuple[Path, Path, pa.Table]:
    d.mkdir(parents=True, exist_ok=True)
    ts_type = pa.timestamp("us")
    events = pa.table({
        "entity": pa.array([e for e, _, _ in HAND_EVENTS], pa.int64()),
        "ts": pa.array([_ts(t) for _, t, _ in HAND_EVENTS], pa.int64()).cast(ts_type),
        "amount": pa.array([a for _, _, a in HAND_EVENTS], pa.float64()),
    })
    spine = pa.table({
        "id": pa.array([r[0] for r in HAND_SPINE], pa.int64()),
        "entity": pa.array([r[1] for r in HAND_SPINE], pa.int64()),
        "t": pa.array([_ts(r[2]) for r in HAND_SPINE], pa.int64()).cast(ts_type),
    })
    expected = {c: spine.column(c) for c in ("id", "entity", "t")}
    for i, w in enumerate(WINDOWS):
        expected[f"n_{w}d"] = pa.array([r[3 + i][0] for r in HAND_SPINE], pa.int64())
        expected[f"amount_{w}d"] = pa.array([r[3 + i][1] for r in HAND_SPINE], pa.float64())
        expected[f"mean_{w}d"] = pa.array([r[3 + i][2] for r in HAND_SPINE], pa.float64())
    pq.write_table(events, d / "events.parquet", compression="zstd")
    pq.write_table(spine, d / "spine.parquet", compression="zstd")
    return d / "events.parquet", d / "spine.parquet", pa.table({c: expected[c] for c in OUT_COLUMNS})


# --------------------------------------------------------------------------- comparing outputs


def _values(col: pa.ChunkedArray) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, values, null mask): kind "int" (integers and timestamps, as int64 microseconds)
    or "float"; NaN stays a value (it must be NaN on both sides)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    null = np.asarray(col.is_null().to_numpy(zero_copy_only=False), bool)
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            raise BenchError(f"a time column has the time zone {t.tz}; expected none")
        mult = {"s": US, "ms": 1000, "us": 1, "ns": None}[t.unit]
        raw = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
        if mult is None:
            if (raw % 1000 != 0).any():
                raise BenchError("a nanosecond time column has sub-microsecond values")
            return "int", raw // 1000, null
        return "int", raw * mult, null
    if pa.types.is_integer(t):
        return "int", pc.fill_null(col.cast(pa.int64()), 0).to_numpy(), null
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float", pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy(), null
    raise BenchError(f"unexpected column type {t}")


def compare(ref: pa.Table, got: pa.Table, what: str) -> list[str]:
    """Raise BenchError unless `got` has exactly OUT_COLUMNS, one row per id of `ref` in the
    same (spine) order, and equals `ref` cell by cell; its type notes otherwise."""
    if got.column_names != OUT_COLUMNS:
        raise BenchError(f"{what}: columns {got.column_names}, expected {OUT_COLUMNS}")
    if got.num_rows != ref.num_rows:
        raise BenchError(f"{what}: {got.num_rows:,} rows, expected {ref.num_rows:,} (one per spine row)")
    r_id = ref.column("id").to_numpy()
    g_id = got.column("id").to_numpy()
    problems = []
    if not np.array_equal(r_id, g_id):
        if np.array_equal(np.sort(r_id), np.sort(g_id)):
            problems.append("rows are not in spine order (compared by id below)")
            got = got.take(pa.array(np.argsort(g_id, kind="stable")))
            ref = ref.take(pa.array(np.argsort(r_id, kind="stable")))
        else:
            raise BenchError(f"{what}: its ids are not the spine's ids")
    ids = ref.column("id").to_numpy()
    for c in OUT_COLUMNS:
        rk, rv, rn = _values(ref.column(c))
        gk, gv, gn = _values(got.column(c))
        if rk != gk:
            if c.startswith("n_"):
                problems.append(f"{c}: {got.schema.field(c).type}, expected an integer type")
                continue
            rv, gv = rv.astype(np.float64), gv.astype(np.float64)
            rk = "float"
        bad = rn != gn
        both = ~rn & ~gn
        if rk == "float":
            rnan, gnan = np.isnan(rv), np.isnan(gv)
            with np.errstate(invalid="ignore"):
                close = (rv == gv) | (np.abs(rv - gv) <= REL_TOL * np.maximum(np.abs(rv), np.abs(gv)))
            bad |= both & ~((rnan & gnan) | (~rnan & ~gnan & close))
        else:
            bad |= both & (rv != gv)
        idx = np.flatnonzero(bad)
        for i in idx[:5]:
            r = None if rn[i] else rv[i].item()
            g = None if gn[i] else gv[i].item()
            problems.append(f"{c} at id {ids[i]}: expected {r!r}, got {g!r}")
        if len(idx) > 5:
            problems.append(f"{c}: {len(idx):,} mismatching rows in all")
    if problems:
        raise BenchError(f"{what} differs:\n  " + "\n  ".join(problems[:45]))
    return [f"{c}: {got.schema.field(c).type} (reference {ref.schema.field(c).type})"
            for c in OUT_COLUMNS if got.schema.field(c).type != ref.schema.field(c).type]


# --------------------------------------------------------------------------- subprocesses


@dataclass
class Measured:
    wall_s: float
    peak_rss: int  # bytes: the process's VmHWM after its exec, polled (see run_measured)
    returncode: int
    stdout: str
    stderr: str


def vm_hwm(pid: "int | str") -> Optional[int]:
    """The peak resident memory of a process's current address space (VmHWM), in bytes."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_measured(cmd: Sequence, out_dir: Path, tag: str) -> Measured:
    """Run `cmd`, its output to files in `out_dir`; its wall time and its peak resident memory.

    Not ``ru_maxrss`` from ``wait4``: Linux carries the high-water mark of the address space a
    process had before its ``exec`` into it, and ``subprocess`` spawns with ``vfork``, so that
    would be at least this (large) Python process's own peak. Instead a thread polls the
    child's ``VmHWM`` every 5 ms once it runs the command (its ``cmdline`` is ``cmd``): exact
    but for growth in its last few milliseconds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(c) for c in cmd]
    want = ("\0".join(argv) + "\0").encode()
    so, se = out_dir / f"{tag}.stdout", out_dir / f"{tag}.stderr"
    peak = [0]
    done = threading.Event()

    def poll(pid: int) -> None:
        while not done.is_set():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    running = f.read() == want
            except OSError:
                running = False
            if running:
                h = vm_hwm(pid)
                if h and h > peak[0]:
                    peak[0] = h
            done.wait(0.005)

    with open(so, "wb") as fo, open(se, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe)
        poller = threading.Thread(target=poll, args=(proc.pid,), daemon=True)
        poller.start()
        _, status = os.waitpid(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, peak[0], proc.returncode,
                    so.read_text(encoding="utf-8", errors="replace"), se.read_text(encoding="utf-8", errors="replace"))


def run_peer(tool: str, events: Path, spine: Path, out: Path, work: Path) -> tuple[Measured, dict]:
    m = run_measured([sys.executable, __file__, "--worker", tool, "--events-file", events, "--spine-file", spine,
                      "--out", out], work, tool)
    if m.returncode != 0:
        raise BenchError(f"{tool} worker exited with {m.returncode} (peak memory {m.peak_rss / 1e9:.2f} GB)\n"
                         f"--- stderr (tail) ---\n{m.stderr[-4000:]}")
    for line in reversed(m.stdout.strip().splitlines()):
        if line.startswith("{"):
            return m, json.loads(line)
    raise BenchError(f"{tool} worker printed no JSON report:\n{m.stdout[-2000:]}")


def sluice_cmd(sluice_bin: Path, args: Sequence, work: Path, tag: str) -> tuple[Measured, dict]:
    m = run_measured([sluice_bin, *args], work, tag)
    if m.returncode != 0:
        raise BenchError(f"sluice {' '.join(map(str, args))} exited with {m.returncode}\n--- stderr ---\n"
                         f"{m.stderr[-4000:]}\n--- stdout ---\n{m.stdout[-2000:]}")
    return m, parse_sluice_json(m.stdout)


def sluice_setup(sluice_bin: Path, project: Path, events: Path, work: Path) -> tuple[Measured, dict]:
    """A fresh project over `events` and its untimed `sluice run`, which must say ok."""
    project.mkdir(parents=True)
    (project / "sluice.toml").write_text(SLUICE_TOML, encoding="utf-8")
    os.symlink(events, project / "events.parquet")
    m, report = sluice_cmd(sluice_bin, ["run", "--project", project, "--json"], work, "sluice_run")
    if report.get("ok") is not True:
        raise BenchError(f"sluice run did not say ok: {json.dumps(report)[:3000]}")
    names = {a.get("name"): a for a in report.get("assets", []) if isinstance(a, dict)}
    for name in ("events", "w"):
        if name not in names:
            raise BenchError(f"sluice run reported no asset {name}: {json.dumps(report)[:3000]}")
    return m, report


def sluice_training_set(sluice_bin: Path, project: Path, spine: Path, out: Path, work: Path,
                        n_spine: int) -> tuple[Measured, dict]:
    m, summary = sluice_cmd(sluice_bin, ["training-set", "--project", project, "--spine", spine, "--timestamp", "t",
                                         "--features", "w", "--output", out, "--json"], work, "sluice_ts")
    if summary.get("rows") != n_spine:
        raise BenchError(f"sluice training-set reported {summary.get('rows')} rows, expected {n_spine:,}: {summary}")
    if summary.get("columns") not in (None, OUT_COLUMNS):
        raise BenchError(f"sluice training-set reported the columns {summary.get('columns')}, expected {OUT_COLUMNS}")
    if not out.is_file():
        raise BenchError(f"sluice training-set wrote no {out}")
    return m, summary


# --------------------------------------------------------------------------- the checks before timing


def sample_inputs(events: Path, spine: Path, target: int, d: Path) -> tuple[Path, Path, int, int]:
    """The entities holding about `target` events (a fixed pseudo-random choice), with all their
    events and spine rows, and up to 100 spine rows of entities without events; in file order."""
    ev = pq.read_table(events)
    sp = pq.read_table(spine)
    ents, counts = np.unique(ev.column("entity").to_numpy(), return_counts=True)
    perm = np.random.default_rng(7).permutation(len(ents))
    take = perm[: int(np.searchsorted(np.cumsum(counts[perm]), target)) + 1]
    chosen = pa.array(ents[take])
    s_ent = sp.column("entity")
    absent = np.flatnonzero(~pc.is_in(s_ent, value_set=pa.array(ents)).to_numpy(zero_copy_only=False))[:100]
    keep = pc.is_in(s_ent, value_set=chosen).to_numpy(zero_copy_only=False)
    keep[absent] = True
    d.mkdir(parents=True, exist_ok=True)
    e_out, s_out = d / "events.parquet", d / "spine.parquet"
    pq.write_table(ev.filter(pc.is_in(ev.column("entity"), value_set=chosen)), e_out, compression="zstd")
    pq.write_table(sp.filter(pa.array(keep)), s_out, compression="zstd")
    return e_out, s_out, pq.read_metadata(e_out).num_rows, pq.read_metadata(s_out).num_rows


def check_all(label: str, events: Path, spine: Path, ref: pa.Table, args, work: Path) -> list[str]:
    """Every tool on (events, spine) equal to `ref`; notes on types."""
    notes = []
    for tool in PEERS:
        out = work / f"{tool}.parquet"
        JOBS[tool](events, spine, out)
        t = compare(ref, pq.read_table(out), f"{label}: {tool}")
        notes += [f"{tool}: {n}" for n in t]
    if not args.peers_only:
        _, _ = sluice_setup(args.sluice_bin, work / "project", events, work)
        out = work / "sluice.parquet"
        sluice_training_set(args.sluice_bin, work / "project", spine, out, work, ref.num_rows)
        t = compare(ref, pq.read_table(out), f"{label}: sluice")
        notes += [f"sluice: {n}" for n in t]
    return notes


# --------------------------------------------------------------------------- results


@dataclass
class Series:
    tool: str
    what: str
    seconds: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)

    def add(self, seconds: float, peak: int) -> None:
        self.seconds.append(seconds)
        self.peak_rss.append(peak)

    @property
    def best(self) -> Optional[float]:
        return min(self.seconds) if self.seconds else None

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def peak(self) -> Optional[int]:
        return max(self.peak_rss) if self.peak_rss else None

    def to_json(self) -> dict:
        return {"tool": self.tool, "what": self.what, "seconds": self.seconds, "best": self.best,
                "median": self.median, "peak_rss_bytes": self.peak}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", help="the directory make_data.py wrote")
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peers-only", action="store_true", help="DuckDB and Polars only, not sluice")
    ap.add_argument("--check-naive", type=int, default=20_000, metavar="N",
                    help="events in the sample checked against the naive reference first (default 20000; 0: skip)")
    ap.add_argument("--scratch", type=Path, default=None, help="where the outputs go (default: a temporary dir)")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    ap.add_argument("--events-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spine-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # one timed job in this process; its report on stdout
        seconds = JOBS[args.worker](args.events_file, args.spine_file, args.out)
        print(json.dumps({"seconds": seconds, "vm_hwm": vm_hwm("self")}))
        return 0

    if args.data is None:
        ap.error("give the data directory (made by make_data.py)")
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if not args.peers_only:
        if args.sluice_bin is None:
            ap.error("give --sluice-bin or set SLUICE_BIN (or pass --peers-only)")
        args.sluice_bin = args.sluice_bin.resolve()
    data = args.data.resolve()
    events, spine = data / "events.parquet", data / "spine.parquet"
    expected = json.loads((data / "expected.json").read_text(encoding="utf-8"))
    n_events, n_spine = pq.read_metadata(events).num_rows, pq.read_metadata(spine).num_rows

    import duckdb
    import polars as pl
    versions = {"python": platform.python_version(), "duckdb": duckdb.__version__, "polars": pl.__version__,
                "pyarrow": pa.__version__, "numpy": np.__version__}
    if not args.peers_only:
        versions["sluice"] = sluice_version(args.sluice_bin)
    print("windows: 9 features (count, sum, mean of amount over [t - w, t], w = 7, 30, 90 days) as of each "
          "spine row's time")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores; repetitions: {args.reps}")
    print(f"input: {n_events:,} events ({expected['entities']:,} entities, the busiest with "
          f"{expected['events_of_busiest_entity']:,}, median {expected['events_per_entity_median']:,.0f}; "
          f"{expected['events_null_amount']:,} null amounts), {n_spine:,} spine rows "
          f"({expected['spine_entities_without_events']:,} of entities without events)", flush=True)

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-windows-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)
    doc: dict = {"benchmark": "windows", "versions": versions, "cores": os.cpu_count(), "reps": args.reps,
                 "input": {"events": n_events, "spine": n_spine, **expected}, "windows_days": list(WINDOWS)}
    notes: list[str] = []
    try:
        # 1. The hand-made case.
        d = args.scratch / "hand"
        h_events, h_spine, h_expected = hand_case(d)
        compare(h_expected, naive_reference(h_events, h_spine), "hand-made case: the naive reference")
        notes += check_all("hand-made case", h_events, h_spine, h_expected, args, d)
        print(f"check 1: the hand-made case ({len(HAND_EVENTS)} events, {len(HAND_SPINE)} spine rows): "
              f"{'every tool' if not args.peers_only else 'DuckDB, Polars'} and the naive reference give the "
              "written answers", flush=True)
        shutil.rmtree(d, ignore_errors=True)

        # 2. A sample against the naive reference.
        if args.check_naive > 0:
            d = args.scratch / "sample"
            s_events, s_spine, ne, ns = sample_inputs(events, spine, args.check_naive, d)
            t0 = time.perf_counter()
            naive = naive_reference(s_events, s_spine)
            notes += check_all("sample", s_events, s_spine, naive, args, d)
            print(f"check 2: a sample of {ne:,} events and {ns:,} spine rows: every tool equals the naive "
                  f"reference ({time.perf_counter() - t0:.1f} s)", flush=True)
            doc["naive_check"] = {"events": ne, "spine": ns}
            shutil.rmtree(d, ignore_errors=True)

        # 3. The timed repetitions.
        series: dict[str, Series] = {}
        if not args.peers_only:
            series["sluice"] = Series("sluice", "training-set, process wall")
            series["sluice_run"] = Series("sluice", "run (untimed setup: ingest + per-event view)")
        series["duckdb"] = Series("duckdb", "range join + GROUP BY, in process")
        series["polars"] = Series("polars", "union + 3 rolling, in process")
        tools = ([] if args.peers_only else ["sluice"]) + PEERS
        ref: Optional[pa.Table] = None
        ref_tool = None
        for rep in range(args.reps):
            order = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in order:
                work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=args.scratch))
                out = work / "out.parquet"
                try:
                    if tool == "sluice":
                        m_run, _ = sluice_setup(args.sluice_bin, work / "project", events, work)
                        series["sluice_run"].add(m_run.wall_s, m_run.peak_rss)
                        m, _ = sluice_training_set(args.sluice_bin, work / "project", spine, out, work, n_spine)
                        series["sluice"].add(m.wall_s, m.peak_rss)
                    else:
                        m, rep_json = run_peer(tool, events, spine, out, work)
                        series[tool].add(rep_json["seconds"], max(m.peak_rss, rep_json.get("vm_hwm") or 0))
                    got = pq.read_table(out)
                    if ref is None:
                        ref, ref_tool = got, tool
                        compare(ref, got, tool)  # its columns
                        status = "the reference for the rest"
                    else:
                        tn = compare(ref, got, f"{tool} (repetition {rep + 1})")
                        if tn and rep == 0:
                            notes.append(f"{tool} types, against {ref_tool}'s: " + "; ".join(tn))
                        status = f"equal to {ref_tool}'s"
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                    gc.collect()
                print(f"  rep {rep + 1}/{args.reps}  {tool:<7} done, output {status}", flush=True)

        # Every output agreed: the numbers.
        pairs = int(pc.sum(ref.column("n_90d")).as_py())
        empty90 = int(pc.sum(pc.equal(ref.column("n_90d"), 0)).as_py())
        all_null7 = int(pc.sum(pc.and_(pc.greater(ref.column("n_7d"), 0),
                                       pc.is_null(ref.column("amount_7d")))).as_py())
        notes.insert(0, f"all outputs equal cell by cell: {n_spine:,} rows; {pairs:,} (spine row, event) pairs in "
                        f"the 90-day windows; {empty90:,} rows with an empty 90-day window; {all_null7:,} with "
                        "7-day events but no amount")
        print()
        print(f"{n_spine:,} spine rows x {n_events:,} events, 9 features (best and median of {args.reps}, seconds; "
              "peak resident memory of the process)")
        base = series.get("sluice")
        header = f"{'tool: what':<52} {'best s':>8} {'median s':>9} {'peak GB':>8} {'/ sluice':>9}"
        print(header)
        print("-" * len(header))
        for key, s in series.items():
            ratio = f"{s.best / base.best:.2f}" if base and key in PEERS else "-"
            print(f"{(s.tool + ': ' + s.what)[:52]:<52} {s.best:>8.3f} {s.median:>9.3f} {s.peak / 1e9:>8.2f} "
                  f"{ratio:>9}")
        if base:
            print("  / sluice: the peer's best time over sluice's best training-set time (above 1: sluice is faster)")
            doc["ratios"] = {f"{p}/sluice": series[p].best / base.best for p in PEERS}
        else:
            print("  peers only: sluice was not run, so there are no ratios.")
        print("  sluice's time is the whole process (start-up included); the peers' is the job in an interpreter "
              "that has already imported them; every peak is the whole process's")
        for n in notes:
            print("  " + n)
        doc["results"] = {k: s.to_json() for k, s in series.items()}
        doc["notes"] = notes
    except BenchError as e:
        print(f"\nwindows failed: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
