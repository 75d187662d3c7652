"""Helpers for CLI tests: run ``rollguard`` in this process (``run_cli``, a real
subprocess, is suite-wide in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


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
