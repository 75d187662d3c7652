"""Windowed maths over timestamped samples, with Prometheus' semantics.

Pure functions, no I/O, so the scrape provider, tests and benchmarks share
them. What is implemented, and where it follows Prometheus (3.x):

- **Windows are left-open**: a window ``(start, end]`` holds the samples with
  ``start < t <= end``, as range selectors do since Prometheus 3.0.
- **Counter resets**: a sample lower than its predecessor means the counter
  restarted from zero, so the increase across the reset is the new value
  itself (``counter_delta``); this is Prometheus' ``resultValue += lastValue``.
- **increase() / rate()** (``increase``, ``rate``; the reference, checked
  against promtool in the tests) follow
  ``promql/functions.go:extrapolatedRate``: the reset-corrected delta between
  the first and last sample in the window is extrapolated to the window's
  edges when the samples reach within 1.1 average sample intervals of an edge,
  otherwise by half an average interval; towards the start never below the
  counter's zero point. Fewer than two samples → ``None`` (Prometheus drops
  the series).
- rollguard's own sources do not extrapolate: they count a counter's exact
  growth from its last sample before the window (:mod:`rollguard.metrics.growth`),
  which sequential tests need.
- **histogram_quantile** follows ``promql/quantile.go:bucketQuantile``: the
  highest bucket must be ``+Inf``; counts are forced monotonic; fewer than
  two buckets or no observations → NaN; linear interpolation inside the
  bucket holding the rank, the lowest bucket starting at 0 (unless its bound
  is <= 0); a rank in the ``+Inf`` bucket returns the highest finite bound.
  Callers merge buckets with the same bound (``le="1"`` and ``le="1.0"``) by
  keying them on floats.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Point:
    """One sample of one series: its time in seconds and its value."""

    t: float
    value: float


class Ring(Generic[T]):
    """Timestamped items, oldest first, bounded by count and by age.

    Appends must not go back in time; items older than ``max_age_seconds``
    before the newest one are dropped, and so is the oldest past ``max_items``.
    """

    def __init__(self, *, max_items: int, max_age_seconds: float) -> None:
        if max_items < 1 or max_age_seconds <= 0:
            raise ValueError("a ring needs max_items >= 1 and max_age_seconds > 0")
        self._items: deque[tuple[float, T]] = deque(maxlen=max_items)
        self._max_age = max_age_seconds

    def append(self, at: float, item: T) -> None:
        """Add ``item`` observed at ``at``; refuses to go back in time."""
        if self._items and at < self._items[-1][0]:
            raise ValueError(f"ring time went backwards: {at} < {self._items[-1][0]}")
        self._items.append((at, item))
        while self._items and self._items[0][0] < at - self._max_age:
            self._items.popleft()

    def window(self, *, start: float, end: float) -> list[tuple[float, T]]:
        """Items with ``start < at <= end``, oldest first."""
        return [(at, item) for at, item in self._items if start < at <= end]

    def latest(self, *, at_or_before: float) -> tuple[float, T] | None:
        """The newest item observed no later than ``at_or_before``."""
        for at, item in reversed(self._items):
            if at <= at_or_before:
                return at, item
        return None

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[float, T]]:
        return iter(self._items)


def in_window(points: Iterable[Point], *, start: float, end: float) -> list[Point]:
    """The points with ``start < t <= end`` (a left-open range, as in Prometheus 3)."""
    return [point for point in points if start < point.t <= end]


def counter_delta(points: Sequence[Point]) -> float:
    """How much a counter grew from the first to the last point, across resets."""
    total = 0.0
    for previous, current in itertools.pairwise(points):
        step = current.value - previous.value
        total += step if step >= 0 else current.value
    return total


@dataclass(frozen=True)
class Growth:
    """How much a counter grew, and over how many seconds."""

    increase: float
    seconds: float

    @property
    def per_second(self) -> float:
        """The average growth per second over the part of the window covered."""
        return self.increase / self.seconds


def increase(points: Sequence[Point], *, start: float, end: float) -> float | None:
    """Prometheus ``increase(x[end-start])`` evaluated at ``end`` over ``points``.

    ``points`` must already be the samples in ``(start, end]``, oldest first.
    """
    if len(points) < 2:
        return None
    first, last = points[0], points[-1]
    sampled = last.t - first.t
    if sampled <= 0:
        return None
    result = counter_delta(points)
    average_step = sampled / (len(points) - 1)
    threshold = average_step * 1.1
    to_start = first.t - start
    to_end = end - last.t
    if to_start >= threshold:
        to_start = average_step / 2
    if result > 0 and first.value >= 0:
        # Counters start at zero: never extrapolate below it.
        to_zero = sampled * (first.value / result)
        to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = average_step / 2
    return result * (sampled + to_start + to_end) / sampled


def rate(points: Sequence[Point], *, start: float, end: float) -> float | None:
    """Prometheus ``rate(x[end-start])``: the extrapolated increase per second."""
    grown = increase(points, start=start, end=end)
    if grown is None:
        return None
    return grown / (end - start)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float:
    """Prometheus ``histogram_quantile(q, ...)`` over cumulative bucket counts by ``le``.

    Returns NaN where Prometheus does: no ``+Inf`` bucket, fewer than two
    buckets, or no observations.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return math.nan
    counts = monotonic([buckets[bound] for bound in bounds])
    observations = counts[-1]
    if not observations > 0:
        return math.nan
    rank = q * observations
    index = next(i for i, count in enumerate([*counts[:-1], math.inf]) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    lower = 0.0
    count = counts[index]
    if index > 0:
        lower = bounds[index - 1]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    if count <= 0:  # only for q == 0 over an empty lowest bucket: 0/0 in Prometheus
        return math.nan
    return lower + (bounds[index] - lower) * (rank / count)


def monotonic(counts: Sequence[float]) -> list[float]:
    """Cumulative counts with every dip raised to the running maximum.

    Buckets scraped a moment apart can disagree slightly; Prometheus fixes them
    the same way before interpolating.
    """
    fixed: list[float] = []
    highest = -math.inf
    for count in counts:
        highest = max(highest, count)
        fixed.append(highest)
    return fixed


def histogram_mean(sum_increase: float, count_increase: float) -> float:
    """Mean observation over a window: increase of ``_sum`` / increase of ``_count``."""
    if not count_increase > 0:
        return math.nan
    return sum_increase / count_increase
