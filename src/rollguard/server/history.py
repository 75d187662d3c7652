"""The last hour of one deployment's signals, decisions and traffic steps, for the page.

A page opened in the middle of an incident must show how the canary got
there, not only what it polls from then on. Each deployment keeps, per
trigger, a ring buffer of what every evaluation compared (the canary's value,
the reference, the limit; for a sequential trigger its e-value against
1/alpha), sized from the policy's interval to cover :data:`WINDOW_SECONDS`
but never more than :data:`MAX_POINTS` rows, and the last
:data:`MAX_EVENTS` decisions, actions and traffic changes. Memory is fixed
by the cap (32 bytes a row), whatever runs for how long; it grows to it as rows come.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rollguard.engine.evaluate import Evaluation
from rollguard.timestamps import rfc3339

#: How far back the page's charts reach.
WINDOW_SECONDS = 3600.0
#: Rows kept per trigger at most (one a second for an hour); a shorter interval keeps
#: the latest MAX_POINTS evaluations.
MAX_POINTS = 3600
#: Decisions, actions and traffic changes kept at most.
MAX_EVENTS = 200
_COLUMNS = 4  # at, value, reference, limit
_FIRST_ROWS = 64


def capacity(interval_seconds: float) -> int:
    """Rows that cover the window at this interval, capped at :data:`MAX_POINTS`."""
    if not interval_seconds > 0:
        return MAX_POINTS
    return max(2, min(MAX_POINTS, math.ceil(WINDOW_SECONDS / interval_seconds) + 1))


class _Ring:
    """A table of at most ``rows`` float rows; the oldest is overwritten once it is full.

    It starts small and doubles up to ``rows``: a thousand deployments started a minute
    ago hold a minute of rows each, not an hour's worth of empty ones.
    """

    def __init__(self, rows: int) -> None:
        self._rows = rows
        self._data = np.full((min(rows, _FIRST_ROWS), _COLUMNS), np.nan)
        self._next = 0
        self._size = 0

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    def append(self, row: tuple[float, float, float, float]) -> None:
        if self._size == len(self._data) < self._rows:  # not wrapped yet: grow
            grown = np.full((min(self._rows, 2 * len(self._data)), _COLUMNS), np.nan)
            grown[: self._size] = self._data
            self._data = grown
            self._next = self._size  # the next free row, not the oldest one
        self._data[self._next] = row
        self._next = (self._next + 1) % len(self._data)
        self._size = min(self._size + 1, len(self._data))

    def rows(self) -> npt.NDArray[np.float64]:
        """Oldest first."""
        if self._size < len(self._data):
            return self._data[: self._size]
        return np.concatenate((self._data[self._next :], self._data[: self._next]))


@dataclass
class _Series:
    trigger: str
    signal: str
    method: str  # "threshold" or "sequential" (value: e-value, limit: 1/alpha)
    ring: _Ring


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _column(values: npt.NDArray[np.float64]) -> list[float | None]:
    # Six significant digits: what a chart can show, and a third of the bytes of repr().
    return [None if not math.isfinite(v) else float(f"{v:.6g}") for v in values.tolist()]


class History:
    """One deployment's recent evaluations and events, bounded in rows and bytes."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self.capacity = capacity(interval_seconds)
        self._series: dict[str, _Series] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)

    def add(self, evaluation: Evaluation) -> None:
        """Keep what each trigger compared at this evaluation."""
        for result in evaluation.results:
            evidence = result.evidence
            series = self._series.get(result.trigger)
            if series is None or series.method != evidence.method:
                series = _Series(
                    result.trigger, evidence.signal, evidence.method, _Ring(self.capacity)
                )
                self._series[result.trigger] = series
            reference = None if evidence.method == "sequential" else evidence.reference
            series.ring.append(
                (
                    evaluation.at,
                    _number(evidence.value),
                    _number(reference),
                    _number(evidence.limit),
                )
            )

    @property
    def nbytes(self) -> int:
        """Bytes held by the rows (at most 32 x capacity per trigger)."""
        return sum(series.ring.nbytes for series in self._series.values())

    def event(
        self, at: float, kind: str, message: str, *, canary_weight: int | None = None
    ) -> None:
        """A decision, an action, or a traffic change (``kind`` ``weight``)."""
        self._events.append(
            {"at": at, "kind": kind, "message": message, "canary_weight": canary_weight}
        )

    def as_dict(self, *, now: float) -> dict[str, Any]:
        """What happened in the window ending ``now``: columns per trigger, then events."""
        since = now - WINDOW_SECONDS
        triggers = []
        for series in self._series.values():
            rows = series.ring.rows()
            rows = rows[rows[:, 0] >= since]
            triggers.append(
                {
                    "trigger": series.trigger,
                    "signal": series.signal,
                    "method": series.method,
                    "at": [round(at, 3) for at in rows[:, 0].tolist()],
                    "value": _column(rows[:, 1]),
                    "reference": _column(rows[:, 2]),
                    "limit": _column(rows[:, 3]),
                }
            )
        events = [
            {**event, "at": rfc3339(event["at"])} for event in self._events if event["at"] >= since
        ]
        return {
            "window_seconds": WINDOW_SECONDS,
            "interval_seconds": self.interval_seconds,
            "capacity": self.capacity,
            "triggers": triggers,
            "events": events,
        }
