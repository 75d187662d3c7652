"""Parse the human forms a policy may use: ``5%``, ``5 minutes``, ``50MB
increase from baseline``, ``0 tolerance``, ``5 per minute``.

Each parser accepts the plain form too (a bare number) and raises ``ValueError``
with what was expected, which pydantic turns into a located policy problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_DURATION = "expected a duration such as '5m' or '5 minutes'"
_COUNT = "expected a count such as '0 tolerance' or '10 maximum'"


def _schema_pattern(grammar: re.Pattern[str]) -> str:
    """A parser's grammar as a schema pattern: any case, blanks around, never negative
    (each of these parsers refuses a negative number)."""
    return r"(?i)^\s*" + grammar.pattern[1:-1].replace("-?", "") + r"\s*$"


#: What :func:`parse_duration` reads from a string, as a schema pattern (RE2 and Python):
#: a bare number, or one or more number-unit parts. Keeps the Kubernetes schema of a
#: ``RollbackPolicy`` (:mod:`rollguard.operator.schema`) refusing what the parser refuses.
DURATION_PATTERN = (
    r"(?i)^\s*(\d+(\.\d+)?|(\d+(\.\d+)?\s*("
    + "|".join(sorted(_DURATION_UNITS, key=len, reverse=True))
    + r")\s*)+)$"
)


def parse_duration(raw: object) -> float:
    """Seconds from ``5 minutes``, ``5m``, ``1h30m``, ``90s`` or a bare number of seconds."""
    if isinstance(raw, bool):
        raise ValueError(f"{_DURATION}, got {_shown(raw)}")
    if isinstance(raw, int | float):
        seconds = _as_float(raw)
    elif isinstance(raw, str):
        text = raw.strip().lower()
        if re.fullmatch(_NUMBER, text):
            seconds = float(text)
        else:
            seconds = 0.0
            position = 0
            for match in _DURATION_PART.finditer(text):
                if text[position : match.start()].strip():
                    break
                unit = _DURATION_UNITS.get(match.group(2))
                if unit is None:
                    raise ValueError(
                        f"unknown time unit {match.group(2)!r} in {raw!r} "
                        "(use ms, s, m, h, d or seconds, minutes, hours, days)"
                    )
                seconds += float(match.group(1)) * unit
                position = match.end()
            if position != len(text) or position == 0:
                raise ValueError(f"{_DURATION}, got {_shown(raw)}")
    else:
        raise ValueError(f"{_DURATION}, got {_shown(raw)}")
    if not seconds > 0 or math.isinf(seconds):  # NaN fails the first test
        raise ValueError(f"a duration must be positive and finite, got {_shown(raw)}")
    return seconds


def _as_float(raw: int | float) -> float:
    """``float(raw)``, with an integer past float's range as infinity (not OverflowError)."""
    try:
        return float(raw)
    except OverflowError:
        return math.inf if raw > 0 else -math.inf


def _shown(raw: object) -> str:
    """``raw`` for a message, cut short: a 400-digit number is not worth echoing."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


class Comparison(StrEnum):
    """How a threshold is compared with the measured value."""

    ABOVE = "above"  # value > threshold
    INCREASE_PERCENT = "increase_percent"  # value > reference * (1 + threshold / 100)
    INCREASE = "increase"  # value > reference + threshold (same unit as the value)


@dataclass(frozen=True)
class ParsedThreshold:
    """A threshold as written: its number, its unit, and its comparison."""

    value: float
    comparison: Comparison
    unit: str  # "%", "ms", "MB", "" (a count or rate)
    reference: str | None  # "baseline" or "stable" for relative thresholds


_SIZE_UNITS = {"b": 1 / 1_048_576, "kb": 1 / 1024, "mb": 1.0, "gb": 1024.0}
_TIME_UNITS = {"ms": 1.0, "s": 1000.0}
_THRESHOLD = re.compile(
    rf"^{_NUMBER}\s*(%|ms|s|b|kb|mb|gb|mib|gib)?"
    r"(?:\s+(increase|more|higher|above)\s*(?:(?:from|over|than)\s+(?:the\s+)?(baseline|stable))?)?$"
)


#: The string forms :func:`parse_threshold` reads, as a schema pattern.
THRESHOLD_PATTERN = _schema_pattern(_THRESHOLD)


def parse_threshold(raw: object) -> ParsedThreshold:
    """``5%`` → above 5 %, ``30% increase from baseline`` → +30 % over the baseline,
    ``50MB increase from baseline`` → +50 MB, ``500ms`` → above 500 ms, ``7`` → above 7."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(
            f"expected a threshold such as '5%' or '30% increase from baseline', got {_shown(raw)}"
        )
    if isinstance(raw, int | float):
        value = _as_float(raw)
        if not math.isfinite(value):
            raise ValueError(f"a threshold must be a finite number, got {_shown(raw)}")
        if value < 0:
            raise ValueError(f"a threshold must not be negative, got {_shown(raw)}")
        return ParsedThreshold(value, Comparison.ABOVE, "", None)
    text = raw.strip().lower().replace("mib", "mb").replace("gib", "gb")
    match = _THRESHOLD.match(text)
    if match is None:
        raise ValueError(
            f"cannot read threshold {raw!r}: expected e.g. '5%', '500ms', "
            "'30% increase from baseline' or '50MB increase from baseline'"
        )
    number, unit, relation, reference = match.groups()
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"a threshold must be a finite number, got {_shown(raw)}")
    if value < 0:
        raise ValueError(f"a threshold must not be negative, got {_shown(raw)}")
    unit = unit or ""
    if unit in _SIZE_UNITS:
        value *= _SIZE_UNITS[unit]
        unit = "MB"
    elif unit in _TIME_UNITS:
        value *= _TIME_UNITS[unit]
        unit = "ms"
    if relation is None:
        return ParsedThreshold(value, Comparison.ABOVE, unit, None)
    comparison = Comparison.INCREASE_PERCENT if unit == "%" else Comparison.INCREASE
    return ParsedThreshold(value, comparison, unit, reference or "baseline")


_LIMIT = re.compile(rf"^{_NUMBER}\s*(tolerance|maximum|max)?$")


#: The string forms :func:`parse_limit` reads, as a schema pattern.
LIMIT_PATTERN = _schema_pattern(_LIMIT)


def parse_limit(raw: object) -> int:
    """``0 tolerance`` → 0, ``10 maximum`` → 10, ``3`` → 3: the most allowed."""
    if isinstance(raw, bool):
        raise ValueError(f"{_COUNT}, got {_shown(raw)}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and (match := _LIMIT.match(raw.strip().lower())):
        number = float(match.group(1))
        if not number.is_integer():
            raise ValueError(f"expected a whole number of findings, got {_shown(raw)}")
        value = int(number)
    else:
        raise ValueError(f"{_COUNT}, got {_shown(raw)}")
    if value < 0:
        raise ValueError(f"a limit must not be negative, got {_shown(raw)}")
    return value


_RATE = re.compile(rf"^{_NUMBER}\s*(?:(?:per|/)\s*(second|sec|s|minute|min|m|hour|h))?$")
_PER_MINUTE = {"second": 60.0, "sec": 60.0, "s": 60.0, "minute": 1.0, "min": 1.0, "m": 1.0}


#: The string forms :func:`parse_rate_per_minute` reads, as a schema pattern.
RATE_PATTERN = _schema_pattern(_RATE)


def parse_rate_per_minute(raw: object) -> float:
    """``5 per minute`` → 5.0, ``1 per second`` → 60.0, a bare number is per minute."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a rate such as '5 per minute', got {_shown(raw)}")
    if isinstance(raw, int | float):
        value = _as_float(raw)
    elif isinstance(raw, str) and (match := _RATE.match(raw.strip().lower())):
        unit = match.group(2) or "minute"
        value = float(match.group(1)) * _PER_MINUTE.get(unit, 1 / 60)
    else:
        raise ValueError(f"expected a rate such as '5 per minute', got {_shown(raw)}")
    if not value >= 0 or math.isinf(value):  # NaN fails the first test
        raise ValueError(f"a rate must be a finite number, not negative, got {_shown(raw)}")
    return value
