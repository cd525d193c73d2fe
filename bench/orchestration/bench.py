#!/usr/bin/env python3
"""orchestration: the overhead of running a graph of tasks that do nothing, by sluice, Prefect 3
and Dagster, on the same graphs in the same run.

Two graphs of N + 1 tasks (``--tasks N``, default 1,000), named t0000 ... tN:

* **chain**: t0000, then t_i depends on t_{i-1};
* **fanout**: t0000, then t_1 ... t_N each depend on t0000 only.

Two workloads:

* **noop**: a task that does nothing. sluice: a code step ``[steps.tNNNN] command = ["true"]``
  with ``inputs = ["t<upstream>"]`` (no ``output``: it publishes no table, its run is recorded;
  each one spawns the ``true`` process). Prefect: a ``@task`` whose body only notes its start
  and end times, submitted with its upstream's future as an argument. Dagster: an ``@op`` with a
  ``Nothing`` input (``execute_in_process``) or an ``@asset`` with ``deps`` returning None
  (``materialize``), likewise.
* **sql**: sluice: SQL tables, t0000 ``SELECT 1 AS x``, then ``SELECT 1 AS x FROM t<i-1>``
  (chain) or ``SELECT x FROM t0000`` (fanout); each one reads its input's pinned Delta version,
  is planned by DataFusion and written as a new Delta version (Parquet + log commit) with its
  run recorded. The peers' task runs ``SELECT 1`` in an in-process DuckDB (one connection, a
  cursor per thread) and checks it got one row holding 1; it persists nothing.

The peers (``peers.py``) are ``prefect`` (no API URL: Prefect starts its temporary server inside
the run), ``prefect-server`` (the same flow against a ``prefect server start`` that this script
starts once, untimed), ``dagster`` (ops) and ``dagster-assets``.

Each tool runs as its own process per repetition, timed from its spawn to its exit (what a user
sees); for the peers that includes starting Python and importing the library, reported apart as
"import" (spawn to the end of the imports), and "start" is from spawn to the first task's
start. sluice runs ``sluice run --project DIR --json`` on a fresh project directory each
repetition (so nothing is up to date). The time per task is the wall time over the N + 1 tasks.

The ready-to-start latency of a task is the time from its being ready to its start; ready is
the later of its input's end and the last end of any task before its start (a free slot: in the
fan-out, tasks queue for the tool's workers). sluice's times come from its run log
(``.sluice/sluice.db``, table ``attempts`` of the run: ``started_at``, the instant the attempt
began, and ``ended_at``, the instant its outcome was known, both RFC 3339 to the microsecond; a
run log from before ``ended_at`` existed falls back to end = started_at + ``duration_ms``, whole
milliseconds, which overstates each latency by up to 1 ms). The peers' come from their task
bodies' own clock readings (body end of the input to body start), which leaves the orchestrator's
work before and after a body inside the latency; not the same measurement.

Checks before any number counts (any failure exits non-zero): sluice's ``--json`` summary says
``ok`` and every one of the N + 1 assets ``built``, its run log holds a ``built`` attempt for each,
and for sql the last table holds one row, x = 1; Prefect's flow returns a completed state for
every task run; Dagster's run succeeded with one step success per task; every peer task body ran
exactly once (and for sql got its row). How many task runs Prefect's database holds afterwards
is reported, not required (its temporary server loses most of them at exit).

Usage (normally through run.sh):

    python bench.py --sluice-bin PATH [--tasks 1000] [--reps 3] [--json-out FILE]
    python bench.py --peers-only --tasks 100 --reps 1
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from common import BenchError, find_delta_table, parse_sluice_json, read_delta_table, sluice_version  # noqa: E402
from peers import GRAPHS, PEERS, WORKLOADS, names, upstream  # noqa: E402

TOOL_WHAT = {
    "sluice": "sluice run (steps / SQL tables)",
    "prefect": "Prefect 3, its temporary server",
    "prefect-server": "Prefect 3, a running server",
    "dagster": "Dagster ops, execute_in_process",
    "dagster-assets": "Dagster assets, materialize",
}


# --------------------------------------------------------------------------- sluice


def sluice_toml(n: int, graph: str, workload: str) -> str:
    ns = names(n)
    out = ['[project]', 'name = "orchestration"', '']
    for i, name in enumerate(ns):
        up = upstream(i, graph)
        if workload == "noop":
            out.append(f"[steps.{name}]")
            out.append('command = ["true"]')
            if up is not None:
                out.append(f'inputs = ["{ns[up]}"]')
        else:
            out.append(f"[tables.{name}]")
            if up is None:
                out.append('sql = "SELECT 1 AS x"')
            elif graph == "chain":
                out.append(f'sql = "SELECT 1 AS x FROM {ns[up]}"')
            else:
                out.append(f'sql = "SELECT x FROM {ns[up]}"')
        out.append("")
    return "\n".join(out)


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def rfc3339_ns(s: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (any number of fraction digits)."""
    m = _RFC3339.match(s.strip())
    if not m:
        raise BenchError(f"not an RFC 3339 time in the run log: {s!r}")
    base, frac, off = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if off == "Z" else off))
    ns = int(dt.timestamp()) * 1_000_000_000
    return ns + (int((frac or "0")[:9].ljust(9, "0")))


def sluice_attempts(project: Path, run_id: int) -> dict[str, tuple[str, int, int]]:
    """asset -> (status, start ns, end ns) of the run's attempts, from the run log."""
    db = project / ".sluice" / "sluice.db"
    if not db.is_file():
        raise BenchError(f"sluice wrote no run log at {db}")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        columns = {r[1] for r in con.execute("PRAGMA table_info(attempts)")}
        ended = "ended_at" if "ended_at" in columns else "NULL"
        rows = con.execute(f"SELECT asset, attempt, status, started_at, duration_ms, {ended} FROM attempts "
                           "WHERE run_id = ?", (run_id,)).fetchall()
    finally:
        con.close()
    out = {}
    for asset, attempt, status, started_at, duration_ms, ended_at in rows:
        if asset in out:
            raise BenchError(f"the run log holds more than one attempt of {asset} in run {run_id}")
        if started_at is None:
            raise BenchError(f"the run log has no start time for {asset} (status {status})")
        start = rfc3339_ns(started_at)
        end = rfc3339_ns(ended_at) if ended_at else start + int(duration_ms) * 1_000_000
        out[asset] = (status, start, end)
    return out


# --------------------------------------------------------------------------- one measured process


@dataclass
class Proc:
    spawn_ns: int
    wall_s: float
    cpu_s: float
    returncode: int
    stdout: str
    stderr: str


def run_proc(cmd: Sequence, env: dict, out_dir: Path, tag: str, timeout: float) -> Proc:
    """Run `cmd` to its exit, output to files; wall time from spawn to exit, CPU time (user + system,
    of it and the children it waited for, from wait4)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    so, se = out_dir / f"{tag}.stdout", out_dir / f"{tag}.stderr"
    with open(so, "wb") as fo, open(se, "wb") as fe:
        spawn = time.time_ns()
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=fo, stderr=fe, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                raise BenchError(f"{tag} took longer than {timeout:.0f} s and was killed")
            time.sleep(0.001)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Proc(spawn, wall, usage.ru_utime + usage.ru_stime, proc.returncode,
                so.read_text(encoding="utf-8", errors="replace"), se.read_text(encoding="utf-8", errors="replace"))


def peer_env(prefect_home: Path, api_url: Optional[str] = None) -> dict:
    """The environment of a peer's process: Prefect's home in the scratch directory, no analytics,
    telemetry or per-task log lines; `api_url` points Prefect at a running server (else it starts
    its temporary one)."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PREFECT_") or k.startswith("DAGSTER_"):
            del env[k]
    env.update({
        "PREFECT_HOME": str(prefect_home),  # its profile and, without a server, its API's SQLite database
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",  # not a line per task run
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
    })
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class PrefectServer:
    """`prefect server start` in its own process group, its database in the scratch directory;
    started once (untimed) for the `prefect-server` peer and stopped at the end."""

    def __init__(self, home: Path, log_dir: Path):
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.home = home
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = peer_env(home)
        env.update({"PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"})
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / "prefect-server.log"
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-ui", "--analytics-off"],
            env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        import urllib.request
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"prefect server start exited with {self.proc.returncode}:\n"
                                 f"{self.log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError("prefect server start did not answer /api/health within 180 s")
            time.sleep(0.5)

    def db(self) -> Path:
        return self.home / "prefect.db"

    def cpu_s(self) -> float:
        """CPU time (user + system) used so far by the server's live processes (its session)."""
        total = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2:].split()
            if int(rest[3]) == self.proc.pid:  # session id
                total += int(rest[11]) + int(rest[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()


# --------------------------------------------------------------------------- results


@dataclass
class Rep:
    wall_s: float
    cpu_s: float
    import_s: Optional[float]
    start_s: float  # spawn to the first task's start
    latencies_ms: list[float]


@dataclass
class Series:
    tool: str
    reps: list[Rep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def best(self) -> Rep:
        return min(self.reps, key=lambda r: r.wall_s)

    def to_json(self, n_tasks: int) -> dict:
        b = self.best()
        lat = [x for r in self.reps for x in r.latencies_ms]
        return {"tool": self.tool, "what": TOOL_WHAT[self.tool], "wall_s": [r.wall_s for r in self.reps],
                "cpu_s": [r.cpu_s for r in self.reps], "import_s": [r.import_s for r in self.reps],
                "start_s": [r.start_s for r in self.reps], "best_wall_s": b.wall_s,
                "median_wall_s": statistics.median(r.wall_s for r in self.reps),
                "ms_per_task": 1000 * b.wall_s / n_tasks,
                "ms_per_task_after_start": 1000 * (b.wall_s - b.start_s) / n_tasks,
                "ready_to_start_ms": {"n": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat)}
                if lat else None,
                "notes": self.notes}


def pct(xs: list[float], p: float) -> Optional[float]:
    """The p-th percentile, nearest rank."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def latencies(n: int, graph: str, starts: list[int], ends: list[int]) -> list[float]:
    """ms from each non-root task's being ready to its start. Ready is when its input has ended
    and a slot to run it is free: the later of its input's end and the last end of any task
    before its start (a tool that runs at most k tasks at once starts a queued task when one
    ends). In the chain that is its input's end; in the fan-out, without the second part, the
    latency would be the time spent queued behind the other tasks, not the tool's reaction."""
    ordered = sorted(ends)
    out = []
    for i in range(1, n + 1):
        s = starts[i]
        ready = ends[upstream(i, graph)]
        k = bisect.bisect_right(ordered, s)
        if k:
            ready = max(ready, ordered[k - 1])
        out.append((s - ready) / 1e6)
    return out


# --------------------------------------------------------------------------- one run of each tool


class Bench:
    def __init__(self, args, scratch: Path):
        self.args = args
        self.scratch = scratch
        self.prefect_home = scratch / "prefect-home"
        self.env = peer_env(self.prefect_home)
        self.server: Optional[PrefectServer] = None

    def env_of(self, tool: str) -> dict:
        if tool != "prefect-server":
            return self.env
        if self.server is None:
            t0 = time.perf_counter()
            self.server = PrefectServer(self.scratch / "prefect-server-home", self.scratch)
            print(f"prefect server start: answering at {self.server.api_url} after "
                  f"{time.perf_counter() - t0:.1f} s (untimed)", flush=True)
        return peer_env(self.scratch / "prefect-client-home", self.server.api_url)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()

    def run_peer(self, tool: str, n: int, graph: str, workload: str, work: Path) -> tuple[Rep, list[str]]:
        report = work / "report.json"
        env = self.env_of(tool)
        server_cpu0 = self.server.cpu_s() if tool == "prefect-server" else 0.0
        p = run_proc([sys.executable, HERE / "peers.py", "--worker", tool, "--graph", graph, "--workload", workload,
                      "--tasks", n, "--report", report], env, work, tool, self.args.timeout)
        if p.returncode != 0 or not report.is_file():
            raise BenchError(f"{tool} ({graph}, {workload}, {n + 1} tasks) exited with {p.returncode}\n"
                             f"--- stderr (tail) ---\n{p.stderr[-4000:]}")
        r = json.loads(report.read_text(encoding="utf-8"))
        total = n + 1
        if r["tasks_ok"] != total:
            raise BenchError(f"{tool} ({graph}, {workload}): {r['tasks_ok']} of {total} task runs succeeded\n"
                             f"--- stderr (tail) ---\n{p.stderr[-4000:]}")
        bad = [i for i in range(total) if r["runs"][i] != 1 or r["good"][i] != 1 or not r["starts"][i]]
        if bad:
            raise BenchError(f"{tool} ({graph}, {workload}): {len(bad)} task bodies did not run exactly once "
                             f"with the expected result (first: {bad[:5]})")
        notes = []
        if tool == "prefect":
            notes.append(self.prefect_recorded(self.prefect_home / "prefect.db", r["flow_run_id"], total, 0))
        elif tool == "prefect-server":
            # Waits (untimed) until the server has recorded the run, so that its backlog does not
            # share the cores with the next tool's timed run.
            notes.append(self.prefect_recorded(self.server.db(), r["flow_run_id"], total, 600))
            notes.append(f"the server's CPU time during the run and until it recorded it: "
                         f"{self.server.cpu_s() - server_cpu0:.2f} s (not in the CPU column)")
        if re.search(r"^\S*\s*\|\s*ERROR\s*\|", p.stderr, re.M):
            first = next(ln for ln in p.stderr.splitlines() if re.search(r"\|\s*ERROR\s*\|", ln))
            notes.append(f"logged an ERROR after the run succeeded: {first.strip()[:200]}")
        rep = Rep(p.wall_s, p.cpu_s, (r["imported_ns"] - p.spawn_ns) / 1e9, (min(r["starts"]) - p.spawn_ns) / 1e9,
                  latencies(n, graph, r["starts"], r["ends"]))
        return rep, notes

    def prefect_recorded(self, db: Path, flow_run_id: str, total: int, wait_s: float) -> str:
        """How many of the flow run's task runs Prefect's API database holds after the process
        exited (a running server records them asynchronously: waits up to `wait_s` for all)."""
        t0 = time.perf_counter()
        while True:
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
                try:
                    k, c = con.execute("SELECT count(*), coalesce(sum(state_type = 'COMPLETED'), 0) FROM task_run "
                                       "WHERE flow_run_id = ?", (flow_run_id,)).fetchone()
                finally:
                    con.close()
            except sqlite3.Error as e:
                return f"its API database could not be read ({e})"
            waited = time.perf_counter() - t0
            if c == total or waited >= wait_s:
                break
            time.sleep(0.2)
        after = f", {waited:.1f} s after the flow's process exited" if wait_s else " when the process exited"
        return f"its API database holds {k} of the {total} task runs, {c} of them completed{after}"

    def run_sluice(self, n: int, graph: str, workload: str, work: Path) -> tuple[Rep, list[str]]:
        project = work / "project"
        project.mkdir(parents=True)
        (project / "sluice.toml").write_text(sluice_toml(n, graph, workload), encoding="utf-8")
        p = run_proc([self.args.sluice_bin, "run", "--project", project, "--json"], dict(os.environ), work,
                     "sluice", self.args.timeout)
        if p.returncode != 0:
            raise BenchError(f"sluice run ({graph}, {workload}, {n + 1} tasks) exited with {p.returncode}\n"
                             f"--- stderr ---\n{p.stderr[-4000:]}\n--- stdout ---\n{p.stdout[-2000:]}")
        summary = parse_sluice_json(p.stdout)
        ns = names(n)
        if summary.get("ok") is not True:
            raise BenchError(f"sluice run did not say ok: {json.dumps(summary)[:3000]}")
        status = {a.get("name"): a.get("status") for a in summary.get("assets", []) if isinstance(a, dict)}
        not_built = [x for x in ns if status.get(x) != "built"]
        if not_built or len(status) != len(ns):
            raise BenchError(f"sluice run: {len(not_built)} of {len(ns)} assets not reported built (first: "
                             f"{[(x, status.get(x)) for x in not_built[:5]]}); {len(status)} assets reported")
        attempts = sluice_attempts(project, int(summary["run_id"]))
        missing = [x for x in ns if attempts.get(x, ("",))[0] != "built"]
        if missing:
            raise BenchError(f"sluice's run log lacks a built attempt for {len(missing)} assets (first: "
                             f"{[(x, attempts.get(x)) for x in missing[:5]]})")
        if workload == "sql":
            table = find_delta_table(project, ns[-1])
            rows = read_delta_table(table) if table else None
            if rows is None or rows.to_pylist() != [{"x": 1}]:
                raise BenchError(f"sluice's table {ns[-1]} does not hold the one row x = 1: "
                                 f"{rows.to_pylist()[:5] if rows is not None else 'no Delta table found'}")
        starts = [attempts[x][1] for x in ns]
        ends = [attempts[x][2] for x in ns]
        rep = Rep(p.wall_s, p.cpu_s, None, (min(starts) - p.spawn_ns) / 1e9, latencies(n, graph, starts, ends))
        return rep, []

    def run(self, tool: str, n: int, graph: str, workload: str) -> tuple[Rep, list[str]]:
        work = Path(tempfile.mkdtemp(prefix=f"{tool}-{graph}-{workload}-", dir=self.scratch))
        try:
            if tool == "sluice":
                return self.run_sluice(n, graph, workload, work)
            return self.run_peer(tool, n, graph, workload, work)
        finally:
            if not self.args.keep:
                shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- main


def versions(args) -> dict:
    out = {"python": platform.python_version()}
    for mod in ("prefect", "dagster", "duckdb"):
        try:
            from importlib.metadata import version
            out[mod] = version(mod)
        except Exception:  # noqa: BLE001 - a missing peer is reported, not fatal here
            out[mod] = "?"
    if not args.peers_only:
        out["sluice"] = sluice_version(args.sluice_bin)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"))
    ap.add_argument("--tasks", type=int, default=1000, help="N: the graphs have N + 1 tasks (default 1000)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--graphs", default=",".join(GRAPHS), help="chain,fanout (default both)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="noop,sql (default both)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"a subset of {','.join(PEERS)} (default all)")
    ap.add_argument("--peers-only", action="store_true", help="the peers only, not sluice")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one run may take (default 1800)")
    ap.add_argument("--scratch", type=Path, default=None, help="where projects and Prefect's home go "
                    "(default: a temporary dir)")
    ap.add_argument("--keep", action="store_true", help="keep each run's directory (projects, logs)")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()

    if args.tasks < 1 or args.reps < 1:
        ap.error("--tasks and --reps must be at least 1")
    graphs = [g for g in args.graphs.split(",") if g]
    workloads = [w for w in args.workloads.split(",") if w]
    peers = [p for p in args.peers.split(",") if p]
    for got, allowed, what in ((graphs, GRAPHS, "--graphs"), (workloads, WORKLOADS, "--workloads"),
                               (peers, PEERS, "--peers")):
        if not got or any(x not in allowed for x in got):
            ap.error(f"{what} takes a comma-separated subset of {','.join(allowed)}")
    if not args.peers_only:
        if args.sluice_bin is None:
            ap.error("give --sluice-bin or set SLUICE_BIN (or pass --peers-only)")
        args.sluice_bin = args.sluice_bin.resolve()
    tools = ([] if args.peers_only else ["sluice"]) + peers
    n = args.tasks
    total = n + 1

    vers = versions(args)
    print(f"orchestration: graphs of {total:,} tasks (N = {n:,} plus the root) that do nothing, as a chain "
          "and a fan-out; each tool a fresh process per run, timed from spawn to exit")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    try:
        load = os.getloadavg()
        load_s = f"; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    except OSError:
        load_s = ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores; repetitions: {args.reps}{load_s}",
          flush=True)

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-orchestration-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, args.scratch.resolve())
    doc: dict = {"benchmark": "orchestration", "versions": vers, "cores": os.cpu_count(), "reps": args.reps,
                 "tasks": total, "n": n, "results": {}}
    try:
        # Warm-up, untimed: every tool once on a small graph of each workload (creates Prefect's
        # database, so that its one-time migrations are not timed; fills the file caches) and is
        # checked like the timed runs.
        small = min(n, 10)
        for workload in workloads:
            for tool in tools:
                bench.run(tool, small, graphs[0], workload)
        print(f"warm-up (untimed): every tool ran {small + 1} tasks of each workload and passed its checks",
              flush=True)

        for workload in workloads:
            for graph in graphs:
                series = {t: Series(t) for t in tools}
                for rep in range(args.reps):
                    order = tools[rep % len(tools):] + tools[: rep % len(tools)]
                    for tool in order:
                        r, notes = bench.run(tool, n, graph, workload)
                        series[tool].reps.append(r)
                        for note in notes:
                            if note not in series[tool].notes:
                                series[tool].notes.append(note)
                        print(f"  {workload:<4} {graph:<6} rep {rep + 1}/{args.reps}  {tool:<14} {r.wall_s:8.2f} s",
                              flush=True)
                doc["results"][f"{workload}/{graph}"] = {t: s.to_json(total) for t, s in series.items()}
                print_table(workload, graph, series, total)
    except BenchError as e:
        print(f"\norchestration failed: {e}", file=sys.stderr)
        return 1
    finally:
        bench.close()
        if scratch_owner is not None:
            scratch_owner.cleanup()
    print_bar(doc, tools)
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


def fmt(x: Optional[float], spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(workload: str, graph: str, series: dict[str, Series], total: int) -> None:
    print()
    print(f"{workload}, {graph}: {total:,} tasks (best of {len(next(iter(series.values())).reps)} by wall time; "
          "latency percentiles over every repetition)")
    header = (f"{'tool':<34} {'wall s':>8} {'import s':>9} {'start s':>8} {'CPU s':>7} {'ms/task':>8} "
              f"{'after start':>11} {'lat p50':>8} {'lat p99':>8} {'/ sluice':>9} {'after st.':>9}")
    print(header)
    print("-" * len(header))
    base = series.get("sluice")
    for tool, s in series.items():
        b = s.best()
        per = 1000 * b.wall_s / total
        after = 1000 * (b.wall_s - b.start_s) / total
        lat = [x for r in s.reps for x in r.latencies_ms]
        ratio = ratio_after = "-"
        if base and tool != "sluice":
            bb = base.best()
            ratio = f"{b.wall_s / bb.wall_s:.1f}"
            ratio_after = f"{(b.wall_s - b.start_s) / (bb.wall_s - bb.start_s):.1f}"
        print(f"{TOOL_WHAT[tool][:34]:<34} {b.wall_s:>8.3f} {fmt(b.import_s, '.3f'):>9} {b.start_s:>8.3f} "
              f"{b.cpu_s:>7.2f} {per:>8.3f} {after:>11.3f} {fmt(pct(lat, 50), '.3f'):>8} "
              f"{fmt(pct(lat, 99), '.3f'):>8} {ratio:>9} {ratio_after:>9}")
        for note in s.notes:
            print(f"    {tool}: {note}")


def print_bar(doc: dict, tools: list[str]) -> None:
    print()
    print("ms/task: wall time (spawn to exit) over the tasks; after start: (wall - start) over the tasks; "
          "start: spawn to the first task's start (import: spawn to the end of the imports); / sluice: the "
          "peer's wall over sluice's; after st.: the same for (wall - start)")
    print("lat: ready-to-start latency in ms, the input's end to the task's start (sluice: from its run log's "
          "started_at and ended_at, to the microsecond; peers: task bodies' own clock readings)")
    if "sluice" not in tools:
        print("peers only: sluice was not run, so there are no ratios and no bar.")
        return
    print("bar: the faster peer's time per task at least 10x sluice's; sluice's ready-to-start p99 under 1 ms")
    for key, res in doc["results"].items():
        s = res["sluice"]
        peers = [(t, r) for t, r in res.items() if t != "sluice"]
        if not peers:
            continue
        fastest, fr = min(peers, key=lambda tr: tr[1]["ms_per_task"])
        ratio = fr["ms_per_task"] / s["ms_per_task"]
        after = min(r["ms_per_task_after_start"] for _, r in peers) / s["ms_per_task_after_start"]
        lat = s["ready_to_start_ms"]
        p99 = lat["p99"] if lat else None
        res["bar"] = {"faster_peer": fastest, "ratio": ratio, "ratio_met": ratio >= 10,
                      "ratio_after_start": after, "p99_ms": p99, "p99_met": p99 is not None and p99 < 1}
        print(f"  {key:<12} faster peer {fastest}: {ratio:.1f}x ({'met' if ratio >= 10 else 'NOT met'}; "
              f"after start, against the fastest peer after start: {after:.1f}x); "
              f"sluice p99 {fmt(p99, '.3f')} ms ({'met' if p99 is not None and p99 < 1 else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
