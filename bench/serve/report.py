#!/usr/bin/env python3
"""The table of bench/serve, from the results run.sh collected (one JSON object a line).

Each line is a wrk case ({"kind": "wrk", "case", "server", "batch", "connections",
"label", ...lookup.lua's RESULT..., "cpu_s"}) or a redis-benchmark case ({"kind":
"redis", "case", "connections", "rps", "p50_us", "p99_us", ...}), plus one {"kind":
"meta", ...}. Prints per case: connections, requests/s, entities/s, p50, p99, p99.9,
the server's CPU (of one core), what other processes took of the server's CPU, the
server's resident memory after the run, and the errors; then the ratios sluice/Feast and
sluice/Redis (requests/s: each server's best run, whatever its connections, so that Feast
is not judged at a concurrency that slows it; also at equal connections), and the SPEC
bar: p99 of (a) under 1 ms, at --connections and at 1 connection, and (a) >= 10x (c) in
requests/s, best against best.

Usage: python report.py RESULTS.jsonl [--json-out FILE] [--require-bar]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CASES = {
    "a": "sluice GET, 1 entity x 50 features",
    "b": "sluice POST, 100 entities x 50 features",
    "c": "Feast POST, 1 entity x 50 features",
    "d": "Feast POST, 100 entities x 50 features",
    "e": "Redis GET (the floor), 1 value",
}
P99_BAR_US = 1000.0
RATIO_BAR = 10.0


def ms(us):
    return "—" if us is None else f"{us / 1000:.3f}"


def fmt_rate(x):
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--require-bar", action="store_true", help="exit 3 when the bar is not met")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.results.read_text(encoding="utf-8").splitlines() if line.strip()]
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    runs = [r for r in rows if r.get("kind") in ("wrk", "redis")]

    def get(case, conns):
        return next((r for r in runs if r["case"] == case and r["connections"] == conns), None)

    load_c = meta.get("connections", 16)
    print()
    print(f"bench/serve: {meta.get('entities', '?')} entities x {meta.get('features', '?')} features; "
          f"{meta.get('cpus', '?')} CPUs, {meta.get('pinning', '?')}; {meta.get('duration_s', '?')} s a run")
    if meta.get("busy_note"):
        print(f"WARNING: {meta['busy_note']}")
    pinned = meta.get("pinned", False)
    header = ("case", "what", "conns", "requests/s", "entities/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU",
              "others", "RSS MB", "errors")
    table = [header]
    for case in "abcde":
        for conns in sorted({r["connections"] for r in runs if r["case"] == case}, reverse=True):
            r = get(case, conns)
            batch = r.get("batch", 1)
            errors = sum(r.get(k, 0) or 0 for k in ("non200", "bad_body", "connect_errors", "read_errors",
                                                    "write_errors", "timeouts"))
            cpu = r.get("cpu_s")
            cpu_pct = "—" if cpu is None or not r.get("seconds") else f"{100 * cpu / r['seconds']:.0f}%"
            oth = r.get("others_s")
            oth_pct = "—" if oth is None or not pinned or not r.get("seconds") else f"{100 * oth / r['seconds']:.0f}%"
            table.append((case, CASES[case], str(conns), fmt_rate(r.get("rps")),
                          fmt_rate(r["rps"] * batch if r.get("rps") is not None else None),
                          ms(r.get("p50_us")), ms(r.get("p99_us")), ms(r.get("p999_us")), cpu_pct, oth_pct,
                          "—" if r.get("rss_kb") is None else f"{r['rss_kb'] / 1024:.0f}", str(errors)))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))

    def ratio(x, y, key="rps"):
        if x is None or y is None or not y.get(key):
            return None
        return x[key] / y[key]

    def best(case):
        """A case's run with the most requests/s, whatever its connections."""
        rs = [r for r in runs if r["case"] == case and r.get("rps")]
        return max(rs, key=lambda r: r["rps"]) if rs else None

    a, b, c, d, e = (get(k, load_c) for k in "abcde")
    a1 = get("a", 1)
    ab, bb, cb, db, eb = (best(k) for k in "abcde")
    ratios = {
        "sluice_over_feast_rps_single": ratio(ab, cb),
        "sluice_over_feast_rps_batch100": ratio(bb, db),
        "sluice_over_feast_rps_single_same_conns": ratio(a, c),
        "sluice_over_feast_rps_batch100_same_conns": ratio(b, d),
        "sluice_over_redis_rps": ratio(ab, eb),
        "sluice_p50_over_redis_p50_1conn": ratio(a1, get("e", 1), "p50_us"),
    }
    print()
    print("ratios (same machine, same run; requests/s: each server's best, whatever its connections):")
    labels = {
        "sluice_over_feast_rps_single": "sluice / Feast, requests/s, 1 entity (a/c)",
        "sluice_over_feast_rps_batch100": "sluice / Feast, requests/s, 100 entities (b/d)",
        "sluice_over_feast_rps_single_same_conns": f"the same at {load_c} connections each (a/c)",
        "sluice_over_feast_rps_batch100_same_conns": f"the same at {load_c} connections each (b/d)",
        "sluice_over_redis_rps": "sluice / Redis GET, requests/s (a/e)",
        "sluice_p50_over_redis_p50_1conn": "sluice p50 / Redis GET p50, 1 connection (a/e)",
    }
    for k, label in labels.items():
        v = ratios[k]
        print(f"  {label}: {'—' if v is None else f'{v:.2f}x'}")

    bar = {"measured": a is not None and c is not None}
    lines = []
    for r in (a, a1):
        if r is None:
            continue
        met = r["p99_us"] < P99_BAR_US
        bar[f"p99_us_{r['connections']}conn"] = r["p99_us"]
        bar["p99_met"] = bar.get("p99_met", True) and met
        lines.append(f"SPEC bar (a) p99 < 1 ms at {r['connections']} connection{'s' if r['connections'] > 1 else ''}: "
                     f"{'MET' if met else 'NOT MET'} ({r['p99_us'] / 1000:.3f} ms)")
    if ratios["sluice_over_feast_rps_single"] is not None:
        bar["ratio"] = ratios["sluice_over_feast_rps_single"]
        bar["ratio_met"] = bar["ratio"] >= RATIO_BAR
        lines.append(f"SPEC bar (a) >= 10x Feast (c) requests/s, best against best: "
                     f"{'MET' if bar['ratio_met'] else 'NOT MET'} ({bar['ratio']:.1f}x: {ab['rps']:,.0f} at "
                     f"{ab['connections']} conn. against {cb['rps']:,.0f} at {cb['connections']})")
    print()
    if a is None and a1 is None:
        print("SPEC bar: not measured (no sluice results)")
    for line in lines:
        print(line)
    if a is not None and a.get("rps"):
        print(f"  (under load the latency is mostly queueing: {load_c} requests in flight at "
              f"{a['rps']:,.0f}/s wait {1000 * load_c / a['rps']:.2f} ms on average, by Little's law)")
    if pinned:
        print()
        print("server CPU: the server's processes, as a share of one CPU; others: what other processes ran on")
        print("the server's CPU meanwhile (its non-idle time minus the server's; a few % is the kernel's own work)")
        noisy = [r for r in runs if r.get("others_s") is not None and r.get("seconds")
                 and r["others_s"] / r["seconds"] > 0.10]
        if noisy:
            print("WARNING: other processes took more than 10% of the server's CPU during "
                  + ", ".join(f"({r['case']}) at {r['connections']} conn." for r in noisy)
                  + ": those numbers are not those of a quiet machine")
    starved = [r for r in runs if r["connections"] == load_c and r.get("cpu_s") is not None and r.get("seconds")
               and r["cpu_s"] / r["seconds"] < 0.85]
    if starved:
        print()
        print("note: under load these servers used less than 85% of a CPU, so the load generator (or the")
        print("network stack) set the pace; their requests/s are lower bounds of what the server can do:")
        for r in starved:
            print(f"  ({r['case']}) {CASES[r['case']]}: {100 * r['cpu_s'] / r['seconds']:.0f}% CPU")
    errors = [r for r in runs if any(r.get(k) for k in ("non200", "bad_body", "connect_errors", "read_errors",
                                                          "write_errors", "timeouts"))]
    if errors:
        print()
        print("ERRORS: these cases had failed or wrong responses, so their numbers are void:")
        for r in errors:
            print(f"  ({r['case']}) {r.get('label')}: non-200 {r.get('non200')}, wrong body {r.get('bad_body')}, "
                  f"socket errors {r.get('connect_errors', 0) + r.get('read_errors', 0) + r.get('write_errors', 0)}, "
                  f"timeouts {r.get('timeouts')}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"benchmark": "serve", "meta": meta, "runs": runs, "ratios": ratios,
                                             "bar": bar}, indent=2), encoding="utf-8")
    if errors:
        return 1
    if args.require_bar and a is not None and not (bar.get("p99_met") and bar.get("ratio_met")):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
