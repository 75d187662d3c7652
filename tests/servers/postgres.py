"""A private PostgreSQL server on loopback, started with ``initdb`` and ``pg_ctl``.

PostgreSQL refuses to run as root, so under root the data directory is handed
to ``nobody`` and the server runs as that user through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import free_port, require_binary

PG_BIN = "/usr/lib/postgresql/15/bin"
HINT = "Debian package postgresql"


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and how to reach it."""

    port: int
    socket_dir: Path
    data_dir: Path
    bin_dir: Path
    options: str = ""

    def stop(self) -> None:
        """Stop the server (for outage tests); :meth:`start` brings it back on the same port."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start the stopped server again and wait until it accepts connections."""
        self._pg_ctl("-o", self.options, "-l", str(self.data_dir.parent / "log"), "-w", "start")

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        subprocess.run(
            _as_server_user(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True
        )

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for psycopg 3 over TCP on loopback."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, name: str) -> str:
        """Create an empty schema and return a URL whose search_path starts there.

        Much faster than a database per test (no template copy), and as isolated
        for tables, triggers and functions.
        """
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "nobody", "--", *command]


@contextlib.contextmanager
def running_postgres(*, fsync: bool = False) -> Iterator[PostgresServer]:
    """Start PostgreSQL in a fresh temp directory; stop it and remove the directory after.

    Tests run with ``fsync=off`` for speed; benchmarks pass ``fsync=True``.
    """
    initdb = require_binary("initdb", hint=HINT, extra_paths=(PG_BIN,))
    pg_ctl = initdb.parent / "pg_ctl"
    base = Path(tempfile.mkdtemp(prefix="rollguard-pg-"))
    data_dir, socket_dir = base / "data", base / "sock"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in (base, socket_dir):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    port = free_port()
    try:
        subprocess.run(
            _as_server_user(
                [str(initdb), "-D", str(data_dir), "-A", "trust", "-U", "postgres", "--no-sync"]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=True,
        )
        options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1"
        if not fsync:
            options += " -c fsync=off"
        start = [str(pg_ctl), "-D", str(data_dir), "-o", options, "-l", str(base / "log")]
        subprocess.run(
            _as_server_user([*start, "-w", "start"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=True,
        )
        yield PostgresServer(port, socket_dir, data_dir, initdb.parent, options)
    finally:
        # Also after a failed or timed-out start, which can leave a postmaster running.
        if (data_dir / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user(
                    [str(pg_ctl), "-D", str(data_dir), "-m", "immediate", "-w", "stop"]
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL per test session; tests take a fresh database each."""
    with running_postgres() as server:
        yield server
