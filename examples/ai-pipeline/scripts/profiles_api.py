#!/usr/bin/env python3
"""A small user-profile API: data/profiles.json, served page by page.

Usage:
    python3 scripts/profiles_api.py [HOST:PORT | PORT]    # default 127.0.0.1:8765
    PROFILES_LISTEN=127.0.0.1:9000 python3 scripts/profiles_api.py

    GET /profiles?page=1&per_page=100
    -> {"data": [...100 profiles...], "page": 1, "per_page": 100, "total": 1000}

Pages count from 1; `per_page` defaults to 100 and is at most 500. A page past
the end has an empty `data`. This is the "page" paging style of sluice's HTTP
sources: sluice asks for page 1, 2, ... and stops at a page shorter than
`per_page`, or once it has read `total` records.

Each answer carries an ETag (a hash of its body) and answers 304 Not Modified
to a request whose If-None-Match names it, as real APIs do: sluice stores the
ETag of every page it fetched, so a run against an unchanged file downloads
nothing and rebuilds nothing. The file is read again on every request; edit it
and the next run sees the change.

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

PROFILES = Path(__file__).resolve().parent.parent / "data" / "profiles.json"
DEFAULT_LISTEN = "127.0.0.1:8765"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        url = urlparse(self.path)
        if url.path == "/healthz":
            return self.answer(200, {"ok": True})
        if url.path != "/profiles":
            return self.answer(404, {"error": "not_found", "message": f"no route {url.path}"})
        query = parse_qs(url.query)
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", ["100"])[0])
        except ValueError:
            return self.answer(400, {"error": "bad_request", "message": "page and per_page are integers"})
        if page < 1 or not 1 <= per_page <= 500:
            return self.answer(400, {"error": "bad_request", "message": "page >= 1, 1 <= per_page <= 500"})
        profiles = json.loads(PROFILES.read_text())
        data = profiles[(page - 1) * per_page: page * per_page]
        self.answer(200, {"data": data, "page": page, "per_page": per_page, "total": len(profiles)})

    def answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 200:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write(f"profiles_api: {self.address_string()} {fmt % args}\n")


def main() -> None:
    listen = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PROFILES_LISTEN", DEFAULT_LISTEN)
    host, _, port = listen.rpartition(":")
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    print(f"profiles_api: serving {PROFILES.name} on http://{host or '127.0.0.1'}:{port}/profiles",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
