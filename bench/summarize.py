#!/usr/bin/env python3
"""One results table from the directory bench/run_all.sh wrote (standard library only).

    python3 bench/summarize.py DIR [--out FILE]

Reads DIR/<bench>.json (each bench's --json-out; collections: collections-ann.json and
collections-embed.json), DIR/status.tsv and DIR/run_all.meta, and writes DIR/results.md
(or FILE): the machine, date, commit and sluice version, then one table with a row per
measured workload: sluice's number, the fastest peer's, and the ratio, peer / sluice for
times and sluice / peer for throughputs and scores, so that above 1 always means sluice
is better. Every parser is small and tolerant: a missing or changed field gives a row
with "?" and a warning, never a crash. Benches that failed or were skipped get a row that
says so, and the failed ones the last lines of their log.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORDER = ["ingest_groupby", "validate", "features", "windows", "models", "serve", "orchestration",
         "connectors", "collections", "dashboard"]
WARNINGS: list[str] = []


def warn(msg: str) -> None:
    WARNINGS.append(msg)
    print(f"summarize.py: warning: {msg}", file=sys.stderr)


def dig(obj, *path):
    """obj[path[0]][path[1]]..., or None when any step is missing."""
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return None
    return obj


def num(x):
    """x as a finite float, else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def best_of(x):
    """The least of a list of numbers (or the number itself)."""
    if isinstance(x, list):
        vals = [v for v in map(num, x) if v is not None]
        return min(vals) if vals else None
    return num(x)


# --------------------------------------------------------------------------- rows

# kind: "time" (lower is better: ratio peer / sluice), "rate" or "score" (higher is better:
# ratio sluice / peer). peers: {name: value}, or None when the workload has no peer.
ROWS: list[dict] = []


def row(bench, workload, sluice, unit, peers, kind="time", note=""):
    sluice = num(sluice)
    r = {"bench": bench, "workload": workload, "sluice": sluice, "unit": unit, "peer": None, "peer_value": None,
         "ratio": None, "kind": kind, "note": note, "no_peer": peers is None}
    if sluice is None:
        warn(f"{bench}: {workload}: no sluice number")
    if peers is not None:
        vals = {k: num(v) for k, v in peers.items()}
        vals = {k: v for k, v in vals.items() if v is not None}
        if not vals:
            warn(f"{bench}: {workload}: no peer number")
        else:
            pick = min if kind == "time" else max
            name = pick(vals, key=vals.get)
            r["peer"], r["peer_value"] = name, vals[name]
            if sluice:
                v = vals[name]
                r["ratio"] = v / sluice if kind == "time" else sluice / v if v else None
    ROWS.append(r)


def unknown_row(bench, workload, why):
    warn(f"{bench}: {workload}: {why}")
    ROWS.append({"bench": bench, "workload": workload, "sluice": None, "unit": "", "peer": None, "peer_value": None,
                 "ratio": None, "kind": "time", "note": why, "no_peer": False})


def human_rows(n) -> str:
    n = num(n)
    if n is None:
        return "?"
    return f"{n / 1e6:.3g}M" if n >= 1e6 else f"{n / 1e3:.3g}k" if n >= 1e3 else f"{n:.0f}"


# --------------------------------------------------------------------------- parsers


def p_ingest_groupby(doc):
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return unknown_row("ingest_groupby", "?", "no `inputs` in the JSON")
    for inp in inputs:
        by = {r.get("tool"): r.get("best") for r in inp.get("results") or [] if isinstance(r, dict)}
        row("ingest_groupby", f"CSV → Delta/Parquet + group-by, {human_rows(inp.get('rows'))} rows",
            by.get("sluice"), "s", {t: v for t, v in by.items() if t != "sluice"})


def p_validate(doc):
    rows = human_rows(dig(doc, "input", "rows"))
    res = {r.get("tool"): r for r in doc.get("results") or [] if isinstance(r, dict)}
    peers = {t: r for t, r in res.items() if t and not t.startswith("sluice")}

    def label(t):
        return t + (" (EXTRAPOLATED)" if peers[t].get("extrapolated_from_rows") else "")

    row("validate", f"{rows} rows, 9 rules + quarantine: sluice's validation cost (with the contract − with its row-count expectation alone) "
        "vs the peers' validate step", doc.get("sluice_validation_cost"), "s",
        {label(t): r.get("best_validate") for t, r in peers.items()})
    row("validate", f"{rows} rows: total (sluice also writes every passing row as a Delta version)",
        dig(res, "sluice", "best_total"), "s", {label(t): r.get("best_total") for t, r in peers.items()})


def _series(results):
    return [s for s in results or [] if isinstance(s, dict)]


def _peer_name(s):
    name = f"{s.get('tool')}: {s.get('what')}"
    if s.get("extrapolated"):
        name += " EXTRAPOLATED"
    return name


def p_features(doc):
    if not any(k in doc for k in ("features_a", "features_b", "features_c")):
        return unknown_row("features", "?", "none of features_a, _b, _c in the JSON")
    a = doc.get("features_a")
    if isinstance(a, dict):
        for inp in a.get("inputs") or []:
            ss = _series(inp.get("results"))
            peers = {s.get("tool"): s.get("best") for s in ss if s.get("tool") != "sluice"}
            view = next((s for s in ss if s.get("tool") == "sluice" and "view" in str(s.get("what"))), {})
            run = next((s for s in ss if s.get("tool") == "sluice" and "run" in str(s.get("what"))), {})
            ev = human_rows(inp.get("rows"))
            row("features", f"a: 28 features per user, {ev} events: the view (duration_ms)", view.get("best"), "s",
                peers)
            row("features", f"a: 28 features per user, {ev} events: whole `sluice run` (+ ingest)", run.get("best"),
                "s", peers)
    b = doc.get("features_b")
    if isinstance(b, dict):
        ss = _series(b.get("results"))
        sl = next((s for s in ss if s.get("tool") == "sluice"), {})
        peers = {_peer_name(s): s.get("best") for s in ss
                 if s.get("tool") != "sluice" and "NOT scaled" not in str(s.get("what"))}
        row("features", f"b: point-in-time training set, {human_rows(dig(b, 'input', 'spine_rows'))} spine × "
            f"{human_rows(dig(b, 'input', 'feature_rows'))} feature rows (sluice: process wall)", sl.get("best"), "s",
            peers)
    c = doc.get("features_c")
    if isinstance(c, dict):
        ss = _series(c.get("results"))
        sl = next((s for s in ss if s.get("tool") == "sluice" and "online" in str(s.get("what"))), {})
        peers = {_peer_name(s): s.get("best") for s in ss
                 if s.get("tool") != "sluice" and "NOT scaled" not in str(s.get("what"))
                 and "get_online_features" not in str(s.get("what"))}
        row("features", f"c: online store write, {human_rows(dig(c, 'input', 'feature_rows'))} feature rows "
            "(sluice: online.duration_ms; Feast: materialize)", sl.get("best"), "s", peers)


def p_windows(doc):
    res = doc.get("results")
    if not isinstance(res, dict):
        return unknown_row("windows", "?", "no `results` in the JSON")
    spine = human_rows(dig(doc, "input", "spine_rows") or dig(doc, "input", "spine"))
    events = human_rows(dig(doc, "input", "events"))
    row("windows", f"training set with 9 windowed features as of each spine row ({spine} spine, {events} events)",
        dig(res, "sluice", "best"), "s",
        {f"{k}: {v.get('what')}": v.get("best") for k, v in res.items()
         if isinstance(v, dict) and not k.startswith("sluice")})


def p_models(doc):
    acc = doc.get("accuracy") if isinstance(doc.get("accuracy"), dict) else {}
    summ = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    row("models", "gbdt `late`: training time (sluice train_ms, point-in-time join included; LightGBM fit)",
        dig(acc, "sluice", "train_s") or summ.get("train_s_sluice"), "s",
        {"LightGBM fit": dig(acc, "lightgbm", "fit_s") or summ.get("fit_s_lightgbm"),
         "LightGBM fit, sluice's encoding": dig(acc, "lightgbm_sluice_encoding", "fit_s")})
    row("models", "gbdt `late`: validation AUC", dig(acc, "sluice", "metrics", "auc") or summ.get("auc_sluice"), "AUC",
        {"LightGBM": dig(acc, "lightgbm", "metrics", "auc") or summ.get("auc_lightgbm")}, kind="score")
    if isinstance(acc.get("logistic"), dict):
        lg = acc["logistic"]
        row("models", "logistic `late`: training time (sluice train_ms; scikit-learn fit)",
            dig(lg, "sluice", "train_s"), "s", {"scikit-learn": dig(lg, "sklearn", "fit_s")})
        row("models", "logistic `late`: validation AUC", dig(lg, "sluice", "metrics", "auc"), "AUC",
            {"scikit-learn": dig(lg, "sklearn", "metrics", "auc")}, kind="score")
    p1 = summ.get("p_c1")
    loaded = [(k, v) for k, v in summ.items() if k.startswith("p_c") and k != "p_c1" and isinstance(v, dict)]
    if isinstance(p1, dict):
        p99 = num(p1.get("p99_us"))
        row("models", "POST /v1/predict/late (online features + model): p99 at 1 connection",
            None if p99 is None else p99 / 1000, "ms", None)
    for k, v in loaded:
        row("models", f"POST /v1/predict/late: requests/s at {k[3:]} connections", v.get("rps"), "req/s", None,
            kind="rate")
    if not isinstance(p1, dict) and not loaded and "runs" in doc and doc.get("runs"):
        warn("models: no p_c* latency entries in `summary`")


def p_serve(doc):
    runs = [r for r in doc.get("runs") or [] if isinstance(r, dict)]
    if not runs:
        return unknown_row("serve", "?", "no `runs` in the JSON")

    def best(case):
        rs = [r for r in runs if r.get("case") == case and num(r.get("rps"))]
        return max(rs, key=lambda r: r["rps"]) if rs else {}

    def at(case, conns):
        return next((r for r in runs if r.get("case") == case and r.get("connections") == conns), {})

    def ents(r):
        rps, batch = num(r.get("rps")), num(r.get("batch")) or 1
        return None if rps is None else rps * batch

    a, b, c, d, e = (best(k) for k in "abcde")
    row("serve", "online lookup, 1 entity × 50 features: requests/s (each server's best)", a.get("rps"), "req/s",
        {"Feast": c.get("rps")}, kind="rate")
    row("serve", "online lookup, 100 entities × 50 features: entities/s (best)", ents(b), "entities/s",
        {"Feast": ents(d)}, kind="rate")
    a1, c1 = at("a", 1), at("c", 1)
    ms = lambda r: None if num(r.get("p99_us")) is None else r["p99_us"] / 1000  # noqa: E731
    row("serve", "online lookup, 1 entity: p99 at 1 connection", ms(a1), "ms", {"Feast": ms(c1)})
    row("serve", "online lookup, 1 entity: requests/s against Redis GET (the floor, not the same work)",
        a.get("rps"), "req/s", {"Redis GET": e.get("rps")}, kind="rate")


def p_orchestration(doc):
    res = doc.get("results")
    if not isinstance(res, dict) or not res:
        return unknown_row("orchestration", "?", "no `results` in the JSON")
    tasks = doc.get("tasks", "?")
    for key, tools in res.items():
        if not isinstance(tools, dict):
            continue
        tools = {t: v for t, v in tools.items() if isinstance(v, dict) and "ms_per_task" in v}
        sl = tools.get("sluice", {})
        p99 = num(dig(sl, "ready_to_start_ms", "p99"))
        row("orchestration", f"{key}, {tasks} tasks: overhead per task (wall / tasks)", sl.get("ms_per_task"),
            "ms/task", {t: v.get("ms_per_task") for t, v in tools.items() if t != "sluice"},
            note="" if p99 is None else f"sluice ready-to-start p99 {p99:.3f} ms")


def p_connectors(doc):
    times = doc.get("times")
    if not isinstance(times, dict) or not times:
        return unknown_row("connectors", "?", "no `times` in the JSON")
    best = {k: best_of(v) for k, v in times.items()}
    peers = {k: v for k, v in best.items() if not k.startswith("sluice")}
    rows = human_rows(doc.get("rows"))
    for k in best:
        if k.startswith("sluice"):
            row("connectors", f"PostgreSQL table ({rows} rows) → persisted: {k}", best[k], "s", peers)
    if not any(k.startswith("sluice") for k in best):
        unknown_row("connectors", f"PostgreSQL table ({rows} rows)", "no sluice entry in `times`")


def qps_at_recall(search: dict, target: float):
    """As in collections/ann.py: QPS at a recall, log QPS interpolated linearly in recall."""
    pts = sorted((num(v.get("recall")), num(v.get("qps"))) for v in search.values()
                 if isinstance(v, dict) and num(v.get("recall")) is not None and num(v.get("qps")))
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            w = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) * (1 - w) + math.log(q1) * w)
    return None


def p_collections_ann(doc):
    res = doc.get("results")
    if not isinstance(res, dict) or "sluice" not in res:
        return unknown_row("collections", "ANN index", "no `results.sluice` in collections-ann.json")
    args = doc.get("args") if isinstance(doc.get("args"), dict) else {}
    if args.get("vectors") not in (None, "None"):
        data = f"real vectors ({Path(str(args['vectors'])).name})"
    elif args.get("data") == "clustered":
        data = f"{human_rows(num(float(args.get('n', 'nan'))))} clustered 384-d"
    else:
        data = f"{args.get('n', '?')} random {args.get('dim', '?')}-d"
    threads = str(args.get("threads", "")).split(",")[0] or "?"
    builds = {lib: best_of(dig(r, "build", threads)) for lib, r in res.items() if isinstance(r, dict)}
    row("collections", f"HNSW build, {data}, {threads} threads", builds.pop("sluice", None), "s", builds)
    searches = {lib: r.get("search") for lib, r in res.items() if isinstance(r, dict) and isinstance(r.get("search"), dict)}
    sl = searches.get("sluice") or {}
    recalls = [num(v.get("recall")) for v in sl.values() if isinstance(v, dict)]
    recalls = [r for r in recalls if r is not None]
    if not recalls:
        return unknown_row("collections", f"HNSW search, {data}", "no sluice search results")
    lo, hi = min(recalls), max(recalls)
    candidates = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995)
    targets = [t for t in (0.9, 0.99) if lo <= t <= hi] or [t for t in candidates if lo <= t <= hi][-1:]
    for t in targets:
        peers = {lib: qps_at_recall(s, t) for lib, s in searches.items() if lib != "sluice"}
        row("collections", f"HNSW search, {data}: QPS at recall@10 = {t} (1 thread, interpolated)",
            qps_at_recall(sl, t), "QPS", peers, kind="rate")


def p_collections_embed(doc):
    secs = doc.get("seconds")
    if not isinstance(secs, dict):
        return unknown_row("collections", "embedding", "no `seconds` in collections-embed.json")
    sl = next((v for k, v in secs.items() if k.startswith("sluice")), None)
    row("collections", f"embed {doc.get('chunks', '?')} chunks, all-MiniLM-L6-v2, {doc.get('threads', '?')} threads",
        sl, "s", {k: v for k, v in secs.items() if not k.startswith("sluice")})


def p_dashboard(doc):
    pages = [p for p in doc.get("pages") or [] if isinstance(p, dict)]
    timed = [p for p in pages if num(p.get("p99_ms")) is not None]
    worst = doc.get("slowest_p99_ms")
    if worst is None and timed:
        worst = max(num(p["p99_ms"]) for p in timed)
    bar = doc.get("bar_ms", 50)
    slowest = max(timed, key=lambda p: num(p["p99_ms"])).get("page", "?") if timed else "?"
    row("dashboard", f"slowest of {len(pages) or '?'} pages, p99 over {doc.get('reps', '?')} requests ({slowest})",
        worst, "ms", {f"the bar (issue 20), no peer": bar}, note="no peer: the ratio is the bar over sluice's p99")


PARSERS = {
    "ingest_groupby": [("ingest_groupby.json", p_ingest_groupby)],
    "validate": [("validate.json", p_validate)],
    "features": [("features.json", p_features)],
    "windows": [("windows.json", p_windows)],
    "models": [("models.json", p_models)],
    "serve": [("serve.json", p_serve)],
    "orchestration": [("orchestration.json", p_orchestration)],
    "connectors": [("connectors.json", p_connectors)],
    "collections": [("collections-ann.json", p_collections_ann), ("collections-embed.json", p_collections_embed)],
    "dashboard": [("dashboard.json", p_dashboard)],
}


# --------------------------------------------------------------------------- the page


def fmt(x, unit=""):
    x = num(x)
    if x is None:
        return "?"
    if unit in ("req/s", "entities/s", "QPS") or abs(x) >= 1000:
        return f"{x:,.0f}"
    if unit == "AUC":
        return f"{x:.4f}"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"


def read_meta(d: Path) -> dict:
    meta = {}
    f = d / "run_all.meta"
    if f.is_file():
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            k, sep, v = line.partition("=")
            if sep:
                meta[k.strip()] = v.strip()
    else:
        warn(f"no {f}: the machine, commit and version are read now")
    if "nproc" not in meta:
        meta["nproc"] = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    if "mem_total_kb" not in meta:
        try:
            meta["mem_total_kb"] = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
        except (OSError, StopIteration):
            pass
    if "cpu_model" not in meta:
        try:
            meta["cpu_model"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                     if l.startswith("model name"))
        except (OSError, StopIteration):
            meta["cpu_model"] = platform.processor() or "?"
    if "commit" not in meta:
        try:
            meta["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                            text=True, timeout=10).stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            meta["commit"] = "?"
    return meta


def read_status(d: Path) -> dict:
    st = {}
    f = d / "status.tsv"
    if not f.is_file():
        return st
    for line in f.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 2:
            st[parts[0]] = {"status": parts[1], "seconds": parts[2] if len(parts) > 2 else "?",
                            "exit": parts[3] if len(parts) > 3 else "?"}
    return st


def tail(path: Path, n: int = 25) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:] or ["(the log is empty)"]
    except OSError:
        return ["(no log)"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="the results directory of bench/run_all.sh")
    ap.add_argument("--out", type=Path, help="the Markdown file (default DIR/results.md)")
    args = ap.parse_args()
    d = args.dir
    if not d.is_dir():
        print(f"summarize.py: no directory {d}", file=sys.stderr)
        return 2
    meta = read_meta(d)
    status = read_status(d)
    benches = [b for b in ORDER if b in status] or [b for b in ORDER if any((d / f).is_file() for f, _ in PARSERS[b])]

    for b in benches:
        st = status.get(b, {}).get("status", "?")
        if st == "SKIPPED":
            reason = next((l for l in reversed(tail(d / f"{b}.log", 40)) if l.startswith("SKIPPED")), "skipped")
            ROWS.append({"bench": b, "workload": reason, "skip": True})
            continue
        found = False
        for fname, parse in PARSERS[b]:
            f = d / fname
            if not f.is_file():
                continue
            found = True
            n_before = len(ROWS)
            try:
                doc = json.loads(f.read_text(encoding="utf-8"))
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                parse(doc)
            except Exception as e:  # noqa: BLE001  (a parser never stops the summary)
                del ROWS[n_before:]
                unknown_row(b, f"({fname})", f"could not read it: {type(e).__name__}: {e}")
        if st == "FAILED":
            ROWS.append({"bench": b, "workload": f"FAILED (exit {status[b]['exit']}): see {b}.log and below",
                         "skip": True})
        elif not found:
            unknown_row(b, "?", f"no JSON ({', '.join(f for f, _ in PARSERS[b])}) in {d}")

    mem = num(float(meta["mem_total_kb"])) if meta.get("mem_total_kb", "").isdigit() else None
    commit = meta.get("commit", "?")
    lines = ["# Benchmark results", ""]
    lines.append(f"- date: {meta.get('started', time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))}"
                 + (f" to {meta['finished']}" if meta.get("finished") else ""))
    lines.append(f"- machine: {meta.get('nproc', '?')} CPUs (nproc), "
                 f"{'?' if mem is None else f'{mem / 1024 / 1024:.1f} GiB'} memory, {meta.get('cpu_model', '?')}; "
                 f"load average at the start {meta.get('load_at_start', '?')}")
    lines.append(f"- commit: `{commit[:12]}`" + (" with uncommitted changes" if meta.get("dirty") == "yes" else ""))
    lines.append(f"- sluice: {meta.get('sluice_version', '?')} (`{meta.get('sluice_bin', '?')}`)")
    lines.append(f"- run: {'--quick (small sizes: a smoke run, not the benchmarks' + chr(39) + ' results)' if meta.get('quick') == '1' else 'full sizes'}, "
                 f"repetitions: {meta.get('reps', '?')}")
    lines.append("")
    lines.append("Ratio: the fastest peer's time / sluice's, or sluice's throughput (or AUC) / the best peer's; "
                 "above 1, sluice is better. Times are each tool's best over the repetitions.")
    lines.append("")
    lines.append("| bench | workload | sluice | unit | fastest peer | peer | ratio | note |")
    lines.append("| --- | --- | ---: | --- | --- | ---: | ---: | --- |")
    for r in ROWS:
        if r.get("skip"):
            lines.append(f"| {r['bench']} | {r['workload']} | — | | | | | |")
            continue
        peer = "—" if r["no_peer"] else (r["peer"] or "?")
        pval = "—" if r["no_peer"] else fmt(r["peer_value"], r["unit"])
        ratio = "—" if r["no_peer"] and r["ratio"] is None else ("?" if r["ratio"] is None else f"{r['ratio']:.2f}")
        cells = [r["bench"], r["workload"], fmt(r["sluice"], r["unit"]), r["unit"], peer, pval, ratio, r["note"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    if status:
        lines.append("Runs: " + "; ".join(f"{b} {s['status']} ({s['seconds']} s)" for b, s in status.items()) + ".")
        lines.append("")
    failed = [b for b, s in status.items() if s["status"] == "FAILED"]
    for b in failed:
        lines.append(f"## {b}: FAILED (exit {status[b]['exit']}), the last lines of {b}.log")
        lines.append("")
        lines.append("```")
        lines.extend(tail(d / f"{b}.log"))
        lines.append("```")
        lines.append("")
    if WARNINGS:
        lines.append("## Warnings")
        lines.append("")
        lines.extend(f"- {w}" for w in WARNINGS)
        lines.append("")
    text = "\n".join(lines)
    out = args.out or d / "results.md"
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
