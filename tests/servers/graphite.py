"""A private Graphite (Debian's ``graphite-carbon`` and ``graphite-web``) on loopback.

carbon-cache runs in the foreground with its config, whisper files and logs
under the test's temp dir (one-second retention) and its line receiver and
cache-query port on free loopback ports. graphite-web is Debian's Django app,
run by Django's own server under Debian's Python with a settings module written
here (``GRAPHITE_SETTINGS_MODULE``): it reads those whisper files and asks
carbon-cache for points not yet written (``CARBONLINK_HOSTS``).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers.process import exited, start_on_free_port
from support import free_port, require_binary, wait_until

#: graphite-web is Debian's Python package, run by Debian's Python (not the venv's).
SYSTEM_PYTHON = "/usr/bin/python3"
GRAPHITE_WEB = Path("/usr/lib/python3/dist-packages/graphite")

_CARBON = """[cache]
STORAGE_DIR = {dir}/storage/
LOCAL_DATA_DIR = {dir}/storage/whisper/
CONF_DIR = {dir}/conf/
LOG_DIR = {dir}/storage/log/
PID_DIR = {dir}/storage/
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 1000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {cache}
"""
_SCHEMAS = "[default]\npattern = .*\nretentions = 1s:1h\n"
_SETTINGS = """SECRET_KEY = "rollguard-tests-only"
GRAPHITE_ROOT = "/usr/share/graphite-web"
STATIC_ROOT = "/usr/share/graphite-web/static"
CONF_DIR = "{dir}/conf"
STORAGE_DIR = "{dir}/storage"
WHISPER_DIR = "{dir}/storage/whisper"
STANDARD_DIRS = ["{dir}/storage/whisper"]
LOG_DIR = "{dir}/storage/weblog"
INDEX_FILE = "{dir}/storage/index"
CARBONLINK_HOSTS = ["127.0.0.1:{cache}"]
DATABASES = {{"default": {{"NAME": "{dir}/storage/graphite.db",
                          "ENGINE": "django.db.backends.sqlite3"}}}}
"""


@dataclass
class GraphiteServer:
    """carbon-cache and graphite-web; ``url`` is graphite-web's."""

    carbon: subprocess.Popen[bytes]
    web: subprocess.Popen[bytes]
    port: int
    line_port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def version(self) -> str:
        return httpx.get(f"{self.url}/version", timeout=5).text.strip()

    def send(self, points: list[tuple[str, float, int]]) -> None:
        """Send (path, value, timestamp) points over carbon's plaintext protocol."""
        lines = "".join(f"{path} {value} {stamp}\n" for path, value, stamp in points)
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=5) as sock:
            sock.sendall(lines.encode())

    def points(self, path: str, start: int, end: int) -> list[float]:
        """The non-null values graphite-web serves for ``path`` (for waits)."""
        response = httpx.get(
            f"{self.url}/render",
            params={"target": path, "from": start, "until": end, "format": "json", "noCache": 1},
            timeout=10,
        )
        series = response.json()
        return [v for s in series for v, _ in s["datapoints"] if v is not None]

    def stop(self) -> None:
        for process in (self.web, self.carbon):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def _answering(server: GraphiteServer) -> bool:
    for name, process in (("carbon-cache", server.carbon), ("graphite-web", server.web)):
        if process.poll() is not None:
            raise exited(name, process.returncode, server.directory / f"{name}.log")
    try:
        return httpx.get(f"{server.url}/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _carbon_listening(server: GraphiteServer) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.line_port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def running_graphite(directory: Path) -> Iterator[GraphiteServer]:
    """Start carbon-cache and graphite-web on loopback; stop both on exit."""
    carbon_binary = require_binary("carbon-cache", hint="apt-get install graphite-carbon")
    if not GRAPHITE_WEB.is_dir():
        require_binary("graphite-web-is-not-installed", hint="apt-get install graphite-web")
    for folder in ("conf", "storage/whisper", "storage/weblog", "storage/log", "web"):
        (directory / folder).mkdir(parents=True, exist_ok=True)

    def start(port: int) -> GraphiteServer:
        line, cache = free_port(), free_port()
        (directory / "conf" / "carbon.conf").write_text(
            _CARBON.format(dir=directory, line=line, pickle=free_port(), cache=cache)
        )
        (directory / "conf" / "storage-schemas.conf").write_text(_SCHEMAS)
        (directory / "web" / "rollguard_graphite_settings.py").write_text(
            _SETTINGS.format(dir=directory, cache=cache)
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(directory / "web"),
            "GRAPHITE_SETTINGS_MODULE": "rollguard_graphite_settings",
            "DJANGO_SETTINGS_MODULE": "graphite.settings",
        }
        env.pop("VIRTUAL_ENV", None)
        with (directory / "carbon-cache.log").open("wb") as log:
            carbon = subprocess.Popen(
                [
                    SYSTEM_PYTHON,
                    str(carbon_binary),
                    f"--config={directory / 'conf' / 'carbon.conf'}",
                    "--nodaemon",
                    "start",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        with (directory / "graphite-web.log").open("wb") as log:
            web = subprocess.Popen(
                [SYSTEM_PYTHON, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=directory,
            )
        return GraphiteServer(carbon, web, port, line, directory)

    def wait_ready(server: GraphiteServer) -> None:
        wait_until(lambda: _answering(server), timeout=60, interval=0.1, what="graphite-web")
        wait_until(lambda: _carbon_listening(server), timeout=60, interval=0.1, what="carbon")

    server = start_on_free_port(start, wait_ready)
    try:
        yield server
    finally:
        server.stop()
