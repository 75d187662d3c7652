"""Exact counter growth over a window, from raw samples (pure).

``increase(x[w])`` extrapolates what it saw to the whole window, so the counts
it gives are not the requests served (about k/(k - 1) times them with k samples
in the window). A sequential test needs true counts, so the Prometheus provider
asks for each series' samples in the window and its last sample before it
(:func:`rollguard.promql.growth`), and the scrape provider keeps its last scrape
before the window (:mod:`rollguard.metrics.derive`); both difference them here:

- a series' growth is its last sample in the window minus its last sample
  before it (within Prometheus' lookback, :data:`rollguard.promql.LOOKBACK_SECONDS`),
  stepping through every sample in between so that a drop (a counter reset) counts
  from zero, as Prometheus' own reset handling does;
- a series with no sample before the window is *new* (a pod that started, the
  first 5xx of a status code) and counts from zero, but only when its version
  was scraped before the window (``from_zero``): otherwise nothing says its
  value was not counted before (Prometheus was down, the version just
  appeared), and only its growth between samples inside the window counts;
- a series with no sample in the window adds nothing, and a selection without
  one is *no data*, never zero.

So consecutive windows add up to the counter's growth, and counts of whole
requests are whole numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rollguard.metrics.series import Point, counter_delta

#: One series' labels (without ``__name__``), hashable.
SeriesKey = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Selection:
    """One counter selection around a window: samples inside it, and the value before it."""

    inside: Mapping[SeriesKey, list[Point]]  # oldest first
    before: Mapping[SeriesKey, float]

    @property
    def observed(self) -> bool:
        """Whether any series of the selection had a sample before the window."""
        return bool(self.before)

    def growths(self, *, from_zero: bool) -> dict[SeriesKey, float]:
        """Each series' growth over the window; series that cannot be compared are left out."""
        found = {}
        for key, points in self.inside.items():
            start = self.before.get(key)
            if start is None and from_zero:
                start = 0.0
            compared = points if start is None else [Point(points[0].t, start), *points]
            if len(compared) >= 2:
                found[key] = counter_delta(compared)
        return found


def selection(
    inside: Iterable[tuple[SeriesKey, float, float]],
    before: Iterable[tuple[SeriesKey, float]],
    *,
    start: float,
) -> Selection:
    """A :class:`Selection` from ``(series, time, value)`` samples and ``(series, value)``
    pairs; samples at or before ``start`` (to the millisecond, Prometheus' resolution)
    belong to the time before the window."""
    start_ms = round(start * 1000)
    points: dict[SeriesKey, list[Point]] = {}
    for key, at, value in sorted(inside, key=lambda sample: sample[1]):
        if round(at * 1000) > start_ms:
            points.setdefault(key, []).append(Point(at, value))
    return Selection(points, dict(before))


def total(growths: Mapping[SeriesKey, float]) -> float | None:
    """The selection's growth: the sum over its series; None when none could be compared."""
    return math.fsum(growths.values()) if growths else None


def by_label(growths: Mapping[SeriesKey, float], label: str) -> dict[str, float]:
    """Growth summed per value of ``label`` (a histogram's ``le``); series without it apart."""
    found: dict[str, float] = {}
    for key, grown in growths.items():
        value = dict(key).get(label, "")
        found[value] = found.get(value, 0.0) + grown
    return found
