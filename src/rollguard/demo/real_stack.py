"""The demo on real parts: HAProxy carries the traffic, Prometheus holds the metrics.

``rollguard demo --stack real`` uses this in place of the built-in router and
scraper when both binaries are installed (Debian: ``apt-get install haproxy
prometheus``); without them it stops with one clear message naming what is
missing. The stable and canary demo services run as usual; this module writes
a HAProxy config with both as servers of backend ``app`` (admin stats socket,
built-in Prometheus exporter on ``/metrics``) and a Prometheus config scraping
both services (target label ``version``) and HAProxy every second, starts
both on free loopback ports in a private directory, and gives the policy
sections that point rollguard at them: the ``prometheus`` provider and the
``haproxy`` executor, so the scenarios run unchanged on real parts.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from rollguard.errors import RollguardError

BACKEND = "app"
REQUIRED_BINARIES = ("haproxy", "prometheus")
START_TIMEOUT_SECONDS = 60.0


class RealStackError(RollguardError):
    """The real stack cannot run here (binary missing) or did not come up."""


def find_binaries() -> dict[str, str]:
    """Paths of haproxy and prometheus; a clear error naming any that is missing."""
    found = {name: shutil.which(name) for name in REQUIRED_BINARIES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise RealStackError(
            f"--stack real needs {' and '.join(missing)} on PATH "
            "(Debian: apt-get install haproxy prometheus); "
            "without them, run the embedded demo (--stack embedded)"
        )
    return {name: path for name, path in found.items() if path is not None}


def _hostport(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def haproxy_config(
    *, port: int, socket_path: Path, stable: str, canary: str, canary_percent: int
) -> str:
    """Backend ``app`` with servers ``stable`` and ``canary`` (``host:port``), weights in %."""
    return f"""global
    stats socket {socket_path} mode 600 level admin
    stats timeout 5s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend web
    bind 127.0.0.1:{port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    http-response set-header x-rollguard-upstream %s
    server stable {stable} weight {100 - canary_percent}
    server canary {canary} weight {canary_percent}
"""


def prometheus_config(*, stable: str, canary: str, haproxy: str) -> str:
    """Scrape both services (labelled by version) and HAProxy's exporter every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "demo",
                "static_configs": [
                    {"targets": [stable], "labels": {"version": "stable"}},
                    {"targets": [canary], "labels": {"version": "canary"}},
                ],
            },
            {"job_name": "haproxy", "static_configs": [{"targets": [haproxy]}]},
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


@dataclass
class RealStack:
    """HAProxy and Prometheus for one demo: ``launch()`` starts both, ``stop()`` ends both.

    ``stop()`` may come from another thread while ``launch()`` runs (the demo launches
    in a worker thread, which cancelling the demo cannot interrupt): it ends what has
    started, and ``launch()`` then starts nothing more and gives up.
    """

    directory: Path
    haproxy_port: int
    prometheus_port: int
    socket_path: Path
    binaries: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopping: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """Where demo traffic goes: HAProxy's front end."""
        return f"http://127.0.0.1:{self.haproxy_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def stopping(self) -> bool:
        return self._stopping

    def policy_sections(self) -> dict[str, Any]:
        """``metrics`` and ``target.executor`` for a demo policy on these parts."""
        return {
            "metrics": {
                "provider": "prometheus",
                "address": self.prometheus_url,
                "stable_selector": 'job="demo",version="stable"',
                "canary_selector": 'job="demo",version="canary"',
                "timeout": "2s",
                "retries": 1,
            },
            "executor": {"type": "haproxy", "socket": str(self.socket_path), "backend": BACKEND},
        }

    def launch(self) -> None:
        """Start HAProxy and Prometheus; return once both are ready.

        On any way out but success — an error, Ctrl-C, a ``stop()`` from another
        thread — every process started so far is stopped before it returns.
        """
        try:
            self._spawn(
                [self.binaries["haproxy"], "-f", str(self.directory / "haproxy.cfg"), "-db"],
                "haproxy",
            )
            self._spawn(
                [
                    self.binaries["prometheus"],
                    f"--config.file={self.directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.directory / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                    "--log.level=warn",
                ],
                "prometheus",
            )
            _wait(self, lambda: _haproxy_ready(self), "HAProxy's admin socket")
            _wait(
                self, lambda: _targets_up(self, 3), "Prometheus to scrape both services and HAProxy"
            )
        except BaseException:
            self.stop()
            raise

    def _spawn(self, argv: list[str], name: str) -> None:
        # Under the lock: a process is either refused or in the list stop() ends.
        with self._lock:
            if self._stopping:
                raise RealStackError(f"the real stack was stopped while starting ({name})")
            self.processes.append(_spawn(argv, self.directory, name))

    def stop(self) -> None:
        """End every process started so far; safe from any thread and more than once."""
        with self._lock:
            self._stopping = True
            processes = list(self.processes)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def prepare(*, stable_url: str, canary_url: str, canary_percent: int) -> RealStack:
    """Both configs in a private directory, nothing started yet: ``launch()`` does that.

    Callers that must be able to stop a launch half-way keep this stack first.
    """
    binaries = find_binaries()
    # A short private directory: a unix socket path must stay under ~108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="rollguard-real-"))
    stack = RealStack(directory, _free_port(), _free_port(), directory / "haproxy.sock", binaries)
    stable, canary = _hostport(stable_url), _hostport(canary_url)
    try:
        (directory / "haproxy.cfg").write_text(
            haproxy_config(
                port=stack.haproxy_port,
                socket_path=stack.socket_path,
                stable=stable,
                canary=canary,
                canary_percent=canary_percent,
            )
        )
        (directory / "prometheus.yml").write_text(
            prometheus_config(
                stable=stable, canary=canary, haproxy=f"127.0.0.1:{stack.haproxy_port}"
            )
        )
    except BaseException:
        stack.stop()
        raise
    return stack


def start(*, stable_url: str, canary_url: str, canary_percent: int) -> RealStack:
    """Start HAProxy and Prometheus for the two services; return once both are ready."""
    stack = prepare(stable_url=stable_url, canary_url=canary_url, canary_percent=canary_percent)
    stack.launch()
    return stack


def _spawn(argv: list[str], directory: Path, name: str) -> subprocess.Popen[bytes]:
    with (directory / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(  # noqa: S603 argv names the Debian binaries found on PATH
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _wait(stack: RealStack, ready: Any, what: str) -> None:
    """Poll ``ready`` until it holds; a process that died or a deadline is a clear error."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if stack.stopping:
            raise RealStackError(f"the real stack was stopped while waiting for {what}")
        for process in stack.processes:
            if process.poll() is not None:
                name = Path(str(process.args[0])).name  # type: ignore[index]
                try:
                    log = (stack.directory / f"{name}.log").read_text(errors="replace")[-500:]
                except OSError:  # stop() from another thread removed the directory
                    log = ""
                raise RealStackError(f"{name} exited with code {process.returncode}: {log}")
        if time.monotonic() > deadline:
            raise RealStackError(f"timed out after {START_TIMEOUT_SECONDS:g}s waiting for {what}")
        time.sleep(0.1)


def _haproxy_ready(stack: RealStack) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(stack.socket_path))
            sock.sendall(b"show info\n")
            return sock.recv(64).startswith(b"Name: HAProxy")
    except OSError:
        return False


def _targets_up(stack: RealStack, count: int) -> bool:
    try:
        answer = httpx.get(
            f"{stack.prometheus_url}/api/v1/query", params={"query": "up == 1"}, timeout=2
        )
        return len(answer.json()["data"]["result"]) >= count
    except (httpx.HTTPError, ValueError, KeyError):
        return False
