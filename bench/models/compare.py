#!/usr/bin/env python3
"""Validation quality and training time of a sluice model against its peers, on the same
training set, split and inputs.

Reads the training set `sluice training-set` wrote for the model's spine and feature views
(the spine's columns, then the features), splits it as the model does (rows whose time is
before `split.before` train, the rest validate; rows with no label or no time are left
out), takes the model's inputs (its `columns` and every feature of the training set), and
trains:

* LightGBM (`lightgbm.LGBMClassifier()`, default parameters), text columns as pandas
  `category` (LightGBM's own categorical splits); categories are those of the training
  rows, so an unseen one is missing, as in sluice;
* LightGBM again, default parameters, with the text columns encoded as sluice's trees read
  them (each category's rank by its mean label in the training rows, smoothed towards the
  overall mean with weight 20; unseen or missing: missing), to tell the learner from the
  encoding;
* with `--logistic`: scikit-learn's `LogisticRegression(C=1/alpha)` (L-BFGS, 100
  iterations) on sluice's linear encoding (numbers standardized by the training rows' mean
  and standard deviation, missing as 0; the 50 most frequent categories one-hot),

and compares each with sluice's numbers from `sluice model NAME --json` (its versions:
validation AUC, log loss, rows, `train_ms`). AUC and log loss are scikit-learn's
`roc_auc_score` and `log_loss`. Times, best of `--reps`:

* `fit`: `LGBMClassifier.fit` alone;
* `total`: reading the Parquet file, the split, the encoding, the fit, scoring the
  validation rows and the metrics, which is what sluice's `train_ms` spans, except that
  sluice also builds the point-in-time join (`--training-set-seconds` gives the time of the
  `sluice training-set` process, shown beside it).

Checks before anything is printed: sluice's training and validation row counts and its
`valid_from` equal this script's, and its inputs (the names in `importance`) are exactly the
inputs used here. When the model's batch predictions table (`NAME_predictions`) is found in
`--project`, the AUC of its scores (scikit-learn's) over the flights it shares with the
validation rows is compared with LightGBM's on the same rows.

Prints a table and writes every number to `--out` (JSON). Exits 1 when a check fails, 3
with `--require-bar` when |sluice AUC - LightGBM AUC| > `--bar` (0.01).

Usage (normally through run.sh):

    python compare.py --training-set TS.parquet --toml sluice.toml --model late \\
        --project DIR [--sluice-versions late.json] \\
        [--logistic --sluice-logistic late_logistic.json] [--reps 3] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcommon import (BenchError, find_delta_table, model_inputs, model_section, read_delta_table,  # noqa: E402
                     table_columns)

SMOOTHING = 20.0  # sluice's weight of the overall mean in a category's smoothed mean label
MAX_CATEGORIES = 50  # sluice's default one-hot columns per text column (linear learners)


def utc(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


# --- data ---------------------------------------------------------------------------


class Data:
    """The training set split as sluice splits it, with the model's inputs."""

    def __init__(self, path: Path, sec: dict, spine_columns: list[str]):
        df = pd.read_parquet(path)
        label, ts = sec["label"], sec["timestamp"]
        for c in (label, ts, *sec.get("columns", [])):
            if c not in df.columns:
                raise BenchError(f"{path}: no column `{c}` (columns: {', '.join(df.columns)})")
        missing_spine = [c for c in spine_columns if c not in df.columns]
        if missing_spine:
            raise BenchError(f"{path}: the spine's columns {missing_spine} are not in the training set")
        self.inputs = model_inputs(list(df.columns), spine_columns, sec.get("columns", []))
        self.categorical = [c for c in self.inputs if not (pd.api.types.is_numeric_dtype(df[c])
                                                           or pd.api.types.is_bool_dtype(df[c]))]
        bad = [c for c in self.categorical if pd.api.types.is_datetime64_any_dtype(df[c])]
        if bad:
            raise BenchError(f"inputs {bad} are times; this benchmark handles numbers and text only")
        times = df[ts]
        if not isinstance(times.dtype, pd.DatetimeTZDtype):
            times = times.dt.tz_localize("UTC")
        self.cut = utc(sec["split"]["before"])
        usable = df[label].notna() & times.notna()
        self.excluded = int((~usable).sum())
        train = usable & (times < self.cut)
        valid = usable & (times >= self.cut)
        self.x_train = df.loc[train, self.inputs].reset_index(drop=True)
        self.x_valid = df.loc[valid, self.inputs].reset_index(drop=True)
        self.y_train = df.loc[train, label].astype("float64").to_numpy()
        self.y_valid = df.loc[valid, label].astype("float64").to_numpy()
        self.valid_keys = df.loc[valid].reset_index(drop=True)
        for name, y in (("training", self.y_train), ("validation", self.y_valid)):
            if not np.isin(y, (0.0, 1.0)).all():
                raise BenchError(f"the {name} labels are not all 0 or 1")
            if len(y) == 0 or y.min() == y.max():
                raise BenchError(f"the {name} rows hold one class only (or none): no AUC")


def as_pandas_categories(d: Data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Text columns as `category` with the training rows' categories (unseen: missing)."""
    xt, xv = d.x_train.copy(), d.x_valid.copy()
    for c in d.categorical:
        cats = sorted(xt[c].dropna().astype(str).unique())
        dtype = pd.CategoricalDtype(cats)
        xt[c] = xt[c].astype("object").astype(dtype)
        xv[c] = xv[c].astype("object").astype(dtype)
    return xt, xv


def ranked_by_label(values: pd.Series, y: np.ndarray) -> list[str]:
    """sluice's tree encoding: categories by smoothed mean label, ties by name."""
    overall = float(y.mean())
    g = pd.DataFrame({"c": values.to_numpy(dtype=object), "y": y}).dropna(subset=["c"]).groupby("c")["y"]
    stats = pd.DataFrame({"sum": g.sum(), "n": g.count()})
    smoothed = (stats["sum"] + SMOOTHING * overall) / (stats["n"] + SMOOTHING)
    return [c for _, c in sorted(zip(smoothed.to_numpy(), smoothed.index.astype(str)))]


def as_sluice_trees(d: Data) -> tuple[pd.DataFrame, pd.DataFrame]:
    xt, xv = d.x_train.copy(), d.x_valid.copy()
    for c in d.categorical:
        codes = {cat: float(i) for i, cat in enumerate(ranked_by_label(xt[c], d.y_train))}
        xt[c] = xt[c].map(codes).astype("float64")
        xv[c] = xv[c].map(codes).astype("float64")
    return xt, xv


def as_sluice_linear(d: Data) -> tuple[np.ndarray, np.ndarray, int]:
    """sluice's linear encoding: standardized numbers (missing 0), one-hot frequent categories."""
    cols_t, cols_v = [], []
    for c in d.inputs:
        if c in d.categorical:
            counts = d.x_train[c].dropna().astype(str).value_counts()
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CATEGORIES]
            cats = [cat for cat, _ in top]
            for x, out in ((d.x_train[c], cols_t), (d.x_valid[c], cols_v)):
                codes = pd.Categorical(x.astype("object"), categories=cats).codes  # -1: not one of them
                out.extend((codes == i).astype("float64") for i in range(len(cats)))
        else:
            t = d.x_train[c].astype("float64").to_numpy()
            v = d.x_valid[c].astype("float64").to_numpy()
            present = t[~np.isnan(t)]
            mean, sd = (float(present.mean()), float(present.std())) if present.size else (0.0, 1.0)
            sd = sd if sd > 0 and math.isfinite(sd) else 1.0
            cols_t.append(np.nan_to_num((t - mean) / sd, nan=0.0))
            cols_v.append(np.nan_to_num((v - mean) / sd, nan=0.0))
    return np.column_stack(cols_t), np.column_stack(cols_v), len(cols_t)


# --- metrics ------------------------------------------------------------------------


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    p = np.asarray(p, dtype="float64")
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
    }


# --- peers --------------------------------------------------------------------------


def lightgbm_run(path: Path, sec: dict, spine_columns: list[str], encoding: str) -> dict:
    """One timed repetition: read, split, encode, fit, score, measure."""
    import lightgbm as lgb

    t0 = time.perf_counter()
    d = Data(path, sec, spine_columns)
    xt, xv = as_pandas_categories(d) if encoding == "pandas" else as_sluice_trees(d)
    t1 = time.perf_counter()
    model = lgb.LGBMClassifier(verbose=-1)  # default parameters; verbose=-1 only silences its log
    model.fit(xt, d.y_train)
    t2 = time.perf_counter()
    p = model.predict_proba(xv)[:, 1]
    m = metrics(d.y_valid, p)
    t3 = time.perf_counter()
    return {"fit_s": t2 - t1, "prep_s": t1 - t0, "total_s": t3 - t0, "metrics": m, "scores": p, "data": d,
            "params": {k: v for k, v in model.get_params().items() if v is not None}}


def logistic_run(path: Path, sec: dict, spine_columns: list[str], alpha: float, max_iter: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    d = Data(path, sec, spine_columns)
    xt, xv, width = as_sluice_linear(d)
    t1 = time.perf_counter()
    model = LogisticRegression(C=1.0 / alpha if alpha > 0 else 1e12, max_iter=max_iter)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(xt, d.y_train)
    t2 = time.perf_counter()
    p = model.predict_proba(xv)[:, 1]
    m = metrics(d.y_valid, p)
    t3 = time.perf_counter()
    return {"fit_s": t2 - t1, "prep_s": t1 - t0, "total_s": t3 - t0, "metrics": m, "width": width,
            "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
            "n_iter": int(np.max(model.n_iter_))}


def best_of(runs: list[dict]) -> dict:
    first = dict(runs[0])
    for k in ("fit_s", "prep_s", "total_s"):
        first[k] = min(r[k] for r in runs)
        first[k + "_all"] = [round(r[k], 4) for r in runs]
    aucs = [r["metrics"]["auc"] for r in runs]
    first["auc_spread"] = max(aucs) - min(aucs)
    return first


# --- sluice -------------------------------------------------------------------------


def sluice_model(path: Path | None, d: Data, what: str) -> dict | None:
    """sluice's versions of a model: metrics of the first, best train_ms; checked against d."""
    if path is None:
        return None
    versions = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(versions, dict):
        versions = versions.get("versions", [versions])
    if not versions:
        raise BenchError(f"{what}: `sluice model --json` lists no version")
    versions = sorted(versions, key=lambda v: v["version"])
    problems = []
    for v in versions:
        if v.get("train_rows") != len(d.y_train) or v.get("valid_rows") != len(d.y_valid):
            problems.append(f"version {v['version']}: {v.get('train_rows')} training and {v.get('valid_rows')} "
                            f"validation rows; the training set split here gives {len(d.y_train)} and {len(d.y_valid)}")
        if v.get("valid_from") is not None and utc(v["valid_from"]) != d.cut:
            problems.append(f"version {v['version']}: valid_from {v['valid_from']}, the split here starts at {d.cut}")
        names = [n for n, _ in v.get("importance", [])]
        if names and sorted(names) != sorted(d.inputs):
            problems.append(f"version {v['version']}: its inputs differ from the training set's: only sluice "
                            f"{sorted(set(names) - set(d.inputs))}, only here {sorted(set(d.inputs) - set(names))}")
        if "auc" not in (v.get("metrics") or {}):
            problems.append(f"version {v['version']}: no auc in its metrics {v.get('metrics')}")
    if problems:
        raise BenchError(f"{what}: sluice did not train on what this benchmark compares with:\n  " + "\n  ".join(problems))
    aucs = [v["metrics"]["auc"] for v in versions]
    ms = [v["train_ms"] for v in versions]
    return {
        "versions": [v["version"] for v in versions],
        "metrics": versions[0]["metrics"],
        "auc_spread": max(aucs) - min(aucs),
        "train_s": min(ms) / 1000.0,
        "train_s_all": [m / 1000.0 for m in ms],
        "learner": versions[0].get("learner"),
        "promoted": versions[0].get("promoted"),
        "importance_top": versions[0].get("importance", [])[:8],
        "train_rows": versions[0]["train_rows"],
        "valid_rows": versions[0]["valid_rows"],
    }


def predictions_subset(project: Path | None, model: str, entity: str | None, lgbm: dict) -> dict | None:
    """AUC of sluice's batch scores and of LightGBM's on the validation flights they share."""
    if project is None or not entity:
        return None
    table_dir = find_delta_table(project, f"{model}_predictions")
    table = read_delta_table(table_dir) if table_dir else None
    if table is None:
        return {"note": f"no {model}_predictions table found under {project}"}
    pred = table.to_pandas()
    d: Data = lgbm["data"]
    if entity not in pred.columns or entity not in d.valid_keys.columns or "score" not in pred.columns:
        return {"note": f"{model}_predictions has no `{entity}` or `score` column, or the validation rows no `{entity}`"}
    valid = pd.DataFrame({entity: d.valid_keys[entity].to_numpy(), "y": d.y_valid, "lgbm": lgbm["scores"]})
    valid = valid[~valid[entity].duplicated(keep=False)]
    pred = pred[~pred[entity].duplicated(keep=False)][[entity, "score"]]
    both = valid.merge(pred, on=entity, how="inner")
    if len(both) < 100 or both["y"].nunique() < 2:
        return {"note": f"only {len(both)} validation rows have a batch prediction", "rows": int(len(both))}
    from sklearn.metrics import roc_auc_score

    return {"rows": int(len(both)), "sluice_auc": float(roc_auc_score(both["y"], both["score"])),
            "lightgbm_auc": float(roc_auc_score(both["y"], both["lgbm"]))}


# --- report -------------------------------------------------------------------------


def fmt(x, digits=4):
    return "—" if x is None else f"{x:.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--training-set", type=Path, required=True)
    ap.add_argument("--toml", type=Path, required=True, help="the project file declaring the model")
    ap.add_argument("--model", default="late")
    ap.add_argument("--project", type=Path, help="the project: its spine's columns and NAME_predictions are read")
    ap.add_argument("--spine-columns", help="the spine's columns, comma-separated (default: from --project)")
    ap.add_argument("--sluice-versions", type=Path, help="`sluice model NAME --json`")
    ap.add_argument("--logistic", action="store_true", help="also scikit-learn's LogisticRegression")
    ap.add_argument("--logistic-model", default="late_logistic")
    ap.add_argument("--sluice-logistic", type=Path, help="`sluice model NAME_logistic --json`")
    ap.add_argument("--training-set-seconds", type=float, help="wall time of the `sluice training-set` process")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--bar", type=float, default=0.01)
    ap.add_argument("--require-bar", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import lightgbm
    import sklearn

    sec = model_section(args.toml, args.model)
    if args.spine_columns:
        spine_columns = [c for c in args.spine_columns.split(",") if c]
    elif args.project:
        spine_columns = table_columns(args.project, sec["spine"])
    else:
        raise BenchError("give --spine-columns or --project")
    pred_entity = (sec.get("predictions") or {}).get("entity")
    if isinstance(pred_entity, list):
        pred_entity = pred_entity[0] if len(pred_entity) == 1 else None

    reps = max(1, args.reps)
    runs = [lightgbm_run(args.training_set, sec, spine_columns, "pandas") for _ in range(reps)]
    lgbm = best_of(runs)
    d: Data = lgbm["data"]
    ord_runs = [lightgbm_run(args.training_set, sec, spine_columns, "sluice") for _ in range(reps)]
    lgbm_ord = best_of(ord_runs)
    sl = sluice_model(args.sluice_versions, d, f"model {args.model}")

    logit = sl_logit = None
    if args.logistic:
        lsec = sec
        try:
            lsec = model_section(args.toml, args.logistic_model)
        except BenchError:
            pass
        params = lsec.get("params") or {}
        alpha, max_iter = float(params.get("alpha", 1.0)), int(params.get("max_iterations", 100))
        logit = best_of([logistic_run(args.training_set, lsec, spine_columns, alpha, max_iter) for _ in range(reps)])
        sl_logit = sluice_model(args.sluice_logistic, d, f"model {args.logistic_model}")
    subset = predictions_subset(args.project, args.model, pred_entity, lgbm)

    # -- print -------------------------------------------------------------------
    print()
    print(f"bench/models: model `{args.model}` on {args.training_set.name}: {len(d.y_train):,} training rows "
          f"(before {d.cut:%Y-%m-%d %H:%M} UTC), {len(d.y_valid):,} validation rows, "
          f"{len(d.inputs)} inputs ({len(d.categorical)} text: {', '.join(d.categorical) or 'none'}); "
          f"{d.excluded} rows without a label or time left out")
    print(f"LightGBM {lightgbm.__version__}, scikit-learn {sklearn.__version__}, pandas {pd.__version__}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs; times are the best of {reps}")
    rows = [("model", "AUC", "log loss", "accuracy", "fit s", "total s")]
    if sl:
        rows.append((f"sluice gbdt (v{sl['versions'][0]})", fmt(sl["metrics"].get("auc")),
                     fmt(sl["metrics"].get("log_loss")), fmt(sl["metrics"].get("accuracy")), "—",
                     fmt(sl["train_s"], 3) + " (train_ms)"))
    rows.append(("LightGBM, pandas categories", fmt(lgbm["metrics"]["auc"]), fmt(lgbm["metrics"]["log_loss"]),
                 fmt(lgbm["metrics"]["accuracy"]), fmt(lgbm["fit_s"], 3), fmt(lgbm["total_s"], 3)))
    rows.append(("LightGBM, sluice's encoding", fmt(lgbm_ord["metrics"]["auc"]), fmt(lgbm_ord["metrics"]["log_loss"]),
                 fmt(lgbm_ord["metrics"]["accuracy"]), fmt(lgbm_ord["fit_s"], 3), fmt(lgbm_ord["total_s"], 3)))
    if logit:
        if sl_logit:
            rows.append((f"sluice logistic (v{sl_logit['versions'][0]})", fmt(sl_logit["metrics"].get("auc")),
                         fmt(sl_logit["metrics"].get("log_loss")), fmt(sl_logit["metrics"].get("accuracy")), "—",
                         fmt(sl_logit["train_s"], 3) + " (train_ms)"))
        rows.append((f"scikit-learn LogisticRegression ({logit['width']} cols)", fmt(logit["metrics"]["auc"]),
                     fmt(logit["metrics"]["log_loss"]), fmt(logit["metrics"]["accuracy"]), fmt(logit["fit_s"], 3),
                     fmt(logit["total_s"], 3)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("fit s: the learner's fit alone; total s: read the Parquet training set, split, encode, fit, score the")
    print("validation rows, metrics. sluice's train_ms also builds the point-in-time join (the training set).")
    if args.training_set_seconds is not None:
        print(f"`sluice training-set` (the same join, as a process that writes Parquet): {args.training_set_seconds:.3f} s")

    result = {
        "benchmark": "models", "model": args.model, "train_rows": len(d.y_train), "valid_rows": len(d.y_valid),
        "valid_from": d.cut.isoformat(), "inputs": d.inputs, "categorical": d.categorical, "reps": reps,
        "versions": {"lightgbm": lightgbm.__version__, "sklearn": sklearn.__version__, "pandas": pd.__version__,
                     "python": platform.python_version()},
        "cpus": os.cpu_count(), "training_set_s": args.training_set_seconds,
        "lightgbm": {k: lgbm[k] for k in ("metrics", "fit_s", "prep_s", "total_s", "fit_s_all", "total_s_all",
                                           "auc_spread", "params")},
        "lightgbm_sluice_encoding": {k: lgbm_ord[k] for k in ("metrics", "fit_s", "prep_s", "total_s", "fit_s_all",
                                                               "total_s_all")},
        "sluice": sl, "logistic": None, "predictions_subset": subset,
    }
    if logit:
        result["logistic"] = {"sklearn": {k: logit[k] for k in ("metrics", "fit_s", "prep_s", "total_s", "width",
                                                                "converged", "n_iter", "fit_s_all", "total_s_all")},
                              "sluice": sl_logit}
    status = 0
    print()
    if sl:
        diff = sl["metrics"]["auc"] - lgbm["metrics"]["auc"]
        met = abs(diff) <= args.bar
        result["auc_diff"] = diff
        result["bar_met"] = met
        result["ratio_fit"] = lgbm["fit_s"] / sl["train_s"]
        result["ratio_total"] = lgbm["total_s"] / sl["train_s"]
        print(f"AUC: sluice {sl['metrics']['auc']:.4f}, LightGBM {lgbm['metrics']['auc']:.4f}, difference {diff:+.4f}; "
              f"bar |difference| <= {args.bar}: {'MET' if met else 'NOT MET'}")
        print(f"training time: sluice train_ms {sl['train_s']:.3f} s; LightGBM fit {lgbm['fit_s']:.3f} s, "
              f"total {lgbm['total_s']:.3f} s")
        print(f"  ratio LightGBM / sluice: {result['ratio_fit']:.2f}x (fit) and {result['ratio_total']:.2f}x (total)"
              f" (above 1: sluice is faster)")
        if sl["auc_spread"] > 1e-12:
            print(f"  note: sluice's AUC varies by {sl['auc_spread']:.2e} across its versions {sl['versions']}")
        if logit and sl_logit:
            ld = sl_logit["metrics"]["auc"] - logit["metrics"]["auc"]
            result["logistic"]["auc_diff"] = ld
            result["logistic"]["ratio_fit"] = logit["fit_s"] / sl_logit["train_s"]
            print(f"logistic: sluice AUC {sl_logit['metrics']['auc']:.4f}, scikit-learn {logit['metrics']['auc']:.4f}, "
                  f"difference {ld:+.4f}; time sluice {sl_logit['train_s']:.3f} s, scikit-learn fit "
                  f"{logit['fit_s']:.3f} s (ratio {result['logistic']['ratio_fit']:.2f}x)")
        if args.require_bar and not met:
            status = 3
    else:
        print("sluice: not measured (no --sluice-versions)")
    if logit and not logit["converged"]:
        print(f"  note: scikit-learn's LogisticRegression stopped at max_iter ({logit['n_iter']}) before converging")
    if subset:
        if "sluice_auc" in subset:
            print(f"batch predictions, the {subset['rows']:,} validation flights they cover (AUC by scikit-learn): "
                  f"sluice {subset['sluice_auc']:.4f}, LightGBM {subset['lightgbm_auc']:.4f}")
        else:
            print(f"batch predictions: {subset['note']}")
    if lgbm["auc_spread"] > 1e-12:
        print(f"  note: LightGBM's AUC varies by {lgbm['auc_spread']:.2e} across repetitions")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"compare.py: error: {e}", file=sys.stderr)
        sys.exit(1)
