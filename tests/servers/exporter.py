"""A real HTTP exporter on loopback whose ``/metrics`` answers what a test sets.

``ExporterServer`` is a small threaded ``http.server``: it serves a
prometheus_client registry (rendered by the library, as a real service would,
in text or OpenMetrics format), or a raw body with any status and content
type, or answers slowly. It really listens on 127.0.0.1, so a scraper goes
through httpx, TCP and the parser exactly as in production.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client
from prometheus_client.openmetrics import exposition as openmetrics


@dataclass
class Reply:
    """What ``/metrics`` answers next."""

    registry: prometheus_client.CollectorRegistry | None = None
    openmetrics: bool = False
    body: str = ""
    status: int = 200
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    delay_seconds: float = 0.0


class ExporterServer:
    """A real HTTP server on loopback that the tests drive through ``reply``."""

    def __init__(self) -> None:
        self.reply = Reply()
        self.requests = 0
        self.accept_headers: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    reply = server.reply
                    server.requests += 1
                    server.accept_headers.append(self.headers.get("Accept", ""))
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                body, content_type = server.render(reply)
                data = body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: object) -> None:
                pass

        # Port 0: the kernel picks a free port while binding it, so no other test can take
        # it between choosing and binding (as with ``free_port()`` then bind).
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._httpd.server_address[1]
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def set(self, **fields: object) -> None:
        """Replace what the next scrapes get."""
        with self._lock:
            self.reply = Reply(**fields)  # type: ignore[arg-type]

    @staticmethod
    def render(reply: Reply) -> tuple[str, str]:
        if reply.registry is None:
            return reply.body, reply.content_type
        if reply.openmetrics:
            return (
                openmetrics.generate_latest(reply.registry).decode(),
                openmetrics.CONTENT_TYPE_LATEST,
            )
        return prometheus_client.generate_latest(reply.registry).decode(), reply.content_type

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe whether or not :meth:`start` ran."""
        if self._thread.is_alive():
            self._httpd.shutdown()  # waits for serve_forever, so it would hang if never started
        self._httpd.server_close()
        self._thread.join(timeout=5)
