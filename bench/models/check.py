#!/usr/bin/env python3
"""Pre-flight checks of bench/models: `sluice serve` must predict right before it is timed.

With the request files of make_requests.py, and the standard library only:

* `GET /healthz` and `GET /readyz` are 200;
* `POST /v1/predict/<model>` with `{"entity": ...}` for --n real flights is 200 with the
  model, the serving version (--version), a finite score in [0, 1], `predicted` a boolean
  (when given), `inputs` naming every input of the model, and `missing_views` a list; and
  the same request with `{"values": <the inputs it answered>}` (no entity: no store read)
  gives the same score to 1e-12;
* the gate: for each flight of gate.jsonl (upcoming flights with a unique key), `POST
  /v1/predict/<model>` with `{"values": <its inputs from the prediction spine's training
  set>}` gives the score of its batch prediction, `GET /v1/predictions/<model>/<key>`, to
  1e-9, and that prediction was made by the serving version;
* `GET /v1/predictions/<model>/<unknown key>` is 404 with `{"error": "not_found", ...}`,
  and `POST /v1/predict/<model>` with an input the model does not have is a 4xx error.

Exits 1 with every problem listed, so that a server that predicts wrong is not timed.

Usage: python check.py --url http://127.0.0.1:PORT --model late --dir REQUESTS_DIR \\
           [--version N] [--n 20] [--token KEY]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

UNKNOWN_KEY = "NOSUCHFLIGHT-0"


class Client:
    def __init__(self, base: str, token: Optional[str] = None):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        """(status, parsed JSON or None, body text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, text = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        return status, doc, text


def is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", default="late")
    ap.add_argument("--dir", type=Path, required=True, help="make_requests.py's output directory")
    ap.add_argument("--version", type=int, help="the version that must serve")
    ap.add_argument("--n", type=int, default=20, help="entities checked online (default 20)")
    ap.add_argument("--token")
    ap.add_argument("--out", type=Path, help="what was checked, as JSON")
    args = ap.parse_args()

    c = Client(args.url, args.token)
    p: list[str] = []
    meta = json.loads((args.dir / "requests.json").read_text(encoding="utf-8"))
    inputs = set(meta["inputs"])
    model_q = urllib.parse.quote(args.model, safe="")
    predict = f"/v1/predict/{model_q}"

    for path in ("/healthz", "/readyz"):
        st, _, text = c.call("GET", path)
        if st != 200:
            p.append(f"GET {path}: {st} {text[:200]!r}")

    def check_answer(where: str, st: int, doc: Any, text: str) -> Optional[float]:
        if st != 200 or not isinstance(doc, dict):
            p.append(f"{where}: {st} {text[:300]!r}")
            return None
        if doc.get("model") != args.model:
            p.append(f"{where}: model {doc.get('model')!r}, expected {args.model!r}")
        if args.version is not None and doc.get("version") != args.version:
            p.append(f"{where}: version {doc.get('version')!r}, expected the serving version {args.version}")
        score = doc.get("score")
        if not is_num(score) or not 0.0 <= score <= 1.0:
            p.append(f"{where}: score {score!r} is not a probability")
            return None
        if "predicted" in doc and not isinstance(doc["predicted"], bool):
            p.append(f"{where}: predicted {doc['predicted']!r} is not a boolean")
        return float(score)

    # Online predictions of real entities, and the same inputs as raw values.
    bodies = [json.loads(line) for line in (args.dir / "entity.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()][: args.n]
    scores, missing_counts = [], 0
    for body in bodies:
        where = f"POST {predict} {json.dumps(body['entity'])}"
        st, doc, text = c.call("POST", predict, body)
        score = check_answer(where, st, doc, text)
        if score is None:
            continue
        got = doc.get("inputs")
        if not isinstance(got, dict) or set(got) != inputs:
            have = set(got) if isinstance(got, dict) else set()
            p.append(f"{where}: inputs lack {sorted(inputs - have)[:8]}, have extra {sorted(have - inputs)[:8]}")
            continue
        mv = doc.get("missing_views")
        if not isinstance(mv, list):
            p.append(f"{where}: missing_views {mv!r} is not a list")
        elif mv:
            missing_counts += 1
        scores.append(score)
        st2, doc2, text2 = c.call("POST", predict, {"values": got})
        again = check_answer(f"{where} as values", st2, doc2, text2)
        if again is not None and abs(again - score) > 1e-12:
            p.append(f"{where}: {score!r} from the entity, {again!r} from the same inputs as values")

    # The gate: online from the upcoming flight's inputs = its batch prediction.
    gate = [json.loads(line) for line in (args.dir / "gate.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    worst = 0.0
    for g in gate:
        key_q = urllib.parse.quote(g["key"], safe="")
        st, doc, text = c.call("GET", f"/v1/predictions/{model_q}/{key_q}")
        where = f"GET /v1/predictions/{args.model}/{g['key']}"
        if st != 200 or not isinstance(doc, dict) or not is_num(doc.get("score")):
            p.append(f"{where}: {st} {text[:300]!r}")
            continue
        batch = float(doc["score"])
        if args.version is not None and doc.get("model_version") != args.version:
            p.append(f"{where}: made by version {doc.get('model_version')!r}, the serving version is {args.version}")
        st, doc, text = c.call("POST", predict, {"values": g["values"]})
        online = check_answer(f"POST {predict} values of {g['key']}", st, doc, text)
        if online is None:
            continue
        worst = max(worst, abs(online - batch))
        if abs(online - batch) > 1e-9:
            p.append(f"{g['key']}: online score {online!r} from its inputs, batch prediction {batch!r} "
                     f"(difference {online - batch:+.3e})")

    st, doc, text = c.call("GET", f"/v1/predictions/{model_q}/{UNKNOWN_KEY}")
    if st != 404 or not isinstance(doc, dict) or doc.get("error") != "not_found":
        p.append(f"GET /v1/predictions/{args.model}/{UNKNOWN_KEY} (unknown): {st} {text[:200]!r}, expected 404 not_found")
    st, doc, text = c.call("POST", predict, {"values": {"no_such_input": 1}})
    if not 400 <= st < 500:
        p.append(f"POST {predict} with an unknown input: {st} {text[:200]!r}, expected a 4xx error")

    summary = {"entities": len(bodies), "scored": len(scores), "with_missing_views": missing_counts,
               "gate": len(gate), "gate_max_abs_diff": worst,
               "score_min": min(scores) if scores else None, "score_max": max(scores) if scores else None,
               "problems": p}
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if p:
        print(f"check.py: {len(p)} problem(s):", file=sys.stderr)
        for line in p[:40]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"check.py: ok: {len(scores)} online predictions in [{summary['score_min']:.4f}, {summary['score_max']:.4f}] "
          f"({missing_counts} with a view missing), each equal to the same inputs given as values; "
          f"{len(gate)} upcoming flights' online scores equal their batch predictions (largest difference "
          f"{worst:.1e})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
