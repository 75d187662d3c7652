"""Suite-wide fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the checkout, or two levels up from a worktree (/work/wt/<name>).
SHARED = next(
    (base / "shared" for base in (ROOT.parent, ROOT.parent.parent) if (base / "shared").is_dir()),
    ROOT.parent / "shared",
)


@pytest.fixture
def rollguard_cmd() -> list[str]:
    """The CLI as a subprocess command, importing this tree's sources."""
    return [sys.executable, "-m", "rollguard"]


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: this tree's ``src`` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def fixtures_dir() -> Path:
    """The real tools' output files in ../shared/fixtures (see each SOURCES.md)."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"{path} is not present")
    return path
