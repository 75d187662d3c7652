"""RFC 3339 times in UTC, written one way everywhere (audit, API, JSON output, files).

Every time rollguard writes ends in ``Z``. The precision is the caller's
choice, named: ``"microseconds"`` (fixed width, so text order is time order:
the audit trail), ``"milliseconds"``, ``"seconds"`` (files and messages people
read), or ``"auto"`` (microseconds only when there are any: times a CSV gave).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Precision = Literal["auto", "seconds", "milliseconds", "microseconds"]


def rfc3339(at: float | datetime, precision: Precision = "microseconds") -> str:
    """``at`` (seconds since the epoch, or a datetime; naive means UTC) as RFC 3339 UTC."""
    moment = at if isinstance(at, datetime) else utc(at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=precision).replace("+00:00", "Z")


def utc(at: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime (for clients that take datetimes)."""
    return datetime.fromtimestamp(at, tz=UTC)


def now_rfc3339(precision: Precision = "microseconds") -> str:
    """The current time as RFC 3339 UTC."""
    return rfc3339(datetime.now(UTC), precision)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 (or ISO 8601) time as an aware UTC datetime; without a zone, UTC.

    Raises :class:`ValueError` for text that is not one; callers say which field.
    """
    parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
