#!/usr/bin/env python3
"""features_b: a point-in-time training set, 1M spine rows over 10M feature rows: sluice
against Feast (local offline store) and DuckDB (ASOF JOIN).

The inputs come from ``make_data.py features``: ``feature_rows.parquet`` (user_id, event_ts,
created_ts, f1..f5 float64, f6 int64; ~100k entities; out of order; some rows share
(user_id, event_ts) and differ in created_ts) and ``spine.parquet`` (user_id, ts, label;
~1% ids absent from the feature rows). For every spine row, in spine order, each tool
returns the spine columns and f1..f6 of the entity's feature row with the greatest event_ts
<= ts (ties broken by the greatest created_ts), or nulls when there is none or it is older
than ts - TTL (30 days; Feast's semantics, both ends inclusive).

Each tool runs as its own subprocess, so that its peak memory (``ru_maxrss`` from
``wait4``) is its own:

* **sluice**: ``sluice training-set --project DIR --spine spine.parquet --timestamp ts
  --features fv --output out.parquet --json``, after one untimed ``sluice run`` of a
  project with the Parquet source ``feature_rows`` and the SQL-mode feature view ``fv``
  (entity user_id, timestamp event_ts, created created_ts, ttl "30d"). Time: the
  process's wall time (start-up included).
* **DuckDB**: one ``COPY`` of a query over ``read_parquet``: the feature rows deduplicated
  by (user_id, event_ts) keeping the greatest created_ts (``QUALIFY row_number()``), an
  ``ASOF LEFT JOIN`` on user_id and ts >= event_ts, the features nulled when event_ts <
  ts - 30 days, ordered by the spine's row number. Time: the query, in process (imports
  excluded); the process wall time is shown too.
* **Feast** (local provider, ``file`` offline store = Dask): a fresh repository with a
  ``FileSource`` on the feature rows (timestamp_field event_ts, created_timestamp_column
  created_ts), the entity user_id and a ``FeatureView`` with ttl 30 days, applied
  (untimed); timed: ``pd.read_parquet(spine)``, ``get_historical_features(entity_df,
  features=[fv:f1..f6]).to_df()``, sorted back into spine order by a row-number column
  (Feast does not keep the order) and written to Parquet. With ``--feast-rows N`` or
  ``--feast-spine N`` Feast runs on a sample of the entities (by a hash of user_id, all
  their feature rows and spine rows, so rows per entity are as in the full set) and its
  time is scaled linearly by full spine rows / sample spine rows, marked EXTRAPOLATED;
  its memory is reported as measured on the sample.

Checks, every repetition: DuckDB's output equals the reference (the same query run by
this script); sluice's output has exactly the columns user_id, ts, label, f1..f6 and equals
the reference row by row (floats to 1e-9 relative, the rest exactly); Feast's output equals
the reference computed on the same sample, row by row. Feast's Dask store drops the spine
rows of an entity that has feature rows but none in [ts - TTL, ts] (the merge is filtered
before the rows are picked); those rows are counted and reported, and must be exactly the
rows for which the reference has nulls. Any other difference exits non-zero.

Usage (normally through run.sh):

    python features_b.py --sluice-bin PATH [--reps 3] [--feast-rows N] DATA_DIR
    python features_b.py --peers-only DATA_DIR
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
from pathlib import Path
from typing import Optional

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, sluice_version, sql_str  # noqa: E402
from fcommon import (  # noqa: E402
    FEATURES, REL_TOL, SPINE_COLUMNS, TTL_DAYS, Series, column_values, compare_tables, default_mem_limit,
    feast_version, peak_rss_self,
    print_series, rss_now, run_measured, run_sluice, sluice_asset, type_notes, worker_report, write_fv_project,
    write_sample,
)

OUT_COLUMNS = SPINE_COLUMNS + FEATURES
PEERS = ["duckdb", "feast"]


def training_set_sql(feature_rows: Path, spine: Path, with_event_ts: bool = False) -> str:
    """The point-in-time join, as one DuckDB query in spine order (`with_event_ts`: plus the
    picked row's event_ts as `__event_ts`, for the checks)."""
    inside = f"f.event_ts >= s.ts - INTERVAL {TTL_DAYS} DAY"
    feats = ", ".join(f"CASE WHEN {inside} THEN f.{c} END AS {c}" for c in FEATURES)
    if with_event_ts:
        feats += f", CASE WHEN {inside} THEN f.event_ts END AS __event_ts"
    return f"""
        WITH spine AS (
            SELECT user_id, ts, label, file_row_number AS row_nr
            FROM read_parquet({sql_str(spine)}, file_row_number = true)
        ),
        f AS (  -- one row per (user_id, event_ts): the greatest created_ts
            SELECT user_id, event_ts, {', '.join(FEATURES)}
            FROM read_parquet({sql_str(feature_rows)})
            QUALIFY row_number() OVER (PARTITION BY user_id, event_ts ORDER BY created_ts DESC) = 1
        )
        SELECT s.user_id, s.ts, s.label, {feats}
        FROM spine s ASOF LEFT JOIN f ON s.user_id = f.user_id AND s.ts >= f.event_ts
        ORDER BY s.row_nr
    """


def duckdb_connect():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'").fetchall()  # interval arithmetic on TIMESTAMPTZ in whole 24-hour days
    return con


# --------------------------------------------------------------------------- workers (one subprocess each)


def worker_duckdb(feature_rows: Path, spine: Path, out: Path) -> dict:
    base = rss_now()
    con = duckdb_connect()
    t0 = time.perf_counter()
    query = training_set_sql(feature_rows, spine)
    con.execute(f"COPY ({query}) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)").fetchall()
    seconds = time.perf_counter() - t0
    con.close()
    return {"seconds": seconds, "rss_after_imports": base, "peak_rss_self": peak_rss_self()}


def worker_feast(feature_rows: Path, spine: Path, out: Path, repo: Path) -> dict:
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    import pandas as pd

    from fcommon import feast_store
    store, refs = feast_store(repo, feature_rows)  # untimed setup: the repository and `apply`
    base = rss_now()
    t0 = time.perf_counter()
    entity_df = pd.read_parquet(spine).rename(columns={"ts": "event_timestamp"})
    entity_df["__row"] = np.arange(len(entity_df), dtype=np.int64)
    df = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    df = df.sort_values("__row").rename(columns={"event_timestamp": "ts"})
    df[OUT_COLUMNS + ["__row"]].to_parquet(out, compression="zstd", index=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_after_imports": base, "peak_rss_self": peak_rss_self(),
            "rows_out": int(len(df))}


class OutOfMemory(Exception):
    """A peer's worker ran out of memory: that peer has no result at this size."""


def run_worker(tool: str, feature_rows: Path, spine: Path, out: Path, work: Path,
               mem_limit: Optional[int]) -> tuple:
    cmd = [sys.executable, __file__, "--worker", tool, "--features-file", str(feature_rows),
           "--spine-file", str(spine), "--out", str(out), "--repo", str(work / "feast_repo")]
    m = run_measured(cmd, work, tool, mem_limit=mem_limit)
    if m.out_of_memory:
        raise OutOfMemory(f"{tool} ran out of memory after {m.wall_s:.1f} s (peak RSS {m.peak_rss / 1e9:.2f} GB"
                          + (f", address space capped at {mem_limit / 1e9:.1f} GB" if mem_limit else "") + ")")
    return m, worker_report(m, tool)


# --------------------------------------------------------------------------- checks


def tie_mismatches(ref: pa.Table, got: pa.Table, feature_rows: Path) -> np.ndarray:
    """Rows (positions in `got`) where Feast's features differ from the reference's but are
    exactly those of another feature row with the same (user_id, event_ts) as the reference's
    pick: a tie broken the other way (not by the greatest created_ts)."""
    differ = np.zeros(got.num_rows, bool)
    for c in FEATURES:
        differ |= _differs(ref.column(c), got.column(c))
    idx = np.flatnonzero(differ)
    if len(idx) == 0:
        return idx
    probe = pa.table({
        "pos": pa.array(idx, pa.int64()),
        "user_id": ref.column("user_id").take(pa.array(idx)),
        "event_ts": ref.column("__event_ts").take(pa.array(idx)),
        **{c: got.column(c).take(pa.array(idx)).cast(pa.float64()) for c in FEATURES},
    })
    con = duckdb_connect()
    try:
        con.register("probe", probe)
        match = " AND ".join(f"CAST(r.{c} AS DOUBLE) = p.{c}" for c in FEATURES)
        hit = con.sql(f"""
            SELECT DISTINCT p.pos FROM probe p JOIN read_parquet({sql_str(feature_rows)}) r
            ON r.user_id = p.user_id AND r.event_ts = p.event_ts AND {match}
        """).fetchnumpy()["pos"]
    finally:
        con.close()
    if len(hit) != len(idx):
        return np.empty(0, np.int64)  # some differences are not ties: let the full comparison report them
    return idx


def tied_picks(ref: pa.Table, feature_rows: Path) -> int:
    """Reference rows whose picked (user_id, event_ts) has more than one feature row."""
    con = duckdb_connect()
    try:
        con.register("ref", ref.select(["user_id", "__event_ts"]))
        return con.sql(f"""
            WITH tied AS (SELECT user_id, event_ts FROM read_parquet({sql_str(feature_rows)})
                          GROUP BY ALL HAVING count(*) > 1)
            SELECT count(*) FROM ref JOIN tied ON ref.user_id = tied.user_id AND ref.__event_ts = tied.event_ts
        """).fetchall()[0][0]
    finally:
        con.close()


def _differs(ref_col: pa.ChunkedArray, got_col: pa.ChunkedArray) -> np.ndarray:
    _, rv, rn = column_values(ref_col)
    _, gv, gn = column_values(got_col)
    rv, gv = rv.astype(np.float64), gv.astype(np.float64)
    return (rn != gn) | (~rn & ~gn & ~((rv == gv) | (np.abs(rv - gv) <= REL_TOL * np.maximum(np.abs(rv), np.abs(gv)))))


def check_feast(ref: pa.Table, got: pa.Table, entities_with_rows: set, feature_rows: Path) -> tuple[int, int, int]:
    """Compare Feast's rows (aligned by __row) with the reference; (rows kept, rows dropped,
    rows where Feast broke an event_ts tie the other way)."""
    rows = got.column("__row").to_numpy()
    if len(set(rows.tolist())) != len(rows):
        raise BenchError("feast: a spine row appears twice in its output")
    aligned = ref.take(pa.array(rows))
    ties = tie_mismatches(aligned, got, feature_rows)
    keep = np.ones(len(rows), bool)
    keep[ties] = False
    keep_idx = pa.array(np.flatnonzero(keep))
    compare_tables(aligned.take(keep_idx), got.take(keep_idx), OUT_COLUMNS, "feast training set (on its sample)",
                   row_labels=[f"spine row {r}" for r in rows[keep]])
    dropped = sorted(set(range(ref.num_rows)) - set(rows.tolist()))
    if dropped:
        lost = ref.take(pa.array(dropped, pa.int64()))
        for c in FEATURES:
            if lost.column(c).null_count != lost.num_rows:
                raise BenchError(f"feast dropped spine rows for which the reference has {c} values")
        users = set(lost.column("user_id").to_pylist())
        if not users <= entities_with_rows:
            raise BenchError("feast dropped spine rows of entities that have no feature rows at all")
    return len(rows), len(dropped), len(ties)


def check_sluice_output(ref: pa.Table, out: Path) -> list[str]:
    if not out.is_file():
        raise BenchError(f"sluice training-set wrote no {out}")
    got = pq.read_table(out)
    if got.column_names != OUT_COLUMNS:
        raise BenchError(f"sluice training set has the columns {got.column_names}, expected {OUT_COLUMNS} "
                         "(the spine's columns, then the features with plain names)")
    compare_tables(ref, got, OUT_COLUMNS, "sluice training set")
    return type_notes(ref, got, OUT_COLUMNS)


# --------------------------------------------------------------------------- driver


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", help="the directory make_data.py features wrote")
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peers-only", action="store_true")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"default: {','.join(PEERS)}")
    ap.add_argument("--feast-rows", type=int, default=None,
                    help="run Feast on a sample of the entities holding about N feature rows; extrapolate")
    ap.add_argument("--feast-spine", type=int, default=None,
                    help="run Feast on a sample of the entities holding about N spine rows; extrapolate")
    ap.add_argument("--feast-mem-limit", type=float, default=None,
                    help="cap the Feast worker's address space at this many GB (default: 80%% of the "
                         "machine's memory), so that running out of memory fails Feast alone")
    ap.add_argument("--scratch", type=Path, default=None)
    ap.add_argument("--json-out", type=Path, default=None)
    # worker mode (internal)
    ap.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    ap.add_argument("--features-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spine-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "duckdb":
            rep = worker_duckdb(args.features_file, args.spine_file, args.out)
        else:
            rep = worker_feast(args.features_file, args.spine_file, args.out, args.repo)
        print(json.dumps(rep))
        return 0

    if args.data is None:
        ap.error("give the data directory")
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
    data = args.data.resolve()
    feature_rows, spine = data / "feature_rows.parquet", data / "spine.parquet"
    expected = json.loads((data / "expected.json").read_text(encoding="utf-8"))
    n_rows, n_spine = pq.read_metadata(feature_rows).num_rows, pq.read_metadata(spine).num_rows

    versions = {"python": platform.python_version(), "duckdb": duckdb.__version__, "pyarrow": pa.__version__}
    if "feast" in peers:
        versions["feast"] = feast_version()
    if not args.peers_only:
        versions["sluice"] = sluice_version(args.sluice_bin)
    print("features_b: point-in-time training set (ttl 30 days)")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores; repetitions: {args.reps}")
    print(f"input: {n_rows:,} feature rows ({expected['entities']:,} entities, {expected['tied_rows']:,} rows in "
          f"tied (user_id, event_ts) pairs), {n_spine:,} spine rows ({expected['spine_missing_ids']:,} with "
          "absent ids)", flush=True)

    frac = 1.0
    if args.feast_rows:
        frac = min(frac, args.feast_rows / n_rows)
    if args.feast_spine:
        frac = min(frac, args.feast_spine / n_spine)

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-features-b-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)
    doc: dict = {"benchmark": "features_b", "versions": versions, "cores": os.cpu_count(), "reps": args.reps,
                 "input": {"feature_rows": n_rows, "spine_rows": n_spine, **expected}, "ttl_days": TTL_DAYS}
    notes: list[str] = []
    try:
        # The reference (untimed): the DuckDB query, in this process.
        con = duckdb_connect()
        t0 = time.perf_counter()
        ref = con.sql(training_set_sql(feature_rows, spine, with_event_ts=True)).to_arrow_table()
        print(f"reference (DuckDB, in process) in {time.perf_counter() - t0:.2f} s: {ref.num_rows:,} rows, "
              f"{ref.column('f1').null_count:,} with null features", flush=True)
        entities_with_rows = set(con.sql(f"SELECT DISTINCT user_id FROM read_parquet({sql_str(feature_rows)})")
                                 .fetchnumpy()["user_id"].tolist())

        # Feast's inputs: the full files, or a sample of the entities.
        f_rows, f_spine, f_ref = feature_rows, spine, ref
        scale = 1.0
        if "feast" in peers and frac < 1.0:
            sample_dir = args.scratch / "feast_sample"
            sample_dir.mkdir()
            f_rows, f_spine = sample_dir / "feature_rows.parquet", sample_dir / "spine.parquet"
            s_rows = write_sample(con, feature_rows, f_rows, frac)
            s_spine = write_sample(con, spine, f_spine, frac)
            f_ref = con.sql(training_set_sql(f_rows, f_spine, with_event_ts=True)).to_arrow_table()
            scale = n_spine / s_spine
            print(f"feast sample: {s_rows:,} feature rows, {s_spine:,} spine rows (about {frac:.1%} of the "
                  f"entities); its times are scaled by {scale:.2f}", flush=True)
        con.close()

        series: dict[str, Series] = {}
        if not args.peers_only:
            series["sluice"] = Series("sluice", "training-set, process wall")
        if "duckdb" in peers:
            series["duckdb"] = Series("duckdb", "ASOF JOIN query (in process)")
            series["duckdb_wall"] = Series("duckdb", "process wall (+ Python, import)")
        if "feast" in peers:
            series["feast"] = Series("feast", "get_historical_features (in process)", scale=scale)
            series["feast_wall"] = Series("feast", "process wall (+ import, apply)"
                                          + (", sample, NOT scaled" if scale != 1.0 else ""))
            if scale != 1.0:
                series["feast"].note = (f"ran on {s_spine:,} spine rows over {s_rows:,} feature rows (a sample of the "
                                        f"entities); time x {scale:.2f}; memory as measured on the sample")

        if not args.peers_only:
            project = args.scratch / "sluice_project"
            write_fv_project(project, feature_rows)
            m, report = run_sluice(args.sluice_bin, ["run", "--project", str(project), "--json"],
                                   args.scratch, "sluice_setup")
            sluice_asset(report, "feature_rows")
            sluice_asset(report, "fv")
            print(f"sluice setup (`sluice run`, untimed): {m.wall_s:.2f} s", flush=True)

        tools = ([] if args.peers_only else ["sluice"]) + peers
        feast_kept = feast_dropped = feast_ties = None
        feast_limit = int(args.feast_mem_limit * 1e9) if args.feast_mem_limit else default_mem_limit()
        for rep in range(args.reps):
            order = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in order:
                if tool not in tools:
                    continue  # ran out of memory in an earlier repetition
                work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=args.scratch))
                out = work / "out.parquet"
                try:
                    if tool == "sluice":
                        m, report = run_sluice(args.sluice_bin, [
                            "training-set", "--project", str(project), "--spine", str(spine), "--timestamp", "ts",
                            "--features", "fv", "--output", str(out), "--json"], work, "sluice")
                        tnotes = check_sluice_output(ref, out)
                        if rep == 0:
                            notes.append(f"sluice: training set equal to the reference row by row ({ref.num_rows:,} "
                                         "rows)" + (f"; types: {'; '.join(tnotes)}" if tnotes else "")
                                         + f"; its --json report: {json.dumps(report)[:300]}")
                        series["sluice"].add(m.wall_s, m.peak_rss)
                        line = f"wall {m.wall_s:8.3f} s  peak {m.peak_rss / 1e9:.2f} GB"
                    else:
                        rows_file, spine_file = (f_rows, f_spine) if tool == "feast" else (feature_rows, spine)
                        try:
                            m, rep_json = run_worker(tool, rows_file, spine_file, out, work,
                                                     feast_limit if tool == "feast" else None)
                        except OutOfMemory as e:
                            tools.remove(tool)
                            series[tool].note = series[f"{tool}_wall"].note = f"NO RESULT: {e}"
                            series[tool].scale = series[f"{tool}_wall"].scale = 1.0
                            print(f"  rep {rep + 1}/{args.reps}  {tool:<7} OUT OF MEMORY: {e}", file=sys.stderr)
                            continue
                        got = pq.read_table(out)
                        if tool == "duckdb":
                            compare_tables(ref, got, OUT_COLUMNS, "duckdb training set")
                            extra = ""
                        else:
                            feast_kept, feast_dropped, feast_ties = check_feast(f_ref, got, entities_with_rows, f_rows)
                            extra = f"  ({feast_dropped:,} spine rows dropped, {feast_ties:,} ties broken otherwise)"
                        series[tool].add(rep_json["seconds"], m.peak_rss)
                        series[f"{tool}_wall"].add(m.wall_s, m.peak_rss)
                        line = (f"work {rep_json['seconds']:8.3f} s  wall {m.wall_s:8.3f} s  peak "
                                f"{m.peak_rss / 1e9:.2f} GB (after imports {rep_json['rss_after_imports'] / 1e9:.2f})"
                                + extra)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                    gc.collect()
                print(f"  rep {rep + 1}/{args.reps}  {tool:<7} {line}", file=sys.stderr, flush=True)

        if feast_dropped is not None:
            n = feast_kept + feast_dropped
            notes.append(f"feast: agrees with the reference on every row it returns ({feast_kept:,} of {n:,}); it "
                         f"DROPPED {feast_dropped:,} spine rows ({feast_dropped / n:.1%}) whose entity has feature "
                         f"rows but none in [ts - {TTL_DAYS} d, ts] (DuckDB and sluice keep them, with nulls)")
            n_tied = tied_picks(f_ref, f_rows)
            if feast_ties:
                notes.append(f"feast: on {feast_ties:,} of the {n_tied:,} rows whose pick is a tie it returned, among "
                             "the feature rows with the same (user_id, event_ts), one that is NOT the newest by "
                             "created_ts (its Dask store sorts by created_ts, then again by event_ts, and the second "
                             "sort does not keep the order of equal values); those rows are left out of the comparison")
            else:
                notes.append(f"feast: every event_ts tie ({n_tied:,} rows) was broken by the greatest created_ts")
        ordered = list(series.values())
        baselines = [] if args.peers_only else [series["sluice"]]
        print_series(f"{n_spine:,} spine rows x {n_rows:,} feature rows, ttl {TTL_DAYS} d (best and median of "
                     f"{args.reps}; peak resident memory of the process)", ordered, baselines, memory=True)
        for n in notes:
            print("  " + n)
        if args.peers_only:
            print("  peers only: sluice was not run, so there are no ratios.")
        doc["results"] = [s.to_json() for s in ordered]
        doc["notes"] = notes
        doc["feast_sample_fraction"] = frac if frac < 1 else None
    except BenchError as e:
        print(f"\nfeatures_b failed: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
