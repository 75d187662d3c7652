"""A private InfluxDB 1.x (Debian's ``influxdb``) on loopback, with authentication on.

The config puts every directory under the test's temp dir and both listeners
(HTTP and the RPC bind address) on free loopback ports; reporting and the
``_internal`` monitor are off. The first user is created over the API (InfluxDB
allows that while no user exists), then a database; writes use the line protocol.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers.process import exited, start_on_free_port
from support import free_port, require_binary, wait_until

USER = "rollguard"
PASSWORD = "influx-test-password-4711"
DATABASE = "app"

_CONFIG = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = true
  log-enabled = false
"""


@dataclass
class InfluxDBServer:
    """A running influxd; ``url`` is its HTTP API."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def version(self) -> str:
        return httpx.get(f"{self.url}/ping", timeout=5).headers.get("X-Influxdb-Version", "?")

    def write(self, lines: str) -> None:
        """Write line-protocol points (timestamps in seconds) into the test database."""
        response = httpx.post(
            f"{self.url}/write",
            params={"db": DATABASE, "precision": "s"},
            content=lines.encode(),
            auth=(USER, PASSWORD),
            timeout=10,
        )
        assert response.status_code == 204, response.text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _ping(server: InfluxDBServer) -> bool:
    if server.process.poll() is not None:
        raise exited("influxd", server.process.returncode, server.directory / "influxd.log")
    try:
        return httpx.get(f"{server.url}/ping", timeout=2).status_code == 204
    except httpx.HTTPError:
        return False


def _query(server: InfluxDBServer, statement: str, *, auth: bool = True) -> None:
    response = httpx.post(
        f"{server.url}/query",
        data={"q": statement},
        auth=(USER, PASSWORD) if auth else None,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "error" not in response.text, response.text


@contextmanager
def running_influxdb(directory: Path) -> Iterator[InfluxDBServer]:
    """Start influxd with a user and a database; stop it on exit."""
    binary = require_binary("influxd", hint="apt-get install influxdb")
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "influxd.log"

    def start(port: int) -> InfluxDBServer:
        config = directory / "influxdb.conf"
        config.write_text(_CONFIG.format(dir=directory, port=port, rpc=free_port()))
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(binary), "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        return InfluxDBServer(process, port, directory)

    def wait_ready(server: InfluxDBServer) -> None:
        wait_until(lambda: _ping(server), timeout=60, interval=0.1, what="influxd to answer /ping")

    server = start_on_free_port(start, wait_ready)
    try:
        _query(
            server, f"CREATE USER {USER} WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES", auth=False
        )
        _query(server, f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        server.stop()
