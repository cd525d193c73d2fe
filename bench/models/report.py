#!/usr/bin/env python3
"""The summary of bench/models, from what run.sh collected.

RESULTS.jsonl holds one JSON object a line: each wrk case ({"kind": "wrk", "case",
"connections", ...predict.lua's RESULT..., "cpu_s", "rss_kb", "others_s"}) and one
{"kind": "meta", ...}. --accuracy is compare.py's JSON and --check check.py's. Prints the
latency table (per case and connections: requests/s, p50, p90, p99, p99.9, the server's CPU,
what other processes took of its CPU, its memory, errors), then the bar lines of both halves,
and writes everything to --json-out.

Usage: python report.py RESULTS.jsonl [--accuracy A.json] [--check C.json] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CASES = {
    "p": "POST /v1/predict: entity, online features + model",
    "v": "POST /v1/predict: values only, the model alone",
    "g": "GET /v1/predictions: a batch prediction",
}
ERROR_KEYS = ("non200", "bad_body", "connect_errors", "read_errors", "write_errors", "timeouts")


def ms(us):
    return "—" if us is None else f"{us / 1000:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--accuracy", type=Path)
    ap.add_argument("--check", type=Path)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.results.read_text(encoding="utf-8").splitlines() if line.strip()]
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    runs = [r for r in rows if r.get("kind") == "wrk"]
    acc = json.loads(args.accuracy.read_text(encoding="utf-8")) if args.accuracy and args.accuracy.exists() else None
    chk = json.loads(args.check.read_text(encoding="utf-8")) if args.check and args.check.exists() else None

    status = 0
    print()
    if runs:
        print(f"bench/models, online: {meta.get('cpus', '?')} CPUs, {meta.get('pinning', '?')}; "
              f"{meta.get('duration_s', '?')} s at {meta.get('connections', '?')} connections, "
              f"{meta.get('latency_duration_s', '?')} s at 1, after {meta.get('warmup_s', '?')} s of warm-up")
        if meta.get("busy_note"):
            print(f"WARNING: {meta['busy_note']}")
        header = ("case", "what", "conns", "requests/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "server CPU",
                  "others", "RSS MB", "errors")
        table = [header]
        for case in CASES:
            for r in sorted((r for r in runs if r["case"] == case), key=lambda r: -r["connections"]):
                secs = r.get("seconds") or 0
                cpu = r.get("cpu_s")
                oth = r.get("others_s")
                table.append((case, CASES[case], str(r["connections"]), f"{r['rps']:,.0f}", ms(r.get("p50_us")),
                              ms(r.get("p90_us")), ms(r.get("p99_us")), ms(r.get("p999_us")),
                              "—" if cpu is None or not secs else f"{100 * cpu / secs:.0f}%",
                              "—" if oth is None or not secs or not meta.get("pinned") else f"{100 * oth / secs:.0f}%",
                              "—" if r.get("rss_kb") is None else f"{r['rss_kb'] / 1024:.0f}",
                              str(sum(r.get(k, 0) or 0 for k in ERROR_KEYS))))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for i, row in enumerate(table):
            print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
            if i == 0:
                print("  ".join("-" * w for w in widths))
        print("(p50/p90/p99/p99.9: wrk's latency of completed requests; wrk is closed-loop, so under load they")
        print(" include queueing at the server: the 1-connection rows are the latency of one request alone)")
        if meta.get("pinned"):
            print("server CPU: sluice serve's share of one CPU; others: what other processes ran on its CPU meanwhile")
            noisy = [r for r in runs if r.get("others_s") is not None and r.get("seconds")
                     and r["others_s"] / r["seconds"] > 0.10]
            if noisy:
                print("WARNING: other processes took more than 10% of the server's CPU during "
                      + ", ".join(f"({r['case']}) at {r['connections']} conn." for r in noisy)
                      + ": those numbers are not those of a quiet machine")
        errors = [r for r in runs if any(r.get(k) for k in ERROR_KEYS)]
        if errors:
            status = 1
            print("ERRORS: these cases had failed or wrong responses, so their numbers are void:")
            for r in errors:
                print(f"  ({r['case']}) {r.get('label')}: non-200 {r.get('non200')}, no score {r.get('bad_body')}, "
                      f"socket errors {r.get('connect_errors', 0) + r.get('read_errors', 0) + r.get('write_errors', 0)},"
                      f" timeouts {r.get('timeouts')}")
    if chk:
        print(f"pre-flight (check.py): {chk.get('scored')} online predictions, {chk.get('gate')} upcoming flights "
              f"online = batch (largest difference {chk.get('gate_max_abs_diff', 0):.1e})"
              + (f"; {len(chk['problems'])} PROBLEMS" if chk.get("problems") else ": ok"))

    summary = {}
    print()
    if acc and acc.get("sluice"):
        sl, lg = acc["sluice"], acc["lightgbm"]
        summary.update(auc_sluice=sl["metrics"]["auc"], auc_lightgbm=lg["metrics"]["auc"], auc_diff=acc["auc_diff"],
                       auc_bar_met=acc["bar_met"], train_s_sluice=sl["train_s"], fit_s_lightgbm=lg["fit_s"],
                       total_s_lightgbm=lg["total_s"], ratio_fit=acc["ratio_fit"], ratio_total=acc["ratio_total"])
        print(f"validation AUC: sluice {sl['metrics']['auc']:.4f}, LightGBM {lg['metrics']['auc']:.4f} "
              f"(difference {acc['auc_diff']:+.4f}; bar |difference| <= 0.01: {'MET' if acc['bar_met'] else 'NOT MET'})")
        print(f"training time: sluice {sl['train_s']:.3f} s (train_ms: join + encode + fit + validate), LightGBM fit "
              f"{lg['fit_s']:.3f} s, total {lg['total_s']:.3f} s; LightGBM/sluice {acc['ratio_fit']:.2f}x (fit), "
              f"{acc['ratio_total']:.2f}x (total)")
    for case in CASES:
        for r in runs:
            if r["case"] == case:
                summary[f"{case}_c{r['connections']}"] = {k: r.get(k) for k in ("rps", "p50_us", "p99_us", "p999_us")}
    p1 = next((r for r in runs if r["case"] == "p" and r["connections"] == 1), None)
    pc = next((r for r in runs if r["case"] == "p" and r["connections"] > 1), None)
    if p1 or pc:
        parts = []
        for r in (pc, p1):
            if r:
                parts.append(f"{r['connections']} conn.: p50 {ms(r['p50_us'])} ms, p99 {ms(r['p99_us'])} ms, "
                             f"{r['rps']:,.0f} req/s")
        print("online prediction (POST /v1/predict, entity): " + "; ".join(parts))
    if args.json_out:
        args.json_out.write_text(json.dumps({"benchmark": "models", "meta": meta, "summary": summary,
                                             "accuracy": acc, "check": chk, "runs": runs}, indent=2),
                                 encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
