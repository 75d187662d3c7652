"""An HTTP server on loopback that answers every Kubernetes API request with one error.

Only for what the real control plane (``kube_cluster.py``) cannot be made to do on
demand: an API server failing with a 500 (``InternalError``) or 503. The body is a
``Status`` object as kube-apiserver writes it, so the client parses it as it would
a real failure. Everything else is tested on the real cluster.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FailingApi:
    """Where it listens, and the requests it refused (method, path)."""

    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def failing_api(code: int, message: str) -> Iterator[FailingApi]:
    """Serve ``code`` with a ``Status`` saying ``message`` to every request."""
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError" if code == 500 else "ServiceUnavailable",
            "code": code,
        }
    ).encode()
    api = FailingApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def _fail(self) -> None:
            api.requests.append((self.command, self.path))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _fail

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
