"""Helpers shared by the three `features` benchmarks (features_a.py, features_b.py,
features_c.py): comparing result tables cell by cell, running a subprocess while
measuring its wall time and peak memory, running sluice, the sluice project and the
Feast repository of the feature view `fv`, and printing the results.

Besides the standard library: numpy and pyarrow (and ../common.py).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, parse_sluice_json, sql_str  # noqa: E402,F401  (re-exported)

TTL_DAYS = 30  # the feature view's TTL in (b) and (c), in sluice, Feast and DuckDB alike
FEATURES = ["f1", "f2", "f3", "f4", "f5", "f6"]  # the feature columns of `fv` (f6 is int64)
SPINE_COLUMNS = ["user_id", "ts", "label"]
REL_TOL = 1e-9  # relative tolerance for floats

# ----------------------------------------------------------------------------- comparing tables


def _unit_us(t: pa.DataType) -> int:
    """Microseconds per unit of a timestamp type, negative for finer units (divide)."""
    return {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": -1_000}[t.unit]


def column_values(col: pa.ChunkedArray | pa.Array) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, values, null mask) of an Arrow column: kind is "int", "float", "ts" (int64
    microseconds since the epoch, UTC or naive alike), "str" or "other". NaN counts as null
    (pandas-based tools write a missing value as NaN)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    null = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_timestamp(t):
        raw = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
        unit = _unit_us(t)
        vals = raw * unit if unit > 0 else np.floor_divide(raw, -unit)
        if unit < 0 and (raw % -unit != 0).any():
            vals = raw.astype(np.float64) / -unit  # sub-microsecond values: compare exactly as floats
        return "ts", vals, null
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "int", pc.fill_null(col.cast(pa.int64()), 0).to_numpy(), null
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        vals = pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy()
        null = null | np.isnan(vals)
        return "float", np.where(null, 0.0, vals), null
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str", np.asarray(col.to_pylist(), dtype=object), null
    return "other", np.asarray(col.to_pylist(), dtype=object), null


def compare_columns(name: str, ref: pa.ChunkedArray, got: pa.ChunkedArray, rel_tol: float = REL_TOL,
                    row_labels: Optional[Sequence[Any]] = None) -> list[str]:
    """Mismatches (up to 5, described) between two aligned columns: floats to `rel_tol`
    relative, integers, timestamps and strings exactly; null only equals null. An integer
    column may be compared with a float one (Feast turns an int64 feature with missing
    values into float64): then the values must be equal as numbers."""
    if len(ref) != len(got):
        return [f"{name}: {len(ref)} rows vs {len(got)}"]
    rk, rv, rn = column_values(ref)
    gk, gv, gn = column_values(got)
    if {rk, gk} == {"int", "float"}:
        rk = gk = "float"
        rv, gv = rv.astype(np.float64), gv.astype(np.float64)
    if rk != gk:
        return [f"{name}: types differ ({ref.type} vs {got.type})"]
    bad = rn != gn
    both = ~rn & ~gn
    if rk == "float":
        close = (rv == gv) | (np.abs(rv - gv) <= rel_tol * np.maximum(np.abs(rv), np.abs(gv)))
        bad |= both & ~close
    else:
        bad |= both & (rv != gv)
    idx = np.flatnonzero(bad)
    out = []
    for i in idx[:5]:
        label = row_labels[i] if row_labels is not None else i
        r = None if rn[i] else getattr(rv[i], "item", lambda: rv[i])()
        g = None if gn[i] else getattr(gv[i], "item", lambda: gv[i])()
        out.append(f"{name} at {label}: expected {r!r}, got {g!r}")
    if len(idx) > 5:
        out.append(f"{name}: ... {len(idx)} mismatching rows in all")
    return out


def compare_tables(ref: pa.Table, got: pa.Table, columns: Sequence[str], what: str,
                   row_labels: Optional[Sequence[Any]] = None) -> None:
    """Raise BenchError unless `got` equals `ref` cell by cell on `columns` (rows aligned)."""
    missing = [c for c in columns if c not in got.column_names]
    if missing:
        raise BenchError(f"{what}: missing columns {missing} (it has {got.column_names})")
    if ref.num_rows != got.num_rows:
        raise BenchError(f"{what}: {got.num_rows} rows, expected {ref.num_rows}")
    problems: list[str] = []
    for c in columns:
        problems += compare_columns(c, ref.column(c), got.column(c), row_labels=row_labels)
    if problems:
        raise BenchError(f"{what} differs from the reference:\n  " + "\n  ".join(problems[:40]))


def type_notes(ref: pa.Table, got: pa.Table, columns: Sequence[str]) -> list[str]:
    """Columns whose Arrow types differ (values may still agree)."""
    return [f"{c}: {got.schema.field(c).type} (reference {ref.schema.field(c).type})"
            for c in columns if c in got.column_names and got.schema.field(c).type != ref.schema.field(c).type]


# ----------------------------------------------------------------------------- subprocesses


@dataclass
class Measured:
    """One subprocess run: wall time, peak resident memory, its output."""
    wall_s: float
    peak_rss: int  # bytes: ru_maxrss of the process (and any children it waited for)
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode < 0

    @property
    def out_of_memory(self) -> bool:
        """Killed (the OOM killer's SIGKILL) or a Python MemoryError."""
        return self.returncode == -9 or (self.returncode != 0 and "MemoryError" in self.stderr)


def run_measured(cmd: Sequence[str], out_dir: Path, tag: str, env: Optional[dict] = None,
                 mem_limit: Optional[int] = None) -> Measured:
    """Run `cmd`, its output to files in `out_dir`, and read its own peak RSS.
    `mem_limit` (bytes) caps its address space (RLIMIT_AS), so that a tool that runs out of
    memory fails alone instead of waking the kernel's OOM killer.

    The peak comes from GNU time (`%M`), which forks the command from its own small
    process. Linux counts in a child's `ru_maxrss` the resident size of the process it was
    forked from (exec records the forked address space's high-water mark), so `wait4` on a
    child of this Python process, which may hold gigabytes (an in-process reference), would
    report at least that. Without /usr/bin/time, `wait4`'s figure is used as an upper bound."""
    out_dir.mkdir(parents=True, exist_ok=True)
    so, se = out_dir / f"{tag}.stdout", out_dir / f"{tag}.stderr"
    rss_file = out_dir / f"{tag}.maxrss"
    timer = shutil.which("time", path="/usr/bin")
    full = [timer, "-q", "-f", "%M", "-o", str(rss_file)] if timer else []
    full += [str(c) for c in cmd]

    def limit() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    with open(so, "wb") as fo, open(se, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=fo, stderr=fe, env=env,
                                preexec_fn=limit if mem_limit else None)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss * 1024
    if timer:
        # GNU time exits with 128 + the signal when the command was killed.
        if proc.returncode > 128:
            proc.returncode = 128 - proc.returncode
        lines = rss_file.read_text(encoding="utf-8", errors="replace").split() if rss_file.exists() else []
        if lines and lines[-1].isdigit():
            peak = int(lines[-1]) * 1024
    return Measured(wall, peak, proc.returncode,
                    so.read_text(encoding="utf-8", errors="replace"), se.read_text(encoding="utf-8", errors="replace"))


def worker_report(m: Measured, tool: str) -> dict:
    """The JSON object a Python worker printed last; BenchError if it failed."""
    if m.returncode != 0:
        how = f"was killed by signal {-m.returncode}" if m.killed else f"exited with {m.returncode}"
        raise BenchError(f"{tool} worker {how} (peak RSS {m.peak_rss / 1e9:.2f} GB)\n--- stderr (tail) ---\n"
                         + m.stderr[-4000:])
    for line in reversed(m.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"{tool} worker printed no JSON report:\n{m.stdout[-2000:]}")


def default_mem_limit() -> Optional[int]:
    """80% of the machine's memory: the address-space cap of the Feast workers."""
    try:
        import psutil
        return int(psutil.virtual_memory().total * 0.8)
    except Exception:  # noqa: BLE001
        return None


def rss_now() -> int:
    try:
        import psutil
        return psutil.Process().memory_info().rss
    except Exception:  # noqa: BLE001
        return 0


def peak_rss_self() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ----------------------------------------------------------------------------- sluice


def run_sluice(sluice_bin: Path, args: Sequence[str], out_dir: Path, tag: str) -> tuple[Measured, dict]:
    """`sluice ARGS` measured; BenchError unless it succeeds; its JSON report."""
    m = run_measured([str(sluice_bin), *args], out_dir, tag)
    if m.returncode != 0:
        raise BenchError(f"sluice {' '.join(args)} exited with {m.returncode}\n--- stderr ---\n{m.stderr[-4000:]}"
                         f"\n--- stdout ---\n{m.stdout[-4000:]}")
    return m, parse_sluice_json(m.stdout)


def sluice_asset(report: dict, name: str) -> dict:
    """The asset `name` of a `sluice run --json` report, which must have built."""
    assets = report.get("assets")
    if not isinstance(assets, list):
        raise BenchError(f"sluice report has no `assets` array: {json.dumps(report)[:2000]}")
    asset = next((a for a in assets if isinstance(a, dict) and a.get("name") == name), None)
    if asset is None:
        raise BenchError(f"sluice report has no asset `{name}`: {json.dumps(assets)[:2000]}")
    status = str(asset.get("status"))
    if asset.get("error") or "fail" in status or "error" in status:
        raise BenchError(f"sluice asset `{name}` did not build: {asset}")
    return asset


def asset_ms(asset: dict, key: str = "duration_ms") -> float:
    v = asset.get(key)
    if not isinstance(v, (int, float)):
        raise BenchError(f"sluice asset `{asset.get('name')}` has no numeric {key}: {asset}")
    return float(v)


FV_TOML = """\
[project]
name = "features_bench"

[sources.feature_rows]
path = {path}

[features.fv]
sql = "SELECT * FROM feature_rows"
entity = "user_id"
timestamp = "event_ts"
created = "created_ts"
ttl = "{ttl_days}d"
"""


def write_fv_project(project: Path, feature_rows: Path) -> None:
    """The sluice project of (b) and (c): the feature rows as a source, `fv` over them."""
    project.mkdir(parents=True)
    toml = FV_TOML.format(path=json.dumps(str(feature_rows)), ttl_days=TTL_DAYS)
    (project / "sluice.toml").write_text(toml, encoding="utf-8")


# ----------------------------------------------------------------------------- Feast


FEAST_YAML = """\
project: sluice_bench
registry: {repo}/data/registry.db
provider: local
online_store:
  type: sqlite
  path: {repo}/data/online_store.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def feast_store(repo: Path, feature_rows: Path):
    """A fresh Feast repository in `repo` with the entity `user` and the view `fv` over
    `feature_rows` applied to its registry; returns (store, feature refs). Imports Feast."""
    os.environ.setdefault("FEAST_USAGE", "False")
    from datetime import timedelta

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(FEAST_YAML.format(repo=repo), encoding="utf-8")
    source = FileSource(name="feature_rows", path=str(feature_rows), timestamp_field="event_ts",
                        created_timestamp_column="created_ts")
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="fv", entities=[user], ttl=timedelta(days=TTL_DAYS), source=source, online=True,
        schema=[Field(name=f, dtype=Int64 if f == "f6" else Float64) for f in FEATURES],
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, view])
    return store, [f"fv:{f}" for f in FEATURES]


def feast_version() -> str:
    try:
        from importlib.metadata import version
        return version("feast")
    except Exception:  # noqa: BLE001
        return "?"


# ----------------------------------------------------------------------------- samples (Feast on a subset)


def entity_sample_sql(frac: float) -> str:
    """A SQL predicate keeping the entities in a stable pseudo-random `frac` of them (by hash)."""
    return f"(hash(user_id) % 1000000) < {int(round(frac * 1_000_000))}"


def write_sample(con, src: Path, dst: Path, frac: float) -> int:
    """Copy the rows of `src` whose entity is in the sample to `dst`, in file order; their count."""
    con.execute(
        f"COPY (SELECT * EXCLUDE (file_row_number) FROM read_parquet({sql_str(src)}, file_row_number = true) "
        f"WHERE {entity_sample_sql(frac)} ORDER BY file_row_number) TO {sql_str(dst)} "
        "(FORMAT parquet, COMPRESSION zstd)"
    ).fetchall()
    return con.execute(f"SELECT count(*) FROM read_parquet({sql_str(dst)})").fetchall()[0][0]


# ----------------------------------------------------------------------------- results


@dataclass
class Series:
    """Repeated measurements of one quantity of one tool."""
    tool: str
    what: str
    short: str = ""  # its label as a ratio column
    seconds: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    scale: float = 1.0  # > 1: measured on a sample, times multiplied by this
    note: str = ""

    def add(self, seconds: float, peak_rss: Optional[int] = None) -> None:
        self.seconds.append(seconds * self.scale)
        if peak_rss is not None:
            self.peak_rss.append(peak_rss)

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
                "median": self.median, "peak_rss_bytes": self.peak, "extrapolation_factor": self.scale,
                "extrapolated": self.scale != 1.0, "note": self.note or None}


def fmt_s(x: Optional[float], width: int = 9) -> str:
    return f"{x:>{width}.3f}" if x is not None else f"{'-':>{width}}"


def fmt_gb(x: Optional[int], width: int = 8) -> str:
    return f"{x / 1e9:>{width}.2f}" if x is not None else f"{'-':>{width}}"


def print_series(title: str, series: Sequence[Series], baselines: Sequence[Series], memory: bool) -> None:
    """A table: best and median per row, peak memory, and best / each baseline's best."""
    base = [b for b in baselines if b.best]
    cols = "".join(f" {('/' + (b.short or b.tool))[:18]:>18}" for b in base)
    header = f"{'tool: what':<58} {'best s':>9} {'median s':>9}" + (f" {'peak GB':>8}" if memory else "") + cols
    print()
    print(title)
    print(header)
    print("-" * len(header))
    for s in series:
        name = f"{s.tool}: {s.what}" + (" [EXTRAPOLATED]" if s.scale != 1.0 else "")
        ratios = "".join(
            f" {(f'{s.best / b.best:.2f}' if s.best and b is not s else '-'):>18}" for b in base)
        print(f"{name[:58]:<58} {fmt_s(s.best)} {fmt_s(s.median)}" + (f" {fmt_gb(s.peak)}" if memory else "")
              + ratios)
    seen = set()
    for s in series:
        line = (f"  [EXTRAPOLATED] {s.tool}: {s.note}" if s.scale != 1.0
                else f"  note: {s.tool}: {s.note}" if s.note else None)
        if line and line not in seen:
            seen.add(line)
            print(line)
    if base:
        print("  ratio columns: this row's best / that sluice row's best (above 1: sluice is faster)")


def fmt_ms(x: Any) -> str:
    return f"{x / 1000:.3f} s" if isinstance(x, (int, float)) else "?"


def nan_to_none(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x
