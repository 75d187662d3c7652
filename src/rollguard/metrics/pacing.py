"""Play a recording as if live: the provider side of ``serve`` with a replay file."""

from __future__ import annotations

from collections.abc import Sequence

from rollguard.metrics.base import Provider
from rollguard.signals import Measurement, Query


class ReplayPacer:
    """Plays a recording from its first row as if live, ``speed`` times real time.

    The watcher keeps the wall clock (so audit entries and the page carry real
    times); only the provider is asked about the matching moment of the recording.
    """

    def __init__(self, inner: Provider, *, start: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.inner = inner
        self.start = start
        self.speed = speed
        self._origin: float | None = None

    def replay_time(self, now: float) -> float:
        """The recording's time for the wall-clock time ``now`` (its start at the first call)."""
        if self._origin is None:
            self._origin = now
        return self.start + (now - self._origin) * self.speed

    async def collect(self, *, now: float) -> None:
        await self.inner.collect(now=self.replay_time(now))

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        return await self.inner.measure(queries, now=self.replay_time(now))

    async def aclose(self) -> None:
        await self.inner.aclose()
