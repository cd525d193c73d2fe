#!/usr/bin/env python3
"""Read a PostgreSQL table into Arrow and persist it: sluice against ConnectorX,
ADBC's PostgreSQL driver and pandas ``read_sql``.

Each tool reads the same table of typical columns (bigint id, int, double,
numeric(12,2), text, bool, timestamptz, date) whole and writes it as zstd
Parquet; sluice runs a project whose postgres source reads the table into a
published asset (a Delta table: zstd Parquet plus its log, and the run log).

Usage (normally through run.sh, which makes the virtualenv):

    python bench.py --sluice-bin PATH [--rows 10000000] [--reps 1] --scratch DIR
    python bench.py --peers-only [--rows N] --scratch DIR

Every tool must read exactly the table's row count (and sluice must report its
source built with that many rows) before any time is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, parse_sluice_json, sluice_version  # noqa: E402

URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
SCHEMA = "sluice_bench"


def table_name(rows: int) -> str:
    return f"{SCHEMA}.orders_{rows}"


def load(rows: int) -> None:
    """Makes the table once per row count (server side, deterministic values)."""
    import psycopg2

    conn = psycopg2.connect(URL)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    cur.execute("SELECT to_regclass(%s)", (table_name(rows),))
    if cur.fetchone()[0] is not None:
        cur.execute(f"SELECT count(*) FROM {table_name(rows)}")
        if cur.fetchone()[0] == rows:
            print(f"table {table_name(rows)} already holds {rows:,} rows", file=sys.stderr)
            return
        cur.execute(f"DROP TABLE {table_name(rows)}")
    print(f"loading {rows:,} rows into {table_name(rows)}", file=sys.stderr)
    started = time.perf_counter()
    cur.execute(
        f"""
        CREATE UNLOGGED TABLE {table_name(rows)} (
            id bigint PRIMARY KEY, qty integer, price double precision, amount numeric(12,2),
            customer text, active boolean, created_at timestamptz, day date)
        """
    )
    cur.execute(
        f"""
        INSERT INTO {table_name(rows)}
        SELECT g,
               (g * 7919) % 1000,
               ((g * 104729) % 100000) / 100.0,
               round((((g * 15485863) % 10000000) / 100.0)::numeric, 2),
               'customer-' || (g % 50000),
               g % 3 = 0,
               timestamptz '2020-01-01 00:00:00+00' + (g % 157680000) * interval '1 second',
               date '2020-01-01' + (g % 1825)::int
        FROM generate_series(1::bigint, {rows}) g
        """
    )
    cur.execute(f"ANALYZE {table_name(rows)}")
    print(f"loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def query(rows: int) -> str:
    return f"SELECT * FROM {table_name(rows)}"


def check(name: str, got: int, rows: int) -> None:
    if got != rows:
        raise BenchError(f"{name} read {got:,} rows, the table holds {rows:,}")


def run_connectorx(rows: int, out: Path, partitions: int) -> None:
    import connectorx as cx

    kwargs = {}
    if partitions > 1:
        kwargs = {"partition_on": "id", "partition_num": partitions}
    table = cx.read_sql(URL, query(rows), return_type="arrow", **kwargs)
    check("connectorx", table.num_rows, rows)
    pq.write_table(table, out, compression="zstd")


def run_adbc(rows: int, out: Path) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(URL) as conn, conn.cursor() as cur:
        cur.execute(query(rows))
        table = cur.fetch_arrow_table()
    check("adbc", table.num_rows, rows)
    pq.write_table(table, out, compression="zstd")


def run_pandas(rows: int, out: Path) -> None:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(URL.replace("postgres://", "postgresql+psycopg2://", 1))
    with engine.connect() as conn:
        df = pd.read_sql(query(rows), conn)
    engine.dispose()
    check("pandas", len(df), rows)
    df.to_parquet(out, compression="zstd")


SLUICE_TOML = """\
[project]
name = "bench"

[sources.orders]
postgres = {{ url = "${{BENCH_PG_URL}}", table = "{table}"{partitions} }}
"""


def run_sluice(sluice_bin: Path, rows: int, project: Path, partitions: int) -> None:
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    extra = f', partitions = {partitions}, partition_column = "id"' if partitions > 1 else ""
    (project / "sluice.toml").write_text(SLUICE_TOML.format(table=table_name(rows), partitions=extra))
    env = dict(os.environ, BENCH_PG_URL=URL)
    proc = subprocess.run(
        [str(sluice_bin), "--project", str(project), "run", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise BenchError(f"sluice run failed:\n{proc.stdout}\n{proc.stderr}")
    summary = parse_sluice_json(proc.stdout)
    asset = next((a for a in summary.get("assets", []) if a.get("name") == "orders"), None)
    if asset is None or asset.get("status") != "built":
        raise BenchError(f"sluice did not build `orders`: {proc.stdout}")
    check("sluice", int(asset.get("rows_out", -1)), rows)


def time_it(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice-bin", type=Path)
    ap.add_argument("--peers-only", action="store_true")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--scratch", type=Path, required=True)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--skip", action="append", default=[], help="a tool not to run (e.g. pandas)")
    args = ap.parse_args()
    if not args.peers_only and args.sluice_bin is None:
        ap.error("--sluice-bin is required unless --peers-only")
    args.scratch.mkdir(parents=True, exist_ok=True)

    import adbc_driver_postgresql
    import connectorx
    import pandas

    print(
        f"python {platform.python_version()}, connectorx {connectorx.__version__}, "
        f"adbc-driver-postgresql {adbc_driver_postgresql.__version__}, pandas {pandas.__version__}, "
        f"pyarrow {pa.__version__}"
        + ("" if args.peers_only else f", {sluice_version(args.sluice_bin)}")
    )
    load(args.rows)

    tools: dict[str, Callable[[], None]] = {
        "connectorx": lambda: run_connectorx(args.rows, args.scratch / "cx.parquet", 1),
        "connectorx (2 partitions)": lambda: run_connectorx(args.rows, args.scratch / "cx2.parquet", 2),
        "adbc": lambda: run_adbc(args.rows, args.scratch / "adbc.parquet"),
        "pandas": lambda: run_pandas(args.rows, args.scratch / "pandas.parquet"),
    }
    if not args.peers_only:
        tools["sluice"] = lambda: run_sluice(args.sluice_bin, args.rows, args.scratch / "project", 1)
        tools["sluice (2 partitions)"] = lambda: run_sluice(
            args.sluice_bin, args.rows, args.scratch / "project2", 2
        )
    times: dict[str, list[float]] = {name: [] for name in tools if not any(s in name for s in args.skip)}
    for rep in range(args.reps):
        for name in times:
            t = time_it(tools[name])
            times[name].append(t)
            print(f"rep {rep + 1}: {name}: {t:.2f} s", file=sys.stderr)

    best = {name: min(ts) for name, ts in times.items()}
    peers = {n: t for n, t in best.items() if not n.startswith("sluice")}
    fastest_peer = min(peers, key=peers.get) if peers else None
    print(f"\n{args.rows:,} rows, best of {args.reps} (seconds); ratio = time / fastest peer's time")
    print(f"| tool | best | median | ratio to {fastest_peer} |")
    print("| --- | ---: | ---: | ---: |")
    for name, ts in sorted(times.items(), key=lambda kv: min(kv[1])):
        ratio = best[name] / peers[fastest_peer] if fastest_peer else float("nan")
        print(f"| {name} | {min(ts):.2f} | {statistics.median(ts):.2f} | {ratio:.2f} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": args.rows, "times": times}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
