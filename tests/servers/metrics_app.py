"""A small service instrumented with prometheus_client, served on loopback in a thread.

It stands in for "the deployment" when the demo service is not needed: each
request to ``/serve`` answers with the status code asked for after the delay
asked for, and counts itself in ``http_requests_total`` and
``http_request_duration_seconds`` under the ``deployment`` and ``version``
labels given, so tests know exactly what was served.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from servers.loopback import serving

CODES = ("200", "401", "403", "500", "503")


@dataclass
class MetricsApp:
    """The registry and the instruments; ``served`` counts what was answered."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    served: dict[tuple[str, str, str], int] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        labels = ("deployment", "version")
        self.requests = Counter(
            "http_requests_total", "Requests.", (*labels, "code"), registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds", "Latency.", labels, registry=self.registry
        )
        self.connections = Gauge(
            "http_active_connections", "Open connections.", labels, registry=self.registry
        )
        ProcessCollector(registry=self.registry)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def declare(self, deployment: str, version: str) -> None:
        """Create every series at zero, as a service does at start-up."""
        for code in CODES:
            self.requests.labels(deployment, version, code)
        self.duration.labels(deployment, version)
        self.connections.labels(deployment, version)

    def record(self, deployment: str, version: str, code: str, seconds: float) -> None:
        with self._lock:
            self.requests.labels(deployment, version, code).inc()
            self.duration.labels(deployment, version).observe(seconds)
            key = (deployment, version, code)
            self.served[key] = self.served.get(key, 0) + 1


def _handler(app: MetricsApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/metrics":
                self._answer(200, generate_latest(app.registry), "text/plain; version=0.0.4")
                return
            if url.path != "/serve":
                self._answer(404, b"not found\n", "text/plain")
                return
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            started = time.perf_counter()
            time.sleep(float(params.get("delay", "0")))
            code = params.get("code", "200")
            app.record(
                params.get("deployment", "app"),
                params.get("version", "stable"),
                code,
                time.perf_counter() - started,
            )
            self._answer(int(code), f"{params.get('version', 'stable')}\n".encode(), "text/plain")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def running_metrics_app() -> Iterator[MetricsApp]:
    """Serve a fresh :class:`MetricsApp` on a free loopback port until the block ends."""
    app = MetricsApp()
    with serving(_handler(app)) as app.port:
        yield app
