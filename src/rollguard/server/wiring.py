"""How ``serve`` builds a :class:`~rollguard.controller.Watcher` for one policy file.

The manager takes a :data:`WatcherFactory`, so tests and benchmarks can
substitute providers and executors; :func:`default_factory` uses the policy's
own provider and executor through their factories. A replay provider is
paced from the recording's first row at ``replay_speed`` times real time, so a
recorded incident plays out live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rollguard.audit.base import AuditSink
from rollguard.controller import SystemClock, Watcher
from rollguard.controller.watch import EvaluationHook
from rollguard.generate.source import PolicySource
from rollguard.metrics.base import Provider
from rollguard.signals import Measurement, Query

WatcherFactory = Callable[[PolicySource, EvaluationHook], Watcher]


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


class TimedProvider:
    """Wraps a provider to time each evaluation from ``collect`` to the hook."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.began: float | None = None

    async def collect(self, *, now: float) -> None:
        self.began = time.perf_counter()
        await self.inner.collect(now=now)

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        return await self.inner.measure(queries, now=now)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def elapsed(self) -> float | None:
        """Seconds since the current evaluation began, or None before the first."""
        return None if self.began is None else time.perf_counter() - self.began


def default_factory(audit: AuditSink, *, replay_speed: float = 1.0) -> WatcherFactory:
    """Watchers with the policy's provider, executor and notification channels."""

    def build(source: PolicySource, on_evaluation: EvaluationHook) -> Watcher:
        from rollguard.executors.factory import make_executor
        from rollguard.metrics.factory import make_provider
        from rollguard.metrics.replay import ReplayProvider
        from rollguard.notifiers.factory import make_notifier

        provider = make_provider(source.policy, base_dir=source.path.parent)
        if isinstance(provider, ReplayProvider):
            provider = ReplayPacer(provider, start=provider.start, speed=replay_speed)
        return Watcher(
            source.policy,
            provider=TimedProvider(provider),
            executor=make_executor(source.policy),
            notifier=make_notifier(source.policy),
            audit=audit,
            clock=SystemClock(),
            baseline=source.baseline,
            on_evaluation=on_evaluation,
        )

    return build
