"""Reading a load-test report file: one place for "missing", "not JSON", "truncated"."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollguard import documents
from rollguard.errors import InputError
from rollguard.textfile import read_text

if TYPE_CHECKING:
    from rollguard.baselines.summary import LoadTestSummary

Reader = Callable[[str | Path], "LoadTestSummary"]


def guarded(tool: str) -> Callable[[Reader], Reader]:
    """A reader whose stray type errors are one InputError, never a traceback.

    Readers name the usual mistakes field by field; a value of the wrong type deeper
    down (a list where Artillery writes an object) still gets one located message.
    """

    def wrap(reader: Reader) -> Reader:
        @functools.wraps(reader)
        def read(path: str | Path) -> LoadTestSummary:
            try:
                return reader(path)
            except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
                raise InputError(
                    f"{path}: not a valid {tool} report: a field has an unexpected type "
                    f"({documents.excerpt(exc, 120)})"
                ) from None

        return read

    return wrap


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
