#!/usr/bin/env python3
"""features_a: the seed's pattern-3 feature pipeline, one row per user: sluice against
Polars (lazy and eager), pandas and DuckDB.

The input is the seed's ``generate_sample_data(n)`` (1,000 users, 4 event types, 4
categories, an event every 30 s from 2026-01-01) as zstd Parquet, made by make_data.py.
Every tool computes, reading that file, one table with one row per user:

* user aggregates: total_events (count of event_type), total_amount, avg_amount,
  unique_categories (distinct categories), first_event, last_event,
  active_days = whole days between last_event and first_event + 1,
  avg_daily_events = total_events / max(active_days, 1);
* windows of 7, 30 and 90 days as of reference_date = the newest event_time of the whole
  file, over the events with event_time >= reference_date - N days:
  amount_sum_Nd, amount_mean_Nd, event_count_Nd, category_nunique_Nd;
* the category pivot: category_amount_<category> (sum of amount) and
  category_count_<category> (count), 0 where the user has no such event.

Timed, per tool, from reading the Parquet file to the result written as zstd Parquet:

* **Polars lazy**: ``scan_parquet``, one plan (the reference date broadcast with
  ``with_columns``, windows and pivot as filtered aggregations), ``collect``.
* **Polars eager**: ``read_parquet``, then the seed's ``polars_features``,
  ``time_window_features`` and ``category_encoding_features`` on the frame, rewritten for
  current Polars (``clip(lower_bound=1)``, ``join(how="full", coalesce=True)``,
  ``pivot(on=...)``), joined on user_id.
* **pandas**: ``read_parquet``, the seed's ``pandas_features``, the windows as filtered
  ``groupby().agg()``, the pivot as ``groupby([user_id, category]).agg().unstack()``.
* **DuckDB**: one SQL query over ``read_parquet``, copied to Parquet.
* **sluice**: ``sluice run --project DIR --json`` on a fresh project each repetition (a
  Parquet source ``events`` and the feature view ``user_features``, as_of = "newest").
  Reported three times, labelled: the view asset's own ``duration_ms`` less its online
  write (``online.duration_ms``): the feature computation, reading sluice's Parquet
  snapshot of the source and writing the view's Delta table, the work a peer does; the
  same with the online write, which sluice counts in the view's ``duration_ms``; and the
  whole run's wall time (process start-up, ingesting the source as a Delta table, the
  view, the online store, the run log).

Polars lazy and DuckDB are given the four category values (they are fixed by the seed's
generator); Polars eager, pandas and sluice find them in the data.

Every tool's table is checked cell by cell against DuckDB's (rows by user_id; floats to
1e-9 relative, counts and timestamps exactly) after every repetition; sluice's view is read
back from its Delta table. Any difference or failure exits non-zero.

Usage (normally through run.sh):

    python features_a.py --sluice-bin PATH [--reps 3] EVENTS.parquet [EVENTS.parquet ...]
    python features_a.py --peers-only EVENTS.parquet
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from functools import reduce
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, find_delta_table, read_delta_table, sluice_version, sql_str  # noqa: E402
from fcommon import Series, asset_ms, compare_tables, print_series, run_sluice, sluice_asset, type_notes  # noqa: E402

CATEGORIES = ["books", "clothing", "electronics", "food"]  # the seed generator's, sorted
WINDOWS = ["7d", "30d", "90d"]
BASE = ["total_events", "total_amount", "avg_amount", "unique_categories", "first_event", "last_event"]
WINDOW_COLS = [f"{m}_{w}" for w in WINDOWS for m in ("amount_sum", "amount_mean", "event_count", "category_nunique")]
PIVOT_COLS = [f"category_amount_{c}" for c in CATEGORIES] + [f"category_count_{c}" for c in CATEGORIES]
DERIVED = ["active_days", "avg_daily_events"]
COLUMNS = ["user_id"] + BASE + WINDOW_COLS + PIVOT_COLS + DERIVED

# sluice's derived features, as SQL over the features before them. Kept here, in one place:
# the core may change the expression sluice accepts for active_days.
ACTIVE_DAYS_SQL = "CAST(floor(date_part('epoch', last_event - first_event) / 86400) AS BIGINT) + 1"
# The CAST keeps the division a float division in engines where BIGINT / BIGINT is integer.
AVG_DAILY_EVENTS_SQL = "CAST(total_events AS DOUBLE) / greatest(active_days, 1)"


def days(w: str) -> int:
    return int(w.rstrip("d"))


# --------------------------------------------------------------------------- Polars lazy


def run_polars_lazy(data: Path, out: Path) -> None:
    ev = pl.scan_parquet(data).with_columns(pl.col("event_time").max().alias("_ref"))
    aggs = [
        pl.col("event_type").count().alias("total_events"),
        pl.col("amount").sum().alias("total_amount"),
        pl.col("amount").mean().alias("avg_amount"),
        pl.col("category").n_unique().alias("unique_categories"),
        pl.col("event_time").min().alias("first_event"),
        pl.col("event_time").max().alias("last_event"),
    ]
    for w in WINDOWS:
        inside = pl.col("event_time") >= pl.col("_ref") - pl.duration(days=days(w))
        aggs += [
            pl.col("amount").filter(inside).sum().alias(f"amount_sum_{w}"),
            pl.col("amount").filter(inside).mean().alias(f"amount_mean_{w}"),
            pl.col("event_type").filter(inside).count().alias(f"event_count_{w}"),
            pl.col("category").filter(inside).n_unique().alias(f"category_nunique_{w}"),
        ]
    for c in CATEGORIES:
        aggs.append(pl.col("amount").filter(pl.col("category") == c).sum().alias(f"category_amount_{c}"))
    for c in CATEGORIES:
        aggs.append(pl.col("event_type").filter(pl.col("category") == c).count().alias(f"category_count_{c}"))
    q = (
        ev.group_by("user_id").agg(aggs)
        .with_columns(((pl.col("last_event") - pl.col("first_event")).dt.total_days() + 1).alias("active_days"))
        .with_columns((pl.col("total_events") / pl.col("active_days").clip(lower_bound=1)).alias("avg_daily_events"))
        .select(COLUMNS)
    )
    q.collect().write_parquet(out, compression="zstd")


# --------------------------------------------------------------------------- Polars eager (the seed's functions)


def polars_features(pl_df: pl.DataFrame) -> pl.DataFrame:
    return pl_df.group_by("user_id").agg([
        pl.col("event_type").count().alias("total_events"),
        pl.col("amount").sum().alias("total_amount"),
        pl.col("amount").mean().alias("avg_amount"),
        pl.col("category").n_unique().alias("unique_categories"),
        pl.col("event_time").min().alias("first_event"),
        pl.col("event_time").max().alias("last_event"),
    ]).with_columns([
        (pl.col("last_event") - pl.col("first_event")).dt.total_days().add(1).alias("active_days"),
    ]).with_columns([
        (pl.col("total_events") / pl.col("active_days").clip(lower_bound=1)).alias("avg_daily_events"),
    ])


def time_window_features(pl_df: pl.DataFrame, windows: list[str]) -> pl.DataFrame:
    reference_date = pl_df.select(pl.col("event_time").max()).item()
    all_features = []
    for window in windows:
        cutoff = reference_date - timedelta(days=days(window))
        all_features.append(pl_df.filter(pl.col("event_time") >= cutoff).group_by("user_id").agg([
            pl.col("amount").sum().alias(f"amount_sum_{window}"),
            pl.col("amount").mean().alias(f"amount_mean_{window}"),
            pl.col("event_type").count().alias(f"event_count_{window}"),
            pl.col("category").n_unique().alias(f"category_nunique_{window}"),
        ]))
    return reduce(lambda a, b: a.join(b, on="user_id", how="full", coalesce=True), all_features)


def category_encoding_features(pl_df: pl.DataFrame) -> pl.DataFrame:
    return pl_df.group_by(["user_id", "category"]).agg([
        pl.col("amount").sum().alias("category_amount"),
        pl.col("event_type").count().alias("category_count"),
    ]).pivot(
        index="user_id",
        on="category",
        values=["category_amount", "category_count"],
    ).fill_null(0)


def run_polars_eager(data: Path, out: Path) -> None:
    df = pl.read_parquet(data)
    result = (
        polars_features(df)
        .join(time_window_features(df, WINDOWS), on="user_id", how="full", coalesce=True)
        .join(category_encoding_features(df), on="user_id", how="full", coalesce=True)
    )
    result.select(COLUMNS).write_parquet(out, compression="zstd")


# --------------------------------------------------------------------------- pandas


def pandas_features(df: pd.DataFrame) -> pd.DataFrame:
    """The seed's, verbatim."""
    user_agg = df.groupby("user_id").agg(
        total_events=("event_type", "count"),
        total_amount=("amount", "sum"),
        avg_amount=("amount", "mean"),
        unique_categories=("category", "nunique"),
        first_event=("event_time", "min"),
        last_event=("event_time", "max"),
    )
    user_agg["active_days"] = (user_agg["last_event"] - user_agg["first_event"]).dt.days + 1
    user_agg["avg_daily_events"] = user_agg["total_events"] / user_agg["active_days"].clip(lower=1)
    return user_agg.reset_index()


def pandas_window_features(df: pd.DataFrame, windows: list[str]) -> pd.DataFrame:
    reference_date = df["event_time"].max()
    parts = []
    for w in windows:
        recent = df[df["event_time"] >= reference_date - pd.Timedelta(days=days(w))]
        parts.append(recent.groupby("user_id").agg(**{
            f"amount_sum_{w}": ("amount", "sum"),
            f"amount_mean_{w}": ("amount", "mean"),
            f"event_count_{w}": ("event_type", "count"),
            f"category_nunique_{w}": ("category", "nunique"),
        }))
    return pd.concat(parts, axis=1)  # an outer join on user_id


def pandas_category_features(df: pd.DataFrame) -> pd.DataFrame:
    wide = df.groupby(["user_id", "category"]).agg(
        category_amount=("amount", "sum"), category_count=("event_type", "count"),
    ).unstack("category", fill_value=0)
    wide.columns = [f"{value}_{cat}" for value, cat in wide.columns]
    return wide


def run_pandas(data: Path, out: Path) -> None:
    df = pd.read_parquet(data)
    result = (
        pandas_features(df).set_index("user_id")
        .join(pandas_window_features(df, WINDOWS), how="outer")
        .join(pandas_category_features(df), how="outer")
        .reset_index()
    )
    result[COLUMNS].to_parquet(out, compression="zstd", index=False)


# --------------------------------------------------------------------------- DuckDB


def duckdb_query(data: Path) -> str:
    aggs = [
        "count(event_type) AS total_events",
        "sum(amount) AS total_amount",
        "avg(amount) AS avg_amount",
        "count(DISTINCT category) AS unique_categories",
        "min(event_time) AS first_event",
        "max(event_time) AS last_event",
    ]
    for w in WINDOWS:
        inside = f"FILTER (WHERE event_time >= ref - INTERVAL {days(w)} DAY)"
        aggs += [
            f"sum(amount) {inside} AS amount_sum_{w}",
            f"avg(amount) {inside} AS amount_mean_{w}",
            f"count(event_type) {inside} AS event_count_{w}",
            f"count(DISTINCT category) {inside} AS category_nunique_{w}",
        ]
    aggs += [f"coalesce(sum(amount) FILTER (WHERE category = {sql_str(c)}), 0) AS category_amount_{c}"
             for c in CATEGORIES]
    aggs += [f"count(event_type) FILTER (WHERE category = {sql_str(c)}) AS category_count_{c}" for c in CATEGORIES]
    select = ",\n      ".join(aggs)
    return f"""
        WITH ev AS (SELECT * FROM read_parquet({sql_str(data)})),
        agg AS (
            SELECT user_id,
              {select}
            FROM ev CROSS JOIN (SELECT max(event_time) AS ref FROM ev)
            GROUP BY user_id, ref
        ),
        days AS (
            SELECT *, (epoch_us(last_event) - epoch_us(first_event)) // 86400000000 + 1 AS active_days FROM agg
        )
        SELECT {', '.join(COLUMNS[:-1])}, total_events / greatest(active_days, 1) AS avg_daily_events FROM days
    """


def run_duckdb(data: Path, out: Path) -> None:
    con = duckdb.connect()
    try:
        con.execute(f"COPY ({duckdb_query(data)}) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)").fetchall()
    finally:
        con.close()


PEERS: dict[str, Callable[[Path, Path], None]] = {
    "duckdb": run_duckdb,
    "polars_lazy": run_polars_lazy,
    "polars_eager": run_polars_eager,
    "pandas": run_pandas,
}

# --------------------------------------------------------------------------- sluice

SLUICE_TOML = """\
[project]
name = "features_a"

[sources.events]
path = {path}

[features.user_features]
source = "events"
entity = "user_id"
timestamp = "event_time"
as_of = "newest"

[features.user_features.aggregates]
total_events = {{ agg = "count", column = "event_type" }}
total_amount = {{ agg = "sum", column = "amount" }}
avg_amount = {{ agg = "mean", column = "amount" }}
unique_categories = {{ agg = "count_distinct", column = "category" }}
first_event = {{ agg = "min", column = "event_time" }}
last_event = {{ agg = "max", column = "event_time" }}
{windows}
[features.user_features.pivots.category]
column = "category"
value = "amount"

[features.user_features.derived]
active_days = {active_days}
avg_daily_events = {avg_daily}
"""


def write_sluice_project(data: Path, project: Path) -> None:
    project.mkdir(parents=True)
    windows = ""
    for w in WINDOWS:
        windows += (
            f'amount_sum_{w} = {{ agg = "sum", column = "amount", window = "{w}" }}\n'
            f'amount_mean_{w} = {{ agg = "mean", column = "amount", window = "{w}" }}\n'
            f'event_count_{w} = {{ agg = "count", column = "event_type", window = "{w}" }}\n'
            f'category_nunique_{w} = {{ agg = "count_distinct", column = "category", window = "{w}" }}\n'
        )
    toml = SLUICE_TOML.format(path=json.dumps(str(data)), windows=windows,
                              active_days=json.dumps(ACTIVE_DAYS_SQL), avg_daily=json.dumps(AVG_DAILY_EVENTS_SQL))
    (project / "sluice.toml").write_text(toml, encoding="utf-8")


def check_sluice_view(project: Path, ref: pa.Table, users: int) -> str:
    """Compare the view's Delta table with DuckDB's table; returns a note."""
    table = find_delta_table(project, "user_features")
    if table is None:
        raise BenchError("sluice: no Delta table user_features under the project")
    got = read_delta_table(table)
    if got is None:
        raise BenchError("sluice: the Delta table user_features has no live file")
    extra = [c for c in got.column_names if c not in COLUMNS]
    got = got.sort_by("user_id")
    compare_tables(ref, got, COLUMNS, "sluice user_features", row_labels=ref.column("user_id").to_pylist())
    notes = [f"user_features: {got.num_rows} rows x {got.num_columns} columns, equal to DuckDB's cell by cell"]
    if "event_time" in extra:  # the format: as_of=newest, the timestamp column is the entity's newest event
        same = got.column("event_time").cast(pa.int64()).equals(got.column("last_event").cast(pa.int64()))
        notes.append("its event_time column equals last_event" if same
                     else "its event_time column is NOT each user's last_event")
        extra.remove("event_time")
    if extra:
        notes.append(f"extra columns {extra}")
    types = type_notes(ref, got, COLUMNS)
    if types:
        notes.append("types: " + "; ".join(types))
    return "; ".join(notes)


# --------------------------------------------------------------------------- driver


def reference(data: Path) -> pa.Table:
    con = duckdb.connect()
    try:
        t = con.sql(duckdb_query(data)).to_arrow_table().sort_by("user_id")
    finally:
        con.close()
    if any(t.column(c).null_count for c in WINDOW_COLS):
        print("note: some user has no event in some window; tools differ there (null or 0), so a "
              "difference in those cells may be a convention, not an error", file=sys.stderr)
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="+", help="events Parquet files (make_data.py events)")
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peers-only", action="store_true")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"default: {','.join(PEERS)}")
    ap.add_argument("--scratch", type=Path, default=None)
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")
    if not args.peers_only:
        if args.sluice_bin is None:
            ap.error("give --sluice-bin or set SLUICE_BIN (or pass --peers-only)")
        args.sluice_bin = args.sluice_bin.resolve()

    versions = {"python": platform.python_version(), "polars": pl.__version__, "pandas": pd.__version__,
                "duckdb": duckdb.__version__, "pyarrow": pa.__version__, "numpy": np.__version__}
    if not args.peers_only:
        versions["sluice"] = sluice_version(args.sluice_bin)
    print("features_a: the seed's pattern-3 features, one row per user")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores; repetitions: {args.reps}", flush=True)

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-features-a-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)
    doc: dict = {"benchmark": "features_a", "versions": versions, "cores": os.cpu_count(), "reps": args.reps,
                 "inputs": []}
    try:
        for data in args.data:
            data = data.resolve()
            rows = pq.read_metadata(data).num_rows
            print(f"\ninput: {data} ({rows:,} rows, {data.stat().st_size / 1e6:.1f} MB)", flush=True)
            ref = reference(data)
            tools = ([] if args.peers_only else ["sluice"]) + peers
            series = {p: Series(p, "read Parquet, compute, write Parquet") for p in peers}
            if not args.peers_only:
                series["sluice_view"] = Series("sluice", "view duration_ms less its online write",
                                               short="sluice view")
                series["sluice_view_online"] = Series("sluice", "view duration_ms (its online write included)")
                series["sluice_run"] = Series("sluice", "whole `sluice run` wall (+ ingest)", short="sluice run")
            online_ms: list[float] = []
            notes: list[str] = []
            for rep in range(args.reps):
                order = tools[rep % len(tools):] + tools[: rep % len(tools)]
                for tool in order:
                    work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=args.scratch))
                    try:
                        if tool == "sluice":
                            project = work / "project"
                            write_sluice_project(data, project)
                            m, report = run_sluice(args.sluice_bin, ["run", "--project", str(project), "--json"],
                                                   work, "sluice")
                            sluice_asset(report, "events")
                            view = sluice_asset(report, "user_features")
                            if view.get("rows_out") not in (None, ref.num_rows):
                                raise BenchError(f"sluice: user_features rows_out {view.get('rows_out')}, "
                                                 f"expected {ref.num_rows} users")
                            vms = asset_ms(view)
                            online = view.get("online")
                            if not isinstance(online, dict):
                                raise BenchError(f"sluice: user_features reports no online write: {view}")
                            oms = asset_ms({"name": "user_features online", **online})
                            online_ms.append(oms)
                            series["sluice_view"].add((vms - oms) / 1000)
                            series["sluice_view_online"].add(vms / 1000)
                            series["sluice_run"].add(m.wall_s)
                            if rep == 0:
                                notes.append("sluice: " + check_sluice_view(project, ref, ref.num_rows))
                            line = f"view {vms / 1000:8.3f} s  run {m.wall_s:8.3f} s  (online {oms / 1000:.3f} s)"
                        else:
                            out = work / "out.parquet"
                            t0 = time.perf_counter()
                            PEERS[tool](data, out)
                            elapsed = time.perf_counter() - t0
                            got = pq.read_table(out).sort_by("user_id")
                            compare_tables(ref, got, COLUMNS, f"{tool} ({rows:,} rows)",
                                           row_labels=ref.column("user_id").to_pylist())
                            series[tool].add(elapsed)
                            line = f"{elapsed:8.3f} s  ({got.num_rows} users, equal to DuckDB's)"
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                        gc.collect()
                    print(f"  rep {rep + 1}/{args.reps}  {tool:<13} {line}", file=sys.stderr, flush=True)

            ordered = ([] if args.peers_only else
                       [series["sluice_view"], series["sluice_view_online"], series["sluice_run"]]) + \
                [series[p] for p in peers]
            baselines = [] if args.peers_only else [series["sluice_view"], series["sluice_run"]]
            print_series(f"{rows:,} events, {ref.num_rows:,} users, {ref.num_columns - 1} features "
                         f"(best and median of {args.reps}, seconds)", ordered, baselines, memory=False)
            if online_ms:
                print(f"  sluice's view writes the online store after its Delta table (online.duration_ms, best "
                      f"{min(online_ms) / 1000:.3f} s), inside the view's duration_ms; the peers write no online "
                      "store, so the view's row compares its duration_ms less that write")
            for n in notes:
                print("  " + n)
            if args.peers_only:
                print("  peers only: sluice was not run, so there are no ratios.")
            print(f"  every tool's table equals DuckDB's cell by cell ({ref.num_rows} rows x {len(COLUMNS)} columns)")
            doc["inputs"].append({"path": str(data), "rows": rows, "users": ref.num_rows,
                                  "results": [s.to_json() for s in ordered],
                                  "sluice_online_ms": online_ms or None, "notes": notes})
    except BenchError as e:
        print(f"\nfeatures_a failed: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
