"""Where tests keep what a person should look at: screenshots, the backtest plot, a PDF.

``test-artifacts/`` at the top of the repository (git-ignored), or the folder
``$ROLLGUARD_ARTIFACTS`` names (a CI job uploads it). Files keep stable names,
so a run replaces the last one's pictures instead of piling them up.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "test-artifacts"


def artifacts_dir() -> Path:
    """The artifacts folder, created when missing."""
    configured = os.environ.get("ROLLGUARD_ARTIFACTS")
    folder = Path(configured).expanduser().resolve() if configured else DEFAULT
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_path(name: str) -> Path:
    """Where a test saves ``name`` (a screenshot, a plot) for humans to look at."""
    return artifacts_dir() / name
