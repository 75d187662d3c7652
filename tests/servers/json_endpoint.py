"""A real HTTP server on loopback answering JSON statistics per version: the ``web`` target.

``GET /stats?version=V`` answers ``{"data": {"requests": N, "errors": E,
"latency_ms": {"p95": ..., "mean": ...}}}`` for what was recorded for ``V``
(``{"data": {}}`` for a version with nothing recorded). A request without the
bearer token gets 401; an unknown parameter gets 400 with a JSON message, as a
real service's validation would.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "web-endpoint-test-token-2718"
_KNOWN = {"version", "window", "start", "end"}


@dataclass
class Stats:
    """What the endpoint serves, per version label."""

    by_version: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, label: str, requests: int, errors: int, latencies_ms: list[float]) -> None:
        ordered = sorted(latencies_ms)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        with self.lock:
            self.by_version[label] = {
                "requests": requests,
                "errors": errors,
                "latency_ms": {"p95": p95, "mean": sum(ordered) / len(ordered)},
            }


def _handler(stats: Stats) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._answer(401, {"error": "unauthorized"})
                return
            parts = urlsplit(self.path)
            params = {key: values[0] for key, values in parse_qs(parts.query).items()}
            unknown = sorted(set(params) - _KNOWN)
            if parts.path != "/stats" or unknown:
                self._answer(400, {"error": f"unknown parameter(s): {', '.join(unknown)}"})
                return
            with stats.lock:
                found = stats.by_version.get(params.get("version", ""), {})
            self._answer(200, {"data": found})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running_json_endpoint() -> Iterator[tuple[str, Stats]]:
    """(base URL, the stats it serves) of a server running in a thread."""
    stats = Stats()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stats))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stats
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
