"""Helpers of bench/models: the model as the project declares it, and its inputs.

Only the standard library, pyarrow and bench/common.py.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, find_delta_table, read_delta_table  # noqa: E402


def model_section(toml_path: Path, model: str) -> dict:
    """`[models.MODEL]` of a project file; it must have a spine, its time, a label and
    `split = { before = ... }`."""
    doc = tomllib.loads(Path(toml_path).read_text(encoding="utf-8"))
    sec = (doc.get("models") or {}).get(model)
    if not isinstance(sec, dict):
        raise BenchError(f"{toml_path} has no [models.{model}]")
    for key in ("spine", "timestamp", "label", "split"):
        if key not in sec:
            raise BenchError(f"[models.{model}] has no `{key}`; this benchmark needs a spine, its time, a label and a split")
    if not isinstance(sec["split"], dict) or "before" not in sec["split"]:
        raise BenchError(f"[models.{model}] split is {sec['split']!r}; this benchmark needs split = {{ before = ... }}")
    return sec


def view_keys(toml_path: Path, views: list[str]) -> list[str]:
    """The entity key columns of feature views (`entity = "k"` or `["k1", "k2"]`), in order."""
    doc = tomllib.loads(Path(toml_path).read_text(encoding="utf-8"))
    keys: list[str] = []
    for v in views:
        name = v.split(":", 1)[0]
        sec = (doc.get("features") or {}).get(name)
        if not isinstance(sec, dict) or "entity" not in sec:
            raise BenchError(f"{toml_path} has no [features.{name}] with an entity")
        ent = sec["entity"]
        for k in [ent] if isinstance(ent, str) else ent:
            if k not in keys:
                keys.append(k)
    return keys


def table_columns(project: Path, table: str) -> list[str]:
    """The columns of a project's table, from its Delta table."""
    found = find_delta_table(Path(project), table)
    data = read_delta_table(found) if found else None
    if data is None:
        raise BenchError(f"no Delta table `{table}` with rows under {project}")
    return data.schema.names


def model_inputs(columns: list[str], spine_columns: list[str], model_columns: list[str]) -> list[str]:
    """A model's inputs in a training set: its spine columns, then every feature (the
    columns that are not the spine's), as sluice orders them."""
    return list(model_columns) + [c for c in columns if c not in spine_columns]
