"""Helpers shared by the benchmarks: running sluice and reading what it wrote.

Only the standard library and pyarrow; each benchmark's own peers stay in its script.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class BenchError(Exception):
    """A tool failed or the tools disagree: the benchmark result is void."""


def sql_str(s: str | Path) -> str:
    """A SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def sluice_version(sluice_bin: Path) -> str:
    try:
        proc = subprocess.run([str(sluice_bin), "--version"], capture_output=True, text=True, timeout=30)
        return proc.stdout.strip() or proc.stderr.strip() or "?"
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"


def parse_sluice_json(stdout: str) -> dict:
    """The summary `sluice run --json` printed."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Tolerate stray lines before the report: take the last line that is an object.
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise BenchError(f"sluice --json printed no JSON object; stdout was:\n{stdout}")


def find_delta_table(root: Path, name: str) -> Path | None:
    """The Delta table `name` of a project: `.sluice/tables/name`, else the one
    directory named `name` under `root` that holds a `_delta_log`."""
    direct = root / ".sluice" / "tables" / name
    if (direct / "_delta_log").is_dir():
        return direct
    hits = [p.parent for p in root.rglob("_delta_log") if p.is_dir() and p.parent.name == name]
    return hits[0] if len(hits) == 1 else None


def read_delta_table(table: Path) -> pa.Table | None:
    """The live files of a Delta table, read from its JSON log (enough for a fresh
    table); None when no file is live."""
    live: dict[str, None] = {}
    for log in sorted((table / "_delta_log").glob("*.json")):
        for line in log.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = None
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    files = [table / urllib.parse.unquote(p) for p in live]
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
