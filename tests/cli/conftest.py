"""Helpers for CLI tests: run ``rollguard`` as a real subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path) -> Run:
    """Run the CLI in ``tmp_path``; extra environment variables by keyword ``env``."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**cli_env, **(env or {})}
        return subprocess.run(
            [*rollguard_cmd, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    return run
