#!/usr/bin/env python3
"""Ingest a flights CSV and build a grouped table: sluice against DuckDB and Polars.

Each tool does the same work end to end, timed by wall clock:

1. read the CSV (header, null marker ``NA``, types inferred),
2. persist the raw rows (sluice: a Delta table, i.e. zstd Parquet plus a log;
   peers: a zstd Parquet file),
3. compute per ``carrier, origin, month`` the row count, mean departure and
   arrival delays, the number of flights more than 15 minutes late and the sum
   of distances, from the persisted rows, and persist that as zstd Parquet.

Usage (normally through run.sh, which makes the virtualenv and the inputs):

    python bench.py --sluice-bin PATH [--reps 3] CSV [CSV ...]
    python bench.py --peers-only CSV [CSV ...]

The peers must agree with each other on every group (checked after the timed
runs), and sluice must report both assets built, as many rows in ``flights`` as
the CSV has and as many rows in ``delays`` as the peers found groups. Any
disagreement or failure exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, find_delta_table, parse_sluice_json, read_delta_table, sluice_version, sql_str  # noqa: E402

GROUP_KEYS = ["carrier", "origin", "month"]

GROUP_SQL_SELECT = """
SELECT carrier, origin, month, count(*) AS flights, avg(dep_delay) AS mean_dep_delay,
       avg(arr_delay) AS mean_arr_delay, sum(CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END) AS late,
       sum(distance) AS distance
""".strip()

SLUICE_TOML = """\
[project]
name = "bench"

[sources.flights]
path = {path}
format = "csv"
null = ["NA"]

[tables.delays]
sql = \"\"\"
{select}
FROM flights GROUP BY carrier, origin, month
\"\"\"
"""


@dataclass
class Input:
    path: Path
    rows: int
    label: str


@dataclass
class Result:
    tool: str
    times: list[float] = field(default_factory=list)
    groups: int | None = None

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


# --------------------------------------------------------------------------- peers


def run_duckdb(csv: Path, work: Path) -> Path:
    raw, out = work / "raw.parquet", work / "delays.parquet"
    con = duckdb.connect()  # fresh in-memory database each repetition
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv({sql_str(csv)}, nullstr='NA', header=true)) "
            f"TO {sql_str(raw)} (FORMAT parquet, COMPRESSION zstd)"
        )
        con.execute(
            f"COPY ({GROUP_SQL_SELECT} FROM read_parquet({sql_str(raw)}) "
            f"GROUP BY carrier, origin, month) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()
    return out


def run_polars(csv: Path, work: Path) -> Path:
    raw, out = work / "raw.parquet", work / "delays.parquet"
    # try_parse_dates: DuckDB (and sluice) infer `time_hour` as a timestamp;
    # without it Polars would keep it as a string and do less work.
    pl.read_csv(csv, null_values="NA", try_parse_dates=True).write_parquet(raw, compression="zstd")
    (
        pl.scan_parquet(raw)
        .group_by(GROUP_KEYS)
        .agg(
            pl.len().alias("flights"),
            pl.col("dep_delay").mean().alias("mean_dep_delay"),
            pl.col("arr_delay").mean().alias("mean_arr_delay"),
            # CASE WHEN arr_delay > 15 THEN 1 ELSE 0 END: a null delay counts 0.
            pl.when(pl.col("arr_delay") > 15).then(1).otherwise(0).sum().alias("late"),
            pl.col("distance").sum().alias("distance"),
        )
        .sink_parquet(out, compression="zstd")
    )
    return out


# --------------------------------------------------------------------------- sluice


def write_sluice_project(csv: Path, project: Path) -> None:
    project.mkdir(parents=True)
    # A TOML basic string accepts JSON's escapes for any path we might meet.
    toml = SLUICE_TOML.format(path=json.dumps(str(csv)), select=GROUP_SQL_SELECT)
    (project / "sluice.toml").write_text(toml, encoding="utf-8")


def run_sluice(sluice_bin: Path, project: Path) -> dict:
    proc = subprocess.run(
        [str(sluice_bin), "run", "--project", str(project), "--json"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BenchError(
            f"sluice exited with {proc.returncode}\n--- stderr ---\n{proc.stderr}"
            f"\n--- stdout ---\n{proc.stdout}"
        )
    report = parse_sluice_json(proc.stdout)
    report["_stderr"] = proc.stderr
    return report


def check_sluice_report(report: dict, inp: Input) -> int:
    """Both assets built, the source has every CSV row; returns rows_out of `delays`."""
    assets = report.get("assets")
    if not isinstance(assets, list):
        raise BenchError(f"sluice report has no `assets` array: {json.dumps(report)[:2000]}")
    by_name = {a.get("name"): a for a in assets if isinstance(a, dict)}
    for name in ("flights", "delays"):
        asset = by_name.get(name)
        if asset is None:
            raise BenchError(f"sluice report has no asset `{name}`: {json.dumps(assets)[:2000]}")
        if asset.get("status") != "built":
            raise BenchError(f"sluice asset `{name}` has status {asset.get('status')!r}, not 'built': {asset}")
    src_rows = by_name["flights"].get("rows_out")
    if src_rows is not None and src_rows != inp.rows:
        raise BenchError(f"sluice source `flights` has rows_out {src_rows}, the CSV has {inp.rows} rows")
    rows = by_name["delays"].get("rows_out")
    if not isinstance(rows, int):
        raise BenchError(f"sluice asset `delays` has no integer rows_out: {by_name['delays']}")
    return rows


# --------------------------------------------------------------------------- checks


def normalise(t: pa.Table) -> list[tuple]:
    """Rows sorted by the group keys, every measure as float, for comparison across tools."""
    cols = GROUP_KEYS + ["flights", "mean_dep_delay", "mean_arr_delay", "late", "distance"]
    missing = [c for c in cols if c not in t.column_names]
    if missing:
        raise BenchError(f"grouped table lacks columns {missing}; has {t.column_names}")
    rows = []
    for r in t.select(cols).to_pylist():
        key = (r["carrier"], r["origin"], int(r["month"]))
        vals = tuple(None if r[c] is None else float(r[c]) for c in cols[3:])
        rows.append(key + vals)
    rows.sort(key=lambda r: r[:3])
    return rows


def same_rows(a: list[tuple], b: list[tuple]) -> str | None:
    if len(a) != len(b):
        return f"{len(a)} groups against {len(b)}"
    for ra, rb in zip(a, b):
        if ra[:3] != rb[:3]:
            return f"group keys differ: {ra[:3]} against {rb[:3]}"
        for x, y in zip(ra[3:], rb[3:]):
            if (x is None) != (y is None) or (x is not None and not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)):
                return f"group {ra[:3]}: {ra[3:]} against {rb[3:]}"
    return None


# --------------------------------------------------------------------------- driver


def count_csv_rows(path: Path) -> int:
    with path.open("rb") as f:
        lines = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 24), b""))
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                lines += 1  # last line without a newline
    return lines - 1  # header


def human_rows(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.0f}k"


def bench_one(inp: Input, args: argparse.Namespace, scratch: Path) -> list[Result]:
    peers: list[tuple[str, Callable[[Path, Path], Path]]] = [("duckdb", run_duckdb), ("polars", run_polars)]
    tools = ["sluice"] if not args.peers_only else []
    tools += [name for name, _ in peers]
    results = {t: Result(t) for t in tools}
    outputs: dict[str, list[tuple]] = {}

    for rep in range(args.reps):
        # Rotate the order each repetition so no tool always runs first (cold page cache, turbo).
        order = tools[rep % len(tools):] + tools[: rep % len(tools)]
        for tool in order:
            work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=scratch))
            try:
                if tool == "sluice":
                    project = work / "project"
                    write_sluice_project(inp.path, project)
                    t0 = time.perf_counter()
                    report = run_sluice(args.sluice_bin, project)
                    elapsed = time.perf_counter() - t0
                    groups = check_sluice_report(report, inp)
                    if tool not in outputs:
                        table = find_delta_table(project, "delays")
                        if table is not None:
                            rows = read_delta_table(table)
                            if rows is None:
                                raise BenchError(f"Delta table {table} has no live files")
                            outputs[tool] = normalise(rows)
                        else:
                            print(f"  note: no single Delta table `delays` under {project}; "
                                  "checked sluice's rows_out only", file=sys.stderr)
                            outputs[tool] = []
                else:
                    fn = dict(peers)[tool]
                    t0 = time.perf_counter()
                    out = fn(inp.path, work)
                    elapsed = time.perf_counter() - t0
                    groups = pq.read_metadata(out).num_rows
                    if tool not in outputs:
                        outputs[tool] = normalise(pq.read_table(out))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            res = results[tool]
            if res.groups is not None and res.groups != groups:
                raise BenchError(f"{tool}: {groups} groups in rep {rep + 1}, {res.groups} before")
            res.groups = groups
            res.times.append(elapsed)
            print(f"  {inp.label:>14}  rep {rep + 1}/{args.reps}  {tool:<7} {elapsed:8.3f} s  ({groups} groups)",
                  file=sys.stderr, flush=True)

    # The peers must agree on every group, and sluice must find as many groups.
    diff = same_rows(outputs["duckdb"], outputs["polars"])
    if diff:
        raise BenchError(f"{inp.label}: duckdb and polars disagree: {diff}")
    if "sluice" in results:
        if results["sluice"].groups != results["duckdb"].groups:
            raise BenchError(
                f"{inp.label}: sluice built {results['sluice'].groups} rows in `delays`, "
                f"the peers found {results['duckdb'].groups} groups"
            )
        if outputs["sluice"]:
            diff = same_rows(outputs["sluice"], outputs["duckdb"])
            if diff:
                raise BenchError(f"{inp.label}: sluice and duckdb disagree: {diff}")
    return [results[t] for t in tools]


def print_table(all_results: list[tuple[Input, list[Result]]], peers_only: bool) -> None:
    header = f"{'size':<22} {'tool':<8} {'best s':>9} {'median s':>9} {'peer/sluice':>12}"
    print()
    print(header)
    print("-" * len(header))
    for inp, results in all_results:
        sluice = next((r for r in results if r.tool == "sluice"), None)
        for r in results:
            if sluice is None or r is sluice:
                ratio = "-" if sluice is None else "1.00"
            else:
                ratio = f"{r.best / sluice.best:.2f}"
            print(f"{inp.label:<22} {r.tool:<8} {r.best:>9.3f} {r.median:>9.3f} {ratio:>12}")
    print()
    if peers_only:
        print("peers only: sluice was not run, so there are no ratios.")
    else:
        print("peer/sluice = peer best time / sluice best time; above 1 means sluice is faster.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+", type=Path, help="input CSV files (e.g. flights.csv and a 10x copy)")
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"),
                    help="the sluice binary (default: $SLUICE_BIN)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per tool and input (default 3)")
    ap.add_argument("--peers-only", action="store_true", help="run DuckDB and Polars only, not sluice")
    ap.add_argument("--scratch", type=Path, default=None,
                    help="directory for the per-repetition outputs (default: a new temp dir)")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args()

    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if not args.peers_only:
        if args.sluice_bin is None:
            ap.error("give --sluice-bin or set SLUICE_BIN (or pass --peers-only)")
        args.sluice_bin = args.sluice_bin.resolve()
        if not os.access(args.sluice_bin, os.X_OK):
            ap.error(f"sluice binary {args.sluice_bin} is not an executable file")

    inputs = []
    for p in args.csv:
        p = p.resolve()
        if not p.is_file():
            ap.error(f"no such CSV: {p}")
        rows = count_csv_rows(p)
        inputs.append(Input(p, rows, f"{human_rows(rows)} rows"))

    versions = {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": pl.__version__,
        "pyarrow": pa.__version__,
    }
    if not args.peers_only:
        versions["sluice"] = sluice_version(args.sluice_bin)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores, {platform.platform()}")
    for inp in inputs:
        print(f"input: {inp.path} ({inp.rows:,} rows, {inp.path.stat().st_size / 1e6:.1f} MB)")
    print(f"repetitions: {args.reps} per tool and input", flush=True)

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-bench-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)

    all_results = []
    try:
        for inp in inputs:
            all_results.append((inp, bench_one(inp, args, args.scratch)))
    except BenchError as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()

    print_table(all_results, args.peers_only)
    groups = {inp.label: results[0].groups for inp, results in all_results}
    print("groups: " + ", ".join(f"{k}: {v}" for k, v in groups.items()))

    if args.json_out:
        doc = {
            "versions": versions,
            "cores": os.cpu_count(),
            "reps": args.reps,
            "inputs": [
                {
                    "path": str(inp.path),
                    "rows": inp.rows,
                    "results": [
                        {"tool": r.tool, "times": r.times, "best": r.best, "median": r.median, "groups": r.groups}
                        for r in results
                    ],
                }
                for inp, results in all_results
            ],
        }
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
