"""A real HAProxy in front of a stable and a canary server, for tests, demos and benches.

``running_haproxy`` writes a config with one backend (``app``) holding the two
servers, an admin stats socket at an absolute path, and HAProxy's built-in
Prometheus exporter on ``/metrics``; it runs ``haproxy -db`` (foreground) on a
free loopback port and returns once the socket answers.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers.process import exited, start_on_free_port, terminate
from support import require_binary, wait_until

BACKEND = "app"


@dataclass
class HaproxyServer:
    """A running HAProxy: where to send traffic and where its admin socket is."""

    process: subprocess.Popen[bytes]
    port: int
    socket_path: Path
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        """One runtime API command, synchronously (for test set-up and oracles)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def count_answers(self, requests: int) -> Counter[str]:
        """Send ``requests`` GETs through HAProxy; count which version answered."""
        answered: Counter[str] = Counter()
        with httpx.Client(base_url=self.url, timeout=5) as client:
            for _ in range(requests):
                response = client.get("/")
                answered[
                    response.text.strip()
                    if response.status_code == 200
                    else str(response.status_code)
                ] += 1
        return answered

    def stop(self) -> None:
        terminate(self.process)


def write_config(
    path: Path, *, port: int, socket_path: Path, stable: str, canary: str, canary_weight: int
) -> None:
    """A config with the stable and canary servers in backend ``app``."""
    path.write_text(
        f"""global
    stats socket {socket_path} mode 600 level admin
    stats timeout 5s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend web
    bind 127.0.0.1:{port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    server stable {stable} weight {100 - canary_weight}
    server canary {canary} weight {canary_weight}
"""
    )


def _answers(server: HaproxyServer) -> bool:
    if server.process.poll() is not None:
        log = server.config_path.parent / "haproxy.log"
        raise exited("haproxy", server.process.returncode, log)
    try:
        return server.command("show info").startswith("Name: HAProxy")
    except OSError:
        return False


@contextmanager
def running_haproxy(
    directory: Path, *, stable: str, canary: str, canary_weight: int = 20
) -> Iterator[HaproxyServer]:
    """Start HAProxy balancing ``stable`` and ``canary`` (``host:port``) at the given split."""
    binary = require_binary("haproxy", hint="apt-get install haproxy")
    directory.mkdir(parents=True, exist_ok=True)
    # A unix socket path must stay under ~108 bytes; pytest's tmp paths can be longer.
    socket_dir = Path(tempfile.mkdtemp(prefix="rg-haproxy-"))
    socket_path = socket_dir / "admin.sock"
    config = directory / "haproxy.cfg"
    log_path = directory / "haproxy.log"

    def start(port: int) -> HaproxyServer:
        write_config(
            config,
            port=port,
            socket_path=socket_path,
            stable=stable,
            canary=canary,
            canary_weight=canary_weight,
        )
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [str(binary), "-f", str(config), "-db"], stdout=log, stderr=subprocess.STDOUT
            )
        return HaproxyServer(process, port, socket_path, config)

    def wait_ready(server: HaproxyServer) -> None:
        wait_until(lambda: _answers(server), timeout=20, what=f"HAProxy admin socket {socket_path}")

    try:
        server = start_on_free_port(start, wait_ready)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
