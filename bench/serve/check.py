#!/usr/bin/env python3
"""Pre-flight checks of bench/serve: both servers must answer right before any is timed.

Against the rows of the view (``expected.jsonl`` of feast_repo.py: a sample of entities
with their 50 features and event time), with the standard library only:

* ``--sluice URL``: ``GET /healthz`` is 200 ``{"status":"ok"}``; ``GET /readyz`` is 200;
  ``GET /v1/features/<view>/<key>`` for every sampled entity is 200 with the view, the
  entity, the event time and exactly the 50 features of the row (numbers to 1e-9
  relative); an unknown key is 404 with a JSON ``{"error":"not_found", ...}``;
  ``POST /v1/features`` with the sampled keys and one unknown key answers each in order
  (the unknown one's view null); ``GET /openapi.json`` is an OpenAPI 3.1 document that has
  both lookup paths; ``GET /metrics`` is 200 text (promtool checks its format in run.sh).
* ``--feast URL``: ``POST /get-online-features`` for the sampled keys gives every feature
  PRESENT with the row's values (and its event time, to the second).

Exits 1 with every difference listed if anything is wrong, so that no server is timed
while it gives wrong answers.

Usage: python check.py --expected FILE --view V --entity E [--sluice URL] [--feast URL] [--token KEY]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

REL_TOL = 1e-9
UNKNOWN_KEY = "NOSUCHKEY0"


class Client:
    def __init__(self, base: str, token: Optional[str] = None):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, str, str]:
        """(status, content type, body text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def same(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, bool) or isinstance(got, bool):
        return want == got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        w, g = float(want), float(got)
        if math.isnan(w) or math.isnan(g):
            return math.isnan(w) and math.isnan(g)
        return w == g or abs(w - g) <= REL_TOL * max(abs(w), abs(g))
    return want == got


def epoch_s(v: Any) -> Optional[float]:
    """Seconds since the epoch of an ISO 8601 string or an epoch number (s, ms, µs, ns)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        x = float(v)
        for limit, div in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
            if abs(x) >= limit:
                return x / div
        return x
    if isinstance(v, str):
        s = v.strip().replace("Z", "+00:00")
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    return None


def diff_features(where: str, want: dict, got: Any, problems: list[str]) -> None:
    if not isinstance(got, dict):
        problems.append(f"{where}: features is {type(got).__name__}, not an object")
        return
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        problems.append(f"{where}: {len(missing)} feature(s) missing: {missing[:8]}")
    if extra:
        problems.append(f"{where}: {len(extra)} unexpected feature(s): {extra[:8]}")
    for name in sorted(set(want) & set(got)):
        if not same(want[name], got[name]):
            problems.append(f"{where}: {name} = {got[name]!r}, expected {want[name]!r}")


def check_time(where: str, want: Any, got: Any, problems: list[str], tol: float) -> None:
    w, g = epoch_s(want), epoch_s(got)
    if g is None:
        problems.append(f"{where}: event_timestamp {got!r} is not a time")
    elif w is not None and abs(w - g) > tol:
        problems.append(f"{where}: event_timestamp {got!r}, expected {want!r}")


def parse_json(where: str, text: str, problems: list[str]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        problems.append(f"{where}: not JSON ({e}): {text[:200]!r}")
        return None


def check_sluice(c: Client, rows: list[dict], view: str, entity: str) -> list[str]:
    p: list[str] = []
    st, _, body = c.call("GET", "/healthz")
    if st != 200 or (parse_json("/healthz", body, p) or {}).get("status") != "ok":
        p.append(f"GET /healthz: {st} {body[:200]!r}, expected 200 {{\"status\":\"ok\"}}")
    st, _, body = c.call("GET", "/readyz")
    if st != 200:
        p.append(f"GET /readyz: {st} {body[:200]!r}")

    for r in rows:
        key = r["entity"]
        path = f"/v1/features/{urllib.parse.quote(view, safe='')}/{urllib.parse.quote(str(key), safe='')}"
        st, ctype, body = c.call("GET", path)
        where = f"GET {path}"
        if st != 200:
            p.append(f"{where}: {st} {body[:300]!r}")
            continue
        if "json" not in ctype:
            p.append(f"{where}: Content-Type {ctype!r}, not JSON")
        doc = parse_json(where, body, p)
        if not isinstance(doc, dict):
            continue
        if doc.get("view") != view:
            p.append(f"{where}: view {doc.get('view')!r}, expected {view!r}")
        if doc.get("entity") != {entity: key}:
            p.append(f"{where}: entity {doc.get('entity')!r}, expected {({entity: key})!r}")
        if "version" not in doc:
            p.append(f"{where}: no version")
        check_time(where, r["event_timestamp"], doc.get("event_timestamp"), p, 1e-6)
        diff_features(where, r["features"], doc.get("features"), p)

    path = f"/v1/features/{urllib.parse.quote(view, safe='')}/{UNKNOWN_KEY}"
    st, _, body = c.call("GET", path)
    doc = parse_json(f"GET {path}", body, p) if st == 404 else None
    if st != 404 or not isinstance(doc, dict) or doc.get("error") != "not_found":
        p.append(f"GET {path} (an unknown entity): {st} {body[:200]!r}, expected 404 {{\"error\":\"not_found\",...}}")

    keys = [r["entity"] for r in rows] + [UNKNOWN_KEY]
    req = {"features": [view], "entities": [{entity: k} for k in keys]}
    st, _, body = c.call("POST", "/v1/features", req)
    where = f"POST /v1/features ({len(keys)} entities)"
    if st != 200:
        p.append(f"{where}: {st} {body[:300]!r}")
    else:
        doc = parse_json(where, body, p)
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list) or len(results) != len(keys):
            p.append(f"{where}: results is not a list of {len(keys)}: {body[:300]!r}")
        else:
            for i, (k, res) in enumerate(zip(keys, results)):
                w = f"{where} result {i} ({k})"
                if not isinstance(res, dict) or res.get("entity") != {entity: k}:
                    p.append(f"{w}: entity {res.get('entity') if isinstance(res, dict) else res!r}")
                    continue
                got = (res.get("views") or {}).get(view, "absent")
                if k == UNKNOWN_KEY:
                    if got is not None:
                        p.append(f"{w}: an unknown entity's view is {got!r}, expected null")
                    continue
                if not isinstance(got, dict):
                    p.append(f"{w}: view {view} is {got!r}")
                    continue
                check_time(w, rows[i]["event_timestamp"], got.get("event_timestamp"), p, 1e-6)
                if "version" not in got:
                    p.append(f"{w}: no version")
                diff_features(w, rows[i]["features"], got.get("features"), p)

    st, _, body = c.call("GET", "/openapi.json")
    if st != 200:
        p.append(f"GET /openapi.json: {st}")
    else:
        doc = parse_json("GET /openapi.json", body, p)
        if isinstance(doc, dict):
            if not str(doc.get("openapi", "")).startswith("3.1"):
                p.append(f"GET /openapi.json: openapi is {doc.get('openapi')!r}, not 3.1.x")
            paths = doc.get("paths") or {}
            if "/v1/features" not in paths or not any(x.startswith("/v1/features/{") for x in paths):
                p.append(f"GET /openapi.json: paths lack the lookups: {sorted(paths)[:20]}")
    st, ctype, body = c.call("GET", "/metrics")
    if st != 200 or not body.strip():
        p.append(f"GET /metrics: {st}, {len(body)} bytes")
    return p


def check_feast(c: Client, rows: list[dict], view: str, entity: str) -> list[str]:
    p: list[str] = []
    names = list(rows[0]["features"])
    req = {"features": [f"{view}:{n}" for n in names], "entities": {entity: [r["entity"] for r in rows]}}
    st, _, body = c.call("POST", "/get-online-features", req)
    where = f"feast POST /get-online-features ({len(rows)} entities)"
    if st != 200:
        return [f"{where}: {st} {body[:300]!r}"]
    doc = parse_json(where, body, p)
    if not isinstance(doc, dict):
        return p
    cols = (doc.get("metadata") or {}).get("feature_names") or []
    results = doc.get("results") or []
    if len(cols) != len(results):
        return [f"{where}: {len(cols)} names, {len(results)} columns"]
    by = dict(zip(cols, results))
    for n in names:
        col = by.get(n)
        if col is None:
            p.append(f"{where}: no feature {n}")
            continue
        for i, r in enumerate(rows):
            w = f"{where} {r['entity']}.{n}"
            if col["statuses"][i] != "PRESENT":
                p.append(f"{w}: status {col['statuses'][i]}")
            elif not same(r["features"][n], col["values"][i]):
                p.append(f"{w} = {col['values'][i]!r}, expected {r['features'][n]!r}")
            if n == names[0]:
                check_time(w, r["event_timestamp"], col["event_timestamps"][i], p, 1.0)
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--expected", type=Path, required=True)
    ap.add_argument("--view", required=True)
    ap.add_argument("--entity", required=True)
    ap.add_argument("--sluice")
    ap.add_argument("--feast")
    ap.add_argument("--token")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.expected.read_text(encoding="utf-8").splitlines() if line.strip()]
    status = 0
    for name, url, fn in (("sluice", args.sluice, check_sluice), ("feast", args.feast, check_feast)):
        if not url:
            continue
        token = args.token if name == "sluice" else None
        problems = fn(Client(url, token), rows, args.view, args.entity)
        if problems:
            status = 1
            print(f"check: {name} at {url}: {len(problems)} problem(s):", file=sys.stderr)
            for line in problems[:40]:
                print(f"  {line}", file=sys.stderr)
            if len(problems) > 40:
                print(f"  ... and {len(problems) - 40} more", file=sys.stderr)
        else:
            print(f"check: {name}: {len(rows)} entities x {len(rows[0]['features'])} features as expected", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
