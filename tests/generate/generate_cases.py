"""Where the generator tests' policies and promtool unit tests live."""

from __future__ import annotations

from pathlib import Path

PROMTOOL_CASES = Path(__file__).resolve().parent / "promtool"
