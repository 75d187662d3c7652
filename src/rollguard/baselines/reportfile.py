"""Reading a load-test report file: one place for "missing", "not JSON", "truncated"."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rollguard.errors import InputError
from rollguard.textfile import read_text


def read_json(path: str | Path, what: str) -> Any:
    """Parsed JSON, or an InputError with line and column (and "truncated" when it is)."""
    raw = read_text(path, what)
    if not raw.strip():
        raise InputError(f"{path}: the {what} is empty")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        ran_out = exc.pos >= len(raw.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (the file looks truncated)" if ran_out else ""
        raise InputError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}{hint}"
        ) from None


def number(value: Any) -> float | None:
    """A finite number from a report field, else None (reports write null for "no data")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # json.loads accepts NaN and Infinity; neither is a measurement.
    return float(value) if math.isfinite(value) else None
