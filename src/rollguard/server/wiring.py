"""How ``serve`` builds a :class:`~rollguard.controller.Watcher` for one policy file.

The manager takes a :data:`WatcherFactory`, so tests and benchmarks can
substitute providers and executors; :func:`default_factory` assembles the
watcher exactly as ``watch`` does (:func:`rollguard.controller.assemble.assemble`),
with the shared audit store and the wall clock. A replay provider is paced from
the recording's first row at ``replay_speed`` times real time, so a recorded
incident plays out live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from rollguard.audit.base import AuditSink
from rollguard.controller import SystemClock, Watcher
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.watch import EvaluationHook
from rollguard.generate.source import PolicySource
from rollguard.metrics.base import Provider
from rollguard.metrics.batching import QueryBatcher
from rollguard.signals import Measurement, Query

WatcherFactory = Callable[[PolicySource, EvaluationHook], Watcher]
logger = logging.getLogger("rollguard.serve")


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


def default_factory(
    audit: AuditSink, *, replay_speed: float = 1.0, batcher: QueryBatcher | None = None
) -> WatcherFactory:
    """Watchers assembled from each policy, timed, writing to ``audit``; their Prometheus
    queries are batched by one :class:`~rollguard.metrics.batching.QueryBatcher`."""
    shared = batcher or QueryBatcher()

    def build(source: PolicySource, on_evaluation: EvaluationHook) -> Watcher:
        batched = shared.provider_for(source.policy)
        overrides = Overrides(
            base_dir=source.path.parent,
            metrics=batched,
            align_ticks=batched is not None,  # batched watchers meet at the same ticks
            audit=audit,
            clock=SystemClock(),
            baseline=source.baseline,
            replay_speed=replay_speed,
            on_evaluation=on_evaluation,
            instrument=TimedProvider,
        )
        try:
            watcher = assemble(source.policy, overrides)
        except BaseException:
            if batched is not None:  # its share of the batcher's connection
                shared.abandon(batched)
            raise
        for name, why in watcher.fallbacks.items():
            logger.warning(
                "%s: %s is judged by its threshold rule (the sequential test cannot be fed: %s)",
                source.path,
                name,
                why,
            )
        return watcher

    return build
