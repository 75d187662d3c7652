"""``rollguard serve`` as a real subprocess on a free loopback port, for the tests that need
the command itself (its option parsing, its listener, a SIGKILL)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
from serve_harness import TOKEN

from rollguard.server.auth import TOKEN_ENV
from support import free_port, wait_until


@contextlib.contextmanager
def serve_process(
    folder: Path,
    command: list[str],
    env: dict[str, str],
    *options: str,
    ready_within: float = 30.0,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``rollguard serve --policies FOLDER OPTIONS...`` and wait until it is ready.

    Yields the process (stderr piped, read it after ``stop``) and its URL; kills it at the end.
    """
    port = free_port()
    process = subprocess.Popen(
        [
            *command,
            "serve",
            *("--policies", str(folder), "--listen", f"127.0.0.1:{port}"),
            *("--log-level", "warning", *options),
        ],
        env={**env, TOKEN_ENV: TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(url), timeout=ready_within, what="rollguard serve to be ready")
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM ``process``; what it wrote to stderr."""
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    return stderr


def ready(url: str) -> bool:
    """``/readyz`` answers 200 (False while the server is not up)."""
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
