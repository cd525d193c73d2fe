"""Times each dashboard page of a running `sluice serve` (see run.sh)."""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import statistics
import time
import urllib.parse
import urllib.request


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--project", required=True)
    ap.add_argument("--json-out", help="also write the results as JSON here")
    a = ap.parse_args()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(path: str) -> tuple[int, str]:
        with opener.open(a.url + path) as r:
            return r.status, r.read().decode()

    # Sign in through the form, as a person does.
    _, page = get("/sign-in")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "key": a.key, "next": "/"}).encode()
    with opener.open(a.url + "/sign-in", data=body) as r:
        assert r.status == 200, r.status
    _, overview = get("/")
    assets = sorted(set(re.findall(r'href="/assets/([^"]+)"', overview)))
    _, runs = get("/runs")
    run = re.search(r'href="(/runs/\d+)"', runs).group(1)
    pages = ["/", "/runs", run, "/models", "/models/late"] + [f"/assets/{x}" for x in assets]
    print(f"{len(pages)} pages, {a.reps} requests each (3 more first, not timed)")
    worst = 0.0
    rows = []
    for p in pages:
        for _ in range(3):
            get(p)
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            status, _ = get(p)
            times.append((time.perf_counter() - t0) * 1000)
            assert status == 200, (p, status)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        worst = max(worst, p99)
        rows.append((p, p50, p99, times[-1]))
    print(f"{'page':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for p, p50, p99, mx in rows:
        print(f"{p:40} {p50:8.2f} {p99:8.2f} {mx:8.2f}")
    print(f"slowest page's p99: {worst:.2f} ms (bar: under 50 ms) -> {'met' if worst < 50 else 'NOT met'}")
    if a.json_out:
        with open(a.json_out, "w", encoding="utf-8") as f:
            json.dump({"benchmark": "dashboard", "reps": a.reps, "bar_ms": 50, "slowest_p99_ms": worst,
                       "pages": [{"page": p, "p50_ms": p50, "p99_ms": p99, "max_ms": mx} for p, p50, p99, mx in rows]},
                      f, indent=2)


if __name__ == "__main__":
    main()
