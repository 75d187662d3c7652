"""Helpers for CLI tests: run ``rollguard`` as a real subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support import Run


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


class Invoked:
    """What an in-process CLI run produced, shaped like a finished subprocess."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


Invoke = Callable[..., Invoked]


@pytest.fixture
def invoke_cli() -> Invoke:
    """Run the CLI in this process (fast); RollguardError maps to its exit code as in run()."""
    from typer.testing import CliRunner

    from rollguard.cli.main import app
    from rollguard.errors import RollguardError

    def invoke(*args: str, env: dict[str, str] | None = None) -> Invoked:
        full_env = {"NO_COLOR": "1", "COLUMNS": "200", "GITHUB_ACTIONS": "", **(env or {})}
        result = CliRunner().invoke(app, list(args), env=full_env)
        if isinstance(result.exception, RollguardError):
            return Invoked(int(result.exception.exit_code), result.stdout, str(result.exception))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Invoked(result.exit_code, result.stdout, result.stderr)

    return invoke
