#!/usr/bin/env python3
"""features_c: materialize the feature view into the online store: sluice against Feast
(SQLite online store).

The input is the feature rows of features_b (``make_data.py features``; 10M rows, ~100k
entities by default; the same file). The online store must hold, per entity, the newest
row: the greatest event_ts, ties broken by the greatest created_ts.

* **Feast** (local provider, ``file`` offline store = Dask, default ``sqlite`` online
  store): a fresh repository per repetition with the ``FileSource``, entity and
  ``FeatureView`` (ttl 30 days) of features_b, applied (untimed); timed:
  ``store.materialize(start, end)`` over the whole event_ts range, in its own subprocess
  (peak memory from ``wait4``). Then, untimed for the materialization, one
  ``get_online_features`` call for 100 entities (its time is shown).
  ``--feast-rows N`` runs it on a sample of the entities (by a hash of user_id, all their
  rows) and scales its time by full rows / sample rows, marked EXTRAPOLATED.
* **sluice**: ``sluice run --project DIR --json`` on a fresh project each repetition (the
  Parquet source ``feature_rows`` and the SQL-mode view ``fv``, as in features_b). Reported,
  labelled: the view's ``online.duration_ms`` (writing the online store), the view's own
  ``duration_ms``, and the run's wall time (which also ingests the source as a Delta
  table). The report must say the view wrote one online record per entity (when it gives
  ``online.entities``).

Checks: 100 entities (20 of them with a tie at their newest event_ts, 80 at random) read
back from Feast's online store must have f1..f6 and the event timestamp (Feast keeps
seconds) of DuckDB's newest row; for sluice, ``sluice get --project DIR fv USER --json``
for 20 of them must give the same values (and the event timestamp, if its output has
one). The parser of ``sluice get``'s output is tolerant: it looks, anywhere in the JSON,
for an object whose keys include f1..f6 (a value may be wrapped as {"value": ...}), and
for an event-timestamp key beside it; if it cannot find one, it says so and the online
values are reported as not verified (the timings stand). A value that differs exits
non-zero. Feast's Dask store breaks event_ts ties with an unstable sort: an entity whose
Feast values are those of another row with the same newest event_ts is counted and
reported, not failed.

Usage (normally through run.sh):

    python features_c.py --sluice-bin PATH [--reps 3] [--feast-rows N] DATA_DIR
    python features_c.py --peers-only DATA_DIR
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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, sluice_version, sql_str  # noqa: E402
from fcommon import (  # noqa: E402
    FEATURES, REL_TOL, Series, asset_ms, default_mem_limit, feast_version, peak_rss_self, print_series, rss_now,
    run_measured, run_sluice, sluice_asset, worker_report, write_fv_project, write_sample,
)

N_CHECK_FEAST = 100
N_CHECK_SLUICE = 20
PEERS = ["feast"]


def latest_sql(feature_rows: Path) -> str:
    """The newest row per entity (ties by created_ts)."""
    return f"""
        SELECT user_id, event_ts, created_ts, {', '.join(FEATURES)}
        FROM read_parquet({sql_str(feature_rows)})
        QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY event_ts DESC, created_ts DESC) = 1
    """


def duckdb_connect():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


def to_us(ts: Any) -> Optional[int]:
    """A timestamp as integer microseconds since the epoch (naive = UTC)."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        delta = ts - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return int(ts)


# --------------------------------------------------------------------------- the Feast worker


def worker_feast(feature_rows: Path, repo: Path, entities_file: Path, out: Path) -> dict:
    import warnings
    warnings.filterwarnings("ignore")
    from fcommon import feast_store
    store, refs = feast_store(repo, feature_rows)  # untimed setup
    span = json.loads(entities_file.read_text(encoding="utf-8"))
    start = datetime.fromisoformat(span["start"])
    end = datetime.fromisoformat(span["end"])
    base = rss_now()
    t0 = time.perf_counter()
    store.materialize(start_date=start, end_date=end)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    resp = store.get_online_features(features=refs, entity_rows=[{"user_id": u} for u in span["entities"]])
    online = resp.to_dict(include_event_timestamps=True)
    read_s = time.perf_counter() - t1
    out.write_text(json.dumps(online, default=str), encoding="utf-8")
    return {"seconds": seconds, "online_read_s": read_s, "rss_after_imports": base, "peak_rss_self": peak_rss_self()}


# --------------------------------------------------------------------------- checks


def values_equal(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, float) or isinstance(got, float):
        try:
            w, g = float(want), float(got)
        except (TypeError, ValueError):
            return False
        return w == g or abs(w - g) <= REL_TOL * max(abs(w), abs(g))
    return want == got


def is_other_tie(con, feature_rows: Path, user: str, event_ts_us: int, got: dict) -> bool:
    """Whether `got`'s f1..f6 are those of some row of `user` with event_ts `event_ts_us`."""
    rows = con.sql(
        f"SELECT {', '.join(FEATURES)} FROM read_parquet({sql_str(feature_rows)}) "
        f"WHERE user_id = {sql_str(user)} AND epoch_us(event_ts) = {event_ts_us}"
    ).fetchall()
    return any(all(values_equal(r[i], got.get(c)) for i, c in enumerate(FEATURES)) for r in rows)


def check_feast_online(online: dict, ref: dict, feature_rows: Path) -> tuple[int, int]:
    """Feast's online values against the newest rows; (entities equal, ties broken otherwise)."""
    users = online.get("user_id") or []
    equal = ties = 0
    problems = []
    con = duckdb_connect()
    try:
        for i, u in enumerate(users):
            want = ref[u]
            got = {c: online[c][i] for c in FEATURES}
            if all(values_equal(want[c], got[c]) for c in FEATURES):
                ts = online.get("f1__ts", [None] * len(users))[i]
                if ts is not None and int(ts) != want["event_ts"] // 1_000_000:
                    problems.append(f"{u}: event timestamp {ts} s, expected {want['event_ts'] // 1_000_000} s")
                equal += 1
            elif is_other_tie(con, feature_rows, u, want["event_ts"], got):
                ties += 1
            else:
                problems.append(f"{u}: {got}, expected {({c: want[c] for c in FEATURES})}")
    finally:
        con.close()
    if len(users) != len(ref):
        problems.append(f"{len(users)} entities read back, {len(ref)} asked")
    if problems:
        raise BenchError("feast online store differs from the newest rows:\n  " + "\n  ".join(problems[:10]))
    return equal, ties


TS_KEYS = ("event_ts", "event_timestamp", "timestamp", "event_time", "ts", "_event_ts", "__event_ts")


def parse_ts(v: Any) -> Optional[tuple[int, str]]:
    """(microseconds since the epoch, the precision given) of a JSON timestamp, or None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        x = float(v)
        for limit, mult, prec in ((1e17, 1e-3, "ns"), (1e14, 1, "us"), (1e11, 1e3, "ms")):
            if abs(x) >= limit:
                return int(round(x * mult)), prec
        return int(round(x * 1e6)), "s"
    if isinstance(v, str):
        s = v.strip().replace("Z", "+00:00").replace(" UTC", "+00:00")
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            return None
        return to_us(dt), "us"
    return None


def unwrap(v: Any) -> Any:
    if isinstance(v, dict):
        for k in ("value", "v", "val"):
            if k in v:
                return unwrap(v[k])
    if isinstance(v, list) and len(v) == 1:
        return unwrap(v[0])
    return v


def find_record(doc: Any) -> Optional[tuple[dict, Optional[Any]]]:
    """Somewhere in `doc`: the feature values (a dict with f1..f6, or a list of
    {name, value} objects) and an event timestamp beside them (or in an enclosing object)."""
    def ts_in(d: dict) -> Optional[Any]:
        for k in TS_KEYS:
            if k in d and not isinstance(d[k], (dict, list)):
                return d[k]
        for k, v in d.items():
            if isinstance(k, str) and ("event" in k or k.endswith("_ts")) and "created" not in k \
                    and not isinstance(v, (dict, list)) and parse_ts(v):
                return v
        return None

    def walk(node: Any, parents: list) -> Optional[tuple[dict, Optional[Any]]]:
        if isinstance(node, dict):
            if all(c in node for c in FEATURES):
                ts = ts_in(node)
                for p in reversed(parents):
                    ts = ts if ts is not None else ts_in(p)
                return {c: unwrap(node[c]) for c in FEATURES}, ts
            for v in node.values():
                hit = walk(v, parents + [node])
                if hit:
                    return hit
        elif isinstance(node, list):
            named = {}
            for item in node:
                if isinstance(item, dict):
                    name = item.get("name") or item.get("feature")
                    if name in FEATURES:
                        named[name] = unwrap(item.get("value"))
            if all(c in named for c in FEATURES):
                ts = None
                for p in reversed(parents):
                    ts = ts if ts is not None else ts_in(p)
                return named, ts
            for v in node:
                hit = walk(v, parents)
                if hit:
                    return hit
        return None

    return walk(doc, [])


def check_sluice_get(sluice_bin: Path, project: Path, users: list[str], ref: dict,
                     work: Path) -> tuple[str, list[float]]:
    """`sluice get` for each user against the newest rows; a note, and the call times."""
    times: list[float] = []
    unparsed: list[str] = []
    no_ts = 0
    coarse = set()
    problems: list[str] = []
    for i, u in enumerate(users):
        m = run_measured([str(sluice_bin), "get", "--project", str(project), "fv", u, "--json"], work, f"get{i}")
        times.append(m.wall_s)
        if m.returncode != 0:
            unparsed.append(f"{u}: exit {m.returncode}: {(m.stderr or m.stdout).strip()[:300]}")
            continue
        try:
            doc = json.loads(m.stdout)
        except json.JSONDecodeError:
            lines = [ln for ln in m.stdout.splitlines() if ln.strip().startswith(("{", "["))]
            try:
                doc = json.loads(lines[-1]) if lines else None
            except json.JSONDecodeError:
                doc = None
        hit = find_record(doc) if doc is not None else None
        if hit is None:
            unparsed.append(f"{u}: no object with keys {FEATURES} in: {m.stdout.strip()[:300]}")
            continue
        values, ts = hit
        want = ref[u]
        bad = [c for c in FEATURES if not values_equal(want[c], values[c])]
        if bad:
            problems.append(f"{u}: {({c: values[c] for c in bad})}, expected {({c: want[c] for c in bad})}")
        parsed = parse_ts(ts) if ts is not None else None
        if parsed is None:
            no_ts += 1
        else:
            us, prec = parsed
            unit = {"ns": 1, "us": 1, "ms": 1_000, "s": 1_000_000}[prec]
            if prec in ("ms", "s"):
                coarse.add(prec)
            if us // unit != want["event_ts"] // unit:
                problems.append(f"{u}: event timestamp {ts!r}, expected {want['event_ts']} us since the epoch")
    if problems:
        raise BenchError("sluice get differs from the newest rows:\n  " + "\n  ".join(problems[:10]))
    checked = len(users) - len(unparsed)
    if unparsed:
        print("\nWARNING: could not read `sluice get --json` for some entities; their online values are NOT "
              "verified:\n  " + "\n  ".join(unparsed[:5]), file=sys.stderr)
    note = f"sluice get: {checked} of {len(users)} entities read and equal to the newest rows"
    if unparsed:
        note += f"; {len(unparsed)} NOT verified (output not understood or the command failed)"
    if no_ts:
        note += f"; {no_ts} without an event timestamp found in the output"
    if coarse:
        note += f"; timestamps given in {'/'.join(sorted(coarse))}"
    return note, times


# --------------------------------------------------------------------------- driver


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", help="the directory make_data.py features wrote")
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peers-only", action="store_true")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"default: {','.join(PEERS)}")
    ap.add_argument("--feast-rows", type=int, default=None,
                    help="materialize with Feast a sample of the entities holding about N rows; extrapolate")
    ap.add_argument("--feast-mem-limit", type=float, default=None,
                    help="cap the Feast worker's address space at this many GB (default: 80%% of the "
                         "machine's memory), so that running out of memory fails Feast alone")
    ap.add_argument("--scratch", type=Path, default=None)
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    ap.add_argument("--features-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--entities-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker_feast(args.features_file, args.repo, args.entities_file, args.out)))
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
    feature_rows = data / "feature_rows.parquet"
    expected = json.loads((data / "expected.json").read_text(encoding="utf-8"))
    n_rows = pq.read_metadata(feature_rows).num_rows

    versions = {"python": platform.python_version(), "duckdb": duckdb.__version__, "pyarrow": pa.__version__}
    if "feast" in peers:
        versions["feast"] = feast_version()
    if not args.peers_only:
        versions["sluice"] = sluice_version(args.sluice_bin)
    print("features_c: materialize the newest row per entity into the online store")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores; repetitions: {args.reps}")
    print(f"input: {n_rows:,} feature rows, {expected['entities']:,} entities "
          f"({expected['entities_with_tied_newest']:,} with a tie at their newest event_ts)", flush=True)

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-features-c-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)
    doc: dict = {"benchmark": "features_c", "versions": versions, "cores": os.cpu_count(), "reps": args.reps,
                 "input": {"feature_rows": n_rows, **expected}}
    notes: list[str] = []
    try:
        con = duckdb_connect()
        latest = con.sql(latest_sql(feature_rows)).to_arrow_table()
        ref = {}
        for row in latest.to_pylist():
            row["event_ts"] = to_us(row["event_ts"])
            ref[row["user_id"]] = row
        tied = set(con.sql(f"""
            WITH l AS ({latest_sql(feature_rows)})
            SELECT l.user_id FROM l JOIN read_parquet({sql_str(feature_rows)}) r
              ON r.user_id = l.user_id AND r.event_ts = l.event_ts
            GROUP BY l.user_id HAVING count(*) > 1
        """).fetchnumpy()["user_id"].tolist())
        lo, hi = con.sql(f"SELECT min(event_ts), max(event_ts) FROM read_parquet({sql_str(feature_rows)})"
                         ).fetchall()[0]
        print(f"reference (DuckDB): {len(ref):,} entities, {len(tied):,} with a tied newest event_ts", flush=True)

        # Feast's input: the whole file, or a sample of the entities (each with all its rows).
        f_rows, scale = feature_rows, 1.0
        if "feast" in peers and args.feast_rows and args.feast_rows < n_rows:
            f_rows = args.scratch / "feast_sample.parquet"
            s_rows = write_sample(con, feature_rows, f_rows, args.feast_rows / n_rows)
            scale = n_rows / s_rows
            print(f"feast sample: {s_rows:,} feature rows; its times are scaled by {scale:.2f}", flush=True)
        feast_users = sorted(set(con.sql(f"SELECT DISTINCT user_id FROM read_parquet({sql_str(f_rows)})")
                                 .fetchnumpy()["user_id"].tolist()))
        con.close()

        rng = np.random.default_rng(7)
        pool_tied = sorted(tied & set(feast_users))
        n_tied = min(N_CHECK_FEAST // 5, len(pool_tied))
        check = list(rng.choice(pool_tied, n_tied, replace=False)) if n_tied else []
        rest = sorted(set(feast_users) - set(check))
        check += list(rng.choice(rest, min(N_CHECK_FEAST - len(check), len(rest)), replace=False))
        check = [str(u) for u in check]
        sluice_check = check[: N_CHECK_SLUICE // 4] + check[n_tied: n_tied + N_CHECK_SLUICE - N_CHECK_SLUICE // 4]
        span = {"start": (lo - timedelta(seconds=1)).isoformat(), "end": (hi + timedelta(seconds=1)).isoformat(),
                "entities": check}
        span_file = args.scratch / "span.json"
        span_file.write_text(json.dumps(span), encoding="utf-8")

        series: dict[str, Series] = {}
        if not args.peers_only:
            series["sluice_online"] = Series("sluice", "view online.duration_ms (store write)", short="sluice online")
            series["sluice_view"] = Series("sluice", "view asset duration_ms", short="sluice view")
            series["sluice_run"] = Series("sluice", "whole `sluice run` wall (+ ingest)")
        if "feast" in peers:
            series["feast"] = Series("feast", "materialize (in process)", scale=scale)
            series["feast_wall"] = Series("feast", "process wall (+ import, apply)"
                                          + (", sample, NOT scaled" if scale != 1.0 else ""))
            series["feast_read"] = Series("feast", f"get_online_features, {len(check)} entities, 1 call")
            if scale != 1.0:
                series["feast"].note = (f"materialized {s_rows:,} rows (a sample of the entities); time x "
                                        f"{scale:.2f}; memory as measured on the sample")

        tools = ([] if args.peers_only else ["sluice"]) + peers
        feast_limit = int(args.feast_mem_limit * 1e9) if args.feast_mem_limit else default_mem_limit()
        for rep in range(args.reps):
            order = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in order:
                if tool not in tools:
                    continue  # ran out of memory in an earlier repetition
                work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=args.scratch))
                try:
                    if tool == "sluice":
                        project = work / "project"
                        write_fv_project(project, feature_rows)
                        m, report = run_sluice(args.sluice_bin, ["run", "--project", str(project), "--json"],
                                               work, "sluice")
                        sluice_asset(report, "feature_rows")
                        view = sluice_asset(report, "fv")
                        online = view.get("online")
                        if not isinstance(online, dict):
                            raise BenchError(f"sluice: the view `fv` has no `online` object in its report: {view}")
                        if online.get("entities") not in (None, len(ref)):
                            raise BenchError(f"sluice: online.entities {online.get('entities')}, "
                                             f"expected {len(ref)}")
                        series["sluice_online"].add(asset_ms(online) / 1000, m.peak_rss)
                        series["sluice_view"].add(asset_ms(view) / 1000, m.peak_rss)
                        series["sluice_run"].add(m.wall_s, m.peak_rss)
                        line = (f"online {asset_ms(online) / 1000:8.3f} s  view {asset_ms(view) / 1000:8.3f} s  "
                                f"run {m.wall_s:8.3f} s  peak {m.peak_rss / 1e9:.2f} GB  ({online})")
                        if rep == 0:
                            note, times = check_sluice_get(args.sluice_bin, project, sluice_check, ref, work)
                            notes.append(note + f"; `sluice get` wall per call (process start-up included): "
                                         f"median {np.median(times) * 1000:.0f} ms")
                    else:
                        out = work / "online.json"
                        cmd = [sys.executable, __file__, "--worker", "feast", "--features-file", str(f_rows),
                               "--repo", str(work / "feast_repo"), "--entities-file", str(span_file),
                               "--out", str(out)]
                        m = run_measured(cmd, work, "feast", mem_limit=feast_limit)
                        if m.out_of_memory:
                            tools.remove("feast")
                            msg = (f"NO RESULT: feast ran out of memory after {m.wall_s:.1f} s (peak RSS "
                                   f"{m.peak_rss / 1e9:.2f} GB)")
                            series["feast"].note = series["feast_wall"].note = msg
                            series["feast"].scale = 1.0
                            print(f"  rep {rep + 1}/{args.reps}  feast   {msg}", file=sys.stderr)
                            continue
                        rep_json = worker_report(m, "feast")
                        equal, ties = check_feast_online(json.loads(out.read_text(encoding="utf-8")),
                                                         {u: ref[u] for u in check}, feature_rows)
                        series["feast"].add(rep_json["seconds"], m.peak_rss)
                        series["feast_wall"].add(m.wall_s, m.peak_rss)
                        series["feast_read"].add(rep_json["online_read_s"])
                        line = (f"materialize {rep_json['seconds']:8.3f} s  wall {m.wall_s:8.3f} s  peak "
                                f"{m.peak_rss / 1e9:.2f} GB  ({equal} of {len(check)} entities equal, {ties} ties "
                                "broken otherwise)")
                        if rep == 0:
                            tie_checked = len(set(check) & tied)
                            notes.append(f"feast: {equal} of {len(check)} entities read back equal to the newest rows"
                                         + (f"; for {ties} of the {tie_checked} with a tied newest event_ts it holds "
                                            "a row that is NOT the newest by created_ts" if ties else
                                            f" (including the {tie_checked} with a tied newest event_ts)"))
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                    gc.collect()
                print(f"  rep {rep + 1}/{args.reps}  {tool:<7} {line}", file=sys.stderr, flush=True)

        ordered = list(series.values())
        baselines = [] if args.peers_only else [series["sluice_view"], series["sluice_online"]]
        print_series(f"{n_rows:,} feature rows -> {len(ref):,} online records (best and median of {args.reps}; "
                     "peak resident memory of the process)", ordered, baselines, memory=True)
        for n in notes:
            print("  " + n)
        if args.peers_only:
            print("  peers only: sluice was not run, so there are no ratios.")
        doc["results"] = [s.to_json() for s in ordered]
        doc["notes"] = notes
    except BenchError as e:
        print(f"\nfeatures_c failed: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
