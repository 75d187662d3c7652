"""Fixtures for the hostile-input suites: a scratch corpus, rollguard run in-process."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from hostile_runner import CORPUS, Ran, Rollguard


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the corpus: commands may write audit stores next to policies."""
    copy = tmp_path_factory.mktemp("hostile") / "corpus"
    shutil.copytree(CORPUS, copy)
    return copy


@pytest.fixture
def rollguard(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Rollguard:
    """``rollguard ARGS`` through the console script's entry point, in ``tmp_path``.

    In-process (fast); a traceback would surface as the exception itself, failing
    the test, instead of being hidden behind an exit code.
    """
    from rollguard.cli.main import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("GITHUB_ACTIONS", "")

    def invoke(*args: str) -> Ran:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["rollguard", *args])
        code = 0
        try:
            run()
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 1
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return invoke
