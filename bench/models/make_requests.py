#!/usr/bin/env python3
"""The requests of bench/models' latency cases and pre-flight checks, from real flights.

From the model's training set (`sluice training-set --spine <the model's spine>`) and the
training set of its prediction spine (`--spine <predictions spine>`: the same features, as
of each upcoming flight), writes into --out-dir:

* `entity.jsonl`: one request body a line, `{"entity": {...}}`: a random real flight of the
  spine (distinct flights, fixed seed), with every key column of the model's feature views
  (tailnum, carrier, origin) and every spine column the model reads (carrier, origin, dest,
  dep_hour, distance): what a caller knows of a flight; the server reads the rest from the
  online store.
* `values.jsonl`: `{"values": {...}}`: every input of an upcoming flight as the training
  set holds it (null where missing): the model scored on raw values, no store read.
* `keys.txt`: the entity key (flight_id) of every upcoming flight whose key is unique, one a
  line, for `GET /v1/predictions/<model>/<key>`.
* `gate.jsonl`: for --gate flights of those, `{"key": ..., "values": {...}}`, for check.py.

Usage: python make_requests.py --toml sluice.toml --model late --project DIR \\
           --training-set ts.parquet --upcoming up.parquet --out-dir DIR [--n 2000] [--gate 50]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcommon import BenchError, model_inputs, model_section, table_columns, view_keys  # noqa: E402


def plain(v):
    """A training-set cell as JSON: numbers as numbers, missing as null, text as text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def rows_as_dicts(df: pd.DataFrame, columns: list[str]) -> list[dict]:
    cols = {c: df[c].to_numpy(dtype=object) for c in columns}
    return [{c: plain(cols[c][i]) for c in columns} for i in range(len(df))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toml", type=Path, required=True)
    ap.add_argument("--model", default="late")
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--training-set", type=Path, required=True)
    ap.add_argument("--upcoming", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000, help="entity and values bodies (default 2000)")
    ap.add_argument("--gate", type=int, default=50, help="flights checked batch against online (default 50)")
    args = ap.parse_args()

    sec = model_section(args.toml, args.model)
    pred = sec.get("predictions") or {}
    if "spine" not in pred or "entity" not in pred:
        raise BenchError(f"[models.{args.model}.predictions] needs a spine and an entity")
    key = pred["entity"] if isinstance(pred["entity"], str) else pred["entity"][0]
    columns = list(sec.get("columns", []))
    ask = []
    for c in view_keys(args.toml, list(sec.get("features", []))) + columns:
        if c not in ask:
            ask.append(c)
    rng = np.random.default_rng(0)

    ts = pd.read_parquet(args.training_set)
    missing = [c for c in ask if c not in ts.columns]
    if missing:
        raise BenchError(f"{args.training_set}: no column(s) {missing} for the entity bodies")
    sample = ts[ask].drop_duplicates().reset_index(drop=True)
    sample = sample.iloc[rng.permutation(len(sample))[: args.n]]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "entity.jsonl", "w", encoding="utf-8") as f:
        for row in rows_as_dicts(sample, ask):
            f.write(json.dumps({"entity": row}, separators=(",", ":")) + "\n")

    up = pd.read_parquet(args.upcoming)
    spine_cols = table_columns(args.project, pred["spine"])
    inputs = model_inputs(list(up.columns), spine_cols, columns)
    missing = [c for c in inputs if c not in up.columns]
    if missing or key not in up.columns:
        raise BenchError(f"{args.upcoming}: no column(s) {missing + ([key] if key not in up.columns else [])}")
    unique = up[~up[key].duplicated(keep=False)].reset_index(drop=True)
    if unique.empty:
        raise BenchError(f"{args.upcoming}: no upcoming flight has a unique `{key}`")
    order = rng.permutation(len(unique))
    with open(args.out_dir / "keys.txt", "w", encoding="utf-8") as f:
        for k in unique[key].astype(str):
            f.write(k + "\n")
    vals = rows_as_dicts(unique.iloc[order[: args.n]], inputs)
    with open(args.out_dir / "values.jsonl", "w", encoding="utf-8") as f:
        for row in vals:
            f.write(json.dumps({"values": row}, separators=(",", ":")) + "\n")
    gate = unique.iloc[order[: args.gate]]
    with open(args.out_dir / "gate.jsonl", "w", encoding="utf-8") as f:
        for k, row in zip(gate[key].astype(str), rows_as_dicts(gate, inputs)):
            f.write(json.dumps({"key": k, "values": row}, separators=(",", ":")) + "\n")
    meta = {"entity_fields": ask, "inputs": inputs, "entity_bodies": len(sample), "values_bodies": len(vals),
            "keys": len(unique), "upcoming_rows": len(up), "gate": len(gate), "key": key}
    (args.out_dir / "requests.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    print(f"make_requests.py: {len(sample)} entity bodies ({', '.join(ask)}), {len(vals)} values bodies "
          f"({len(inputs)} inputs), {len(unique)} of {len(up)} upcoming flights with a unique {key}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"make_requests.py: error: {e}", file=sys.stderr)
        sys.exit(1)
