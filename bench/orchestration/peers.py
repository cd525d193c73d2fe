#!/usr/bin/env python3
"""The peers' side of the orchestration benchmark: one run of Prefect or Dagster on a graph, in this
(fresh) process, started by ``bench.py``. Only the standard library is imported besides the peer
(and DuckDB for the sql workload), so that the import time measured is the peer's own.
``prefect`` and ``prefect-server`` run the same flow; ``bench.py`` points the second at a
running ``prefect server start`` (``PREFECT_API_URL``), the first at none (so Prefect starts its
temporary server).

    python peers.py --worker prefect|prefect-server|dagster|dagster-assets --graph chain|fanout
        --workload noop|sql --tasks N --report FILE

The report (JSON): ``tasks_ok`` (task runs the peer says succeeded), ``imported_ns`` (time.time_ns
after the imports), ``done_ns``, and per task ``starts``/``ends`` (its body's time.time_ns), ``runs``
(how often the body ran) and ``good`` (1 when its work checked out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

GRAPHS = ("chain", "fanout")
WORKLOADS = ("noop", "sql")
PEERS = ("prefect", "prefect-server", "dagster", "dagster-assets")


def names(n: int) -> list[str]:
    """t0000 ... tN, zero-padded to one width."""
    width = max(4, len(str(n)))
    return [f"t{i:0{width}d}" for i in range(n + 1)]


def upstream(i: int, graph: str) -> Optional[int]:
    """The task that task i depends on (None for the root)."""
    if i == 0:
        return None
    return i - 1 if graph == "chain" else 0


# --------------------------------------------------------------------------- the peers (worker side)


class Recorder:
    """Every task body's start and end (time.time_ns) and whether its work checked out."""

    def __init__(self, n_tasks: int, workload: str):
        self.starts = [0] * n_tasks
        self.ends = [0] * n_tasks
        self.runs = [0] * n_tasks
        self.good = [0] * n_tasks
        self.workload = workload
        self._local = None
        self._con = None
        if workload == "sql":
            import threading

            import duckdb
            self._con = duckdb.connect()
            self._local = threading.local()

    def body(self, i: int) -> None:
        self.starts[i] = time.time_ns()
        self.runs[i] += 1
        if self._con is not None:
            cur = getattr(self._local, "cur", None)
            if cur is None:
                cur = self._local.cur = self._con.cursor()
            self.good[i] = int(cur.execute("SELECT 1").fetchall() == [(1,)])
        else:
            self.good[i] = 1
        self.ends[i] = time.time_ns()


def prefect_job(rec: Recorder, n: int, graph: str) -> dict:
    from prefect import flow, task
    from prefect.runtime import flow_run

    @task(name="t")
    def t(i: int, up=None) -> None:  # `up` is the upstream's future: Prefect waits for it
        rec.body(i)

    @flow(name=f"orchestration-{graph}")
    def f():
        futs = [t.submit(0)]
        for i in range(1, n + 1):
            futs.append(t.submit(i, futs[upstream(i, graph)]))
        for fu in futs:
            fu.wait()
        return flow_run.id, [fu.state for fu in futs]

    run_id, states = f()
    ok = sum(1 for s in states if s.is_completed())
    return {"tasks_ok": ok, "flow_run_id": str(run_id)}


def dagster_ops_job(rec: Recorder, n: int, graph: str) -> dict:
    import dagster as dg

    ns = names(n)

    def make(i: int):
        ins = {} if i == 0 else {"up": dg.In(dg.Nothing)}

        @dg.op(name=ns[i], ins=ins)
        def o() -> None:
            rec.body(i)
        return o

    deps = {ns[i]: {"up": dg.DependencyDefinition(ns[upstream(i, graph)])} for i in range(1, n + 1)}
    job = dg.GraphDefinition(name=f"orchestration_{graph}", node_defs=[make(i) for i in range(n + 1)],
                             dependencies=deps).to_job()
    res = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                 run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    ok = len(res.get_step_success_events()) if res.success else 0
    return {"tasks_ok": ok}


def dagster_assets_job(rec: Recorder, n: int, graph: str) -> dict:
    import dagster as dg

    ns = names(n)

    def make(i: int):
        up = upstream(i, graph)

        @dg.asset(name=ns[i], deps=[] if up is None else [ns[up]])
        def a() -> None:
            rec.body(i)
        return a

    res = dg.materialize([make(i) for i in range(n + 1)], instance=dg.DagsterInstance.ephemeral(),
                         raise_on_error=False,
                         run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    ok = len(res.get_step_success_events()) if res.success else 0
    return {"tasks_ok": ok}


JOBS = {"prefect": prefect_job, "prefect-server": prefect_job, "dagster": dagster_ops_job,
        "dagster-assets": dagster_assets_job}
IMPORTS = {"prefect": "prefect", "prefect-server": "prefect", "dagster": "dagster", "dagster-assets": "dagster"}


def worker(args) -> int:
    """One timed run of a peer in this (fresh) process; its report as JSON to args.report."""
    import importlib
    importlib.import_module(IMPORTS[args.worker])
    if args.workload == "sql":
        import duckdb  # noqa: F401
    imported = time.time_ns()
    rec = Recorder(args.tasks + 1, args.workload)
    out = JOBS[args.worker](rec, args.tasks, args.graph)
    done = time.time_ns()
    out.update({"imported_ns": imported, "done_ns": done, "starts": rec.starts, "ends": rec.ends,
                "runs": rec.runs, "good": rec.good})
    Path(args.report).write_text(json.dumps(out), encoding="utf-8")
    return 0



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", choices=PEERS, required=True)
    ap.add_argument("--graph", choices=GRAPHS, required=True)
    ap.add_argument("--workload", choices=WORKLOADS, required=True)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--report", type=Path, required=True)
    return worker(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
