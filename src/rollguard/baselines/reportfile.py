"""Reading a load-test report file: one place for "missing", "not JSON", "truncated"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rollguard import documents
from rollguard.errors import InputError
from rollguard.textfile import read_text


def read_json(path: str | Path, what: str) -> Any:
    """Parsed JSON, or an InputError with line and column (and "truncated" when it is)."""
    return documents.load_json(read_text(path, what), source=str(path), what=what)


def count(value: Any, source: str, where: str) -> int:
    """A counter from a report: a whole number, 0 or more; an InputError naming it otherwise.

    ``int()`` of Infinity raises OverflowError and of NaN ValueError: both are refused here.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    raise InputError(
        f"{source}: {where}: expected a count (a whole number, 0 or more), got {value!r}"
    )


def number(value: Any) -> float | None:
    """A finite number from a report field, else None (reports write null for "no data")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # json.loads accepts NaN and Infinity; neither is a measurement.
    return float(value) if math.isfinite(value) else None
