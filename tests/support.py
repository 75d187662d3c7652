"""Helpers shared by the tests: waiting on conditions, finding binaries, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")

# What the ``run_cli`` fixture returns: run the CLI, get its completed process.
Run = Callable[..., subprocess.CompletedProcess[str]]

IN_CI = os.environ.get("CI", "").lower() == "true"


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def require_binary(name: str, *, hint: str, extra_paths: tuple[str, ...] = ()) -> Path:
    """The path of a server binary; skip without it locally, fail without it under CI=true."""
    found = shutil.which(name)
    if found is None:
        for directory in extra_paths:
            candidate = Path(directory) / name
            if candidate.exists():
                found = str(candidate)
                break
    if found is None:
        unavailable(f"{name} is not installed ({hint})")
    return Path(found)


def unavailable(message: str) -> NoReturn:
    """Skip for a missing real server locally; fail under CI=true, where .ci/run provides it."""
    if IN_CI:
        pytest.fail(f"{message}; CI must install it in .ci/run")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_running(pid: int) -> bool:
    """Alive and not a zombie (a zombie keeps its /proc entry until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
