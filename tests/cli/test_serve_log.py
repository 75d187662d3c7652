"""`serve`'s log at its default level says what rollguard does, not one line per scrape."""

from __future__ import annotations

import functools
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from support import free_port, wait_until

METRICS = 'http_requests_total{code="200"} 100\nprocess_resident_memory_bytes 2e8\n'


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """The exporter's own access log is not what this test reads."""


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server with a Prometheus text file at /metrics."""
    root = tmp_path / "exporter"
    root.mkdir()
    (root / "metrics").write_text(METRICS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_scrapes_leave_no_line_in_the_log_by_default(
    exporter: str, tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "shop.yaml").write_text(
        "target: {deployment: shop}\n"
        f"metrics: {{provider: scrape, stable: '{exporter}', canary: '{exporter}',"
        " scrape_interval: 0.2s}\n"
        "analysis: {interval: 0.2s, no_data_limit: 100000}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/deployments/shop"

    def evaluations() -> int:
        try:
            return int(httpx.get(url, timeout=2).json().get("evaluations", 0))
        except (httpx.TransportError, ValueError):
            return 0

    with subprocess.Popen(
        [*rollguard_cmd, "serve", "--policies", str(policies), "--listen", f"127.0.0.1:{port}"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as served:
        try:
            wait_until(lambda: evaluations() >= 5, timeout=60, what="five evaluations of shop")
        finally:
            served.send_signal(signal.SIGTERM)
            out, err = served.communicate(timeout=30)
    log = out + err
    assert "HTTP Request" not in log, log[-3000:]
    assert "httpx" not in log
