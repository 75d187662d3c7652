"""Play a recording as if live: the provider side of ``serve`` with a replay file."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from rollguard.metrics.base import Provider
from rollguard.signals import Measurement, Query


class ReplayPacer:
    """Plays a recording from its first row as if live, ``speed`` times real time.

    The watcher keeps the wall clock (so audit entries and the page carry real
    times); only the provider is asked about the matching moment of the recording.
    ``increments`` are the per-interval counts a sequential or promotion test is
    fed: each covers the recording time passed since the previous evaluation
    (``speed`` times the interval), not the interval's own length of the recording,
    so every row is counted once and none is skipped.
    """

    def __init__(
        self,
        inner: Provider,
        *,
        start: float,
        speed: float = 1.0,
        increments: Collection[Query] = (),
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.inner = inner
        self.start = start
        self.speed = speed
        self.increments = frozenset(increments)
        self._origin: float | None = None
        self._fed_at: float | None = None  # the recording time the increments reached

    def replay_time(self, now: float) -> float:
        """The recording's time for the wall-clock time ``now`` (its start at the first call)."""
        if self._origin is None:
            self._origin = now
        return self.start + (now - self._origin) * self.speed

    async def collect(self, *, now: float) -> None:
        await self.inner.collect(now=self.replay_time(now))

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        at = self.replay_time(now)
        asked = list(queries)
        if self.increments.intersection(asked):
            since, self._fed_at = self._fed_at, at
            asked = [self._increment(query, at, since) for query in asked]
        measured = await self.inner.measure(asked, now=at)
        return [replace(m, query=query) for m, query in zip(measured, queries, strict=True)]

    def _increment(self, query: Query, at: float, since: float | None) -> Query:
        if query not in self.increments:
            return query
        span = at - since if since is not None and at > since else query.window_seconds * self.speed
        return replace(query, window_seconds=span)

    async def aclose(self) -> None:
        await self.inner.aclose()
