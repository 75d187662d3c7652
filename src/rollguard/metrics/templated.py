"""What the providers that run the policy's own queries share: from a query to a measurement.

A backend (InfluxDB, Graphite, Loki, CloudWatch, Datadog, New Relic, web,
command) only knows how to run one of its queries for one version over one
window and return one number (:meth:`QueryProvider.run`). This module decides
which of the policy's queries answer a :class:`~rollguard.signals.Query` and
combines their numbers, the same way for every backend (docs/metrics.md):

- ``error_rate_percent`` is ``100 * errors / requests`` (its own query when the
  policy gives one); a custom ratio signal likewise;
- a count (``errors``, ``unauthorized_per_minute``, ``suspicious_events``, a
  ratio's errors) with no result while the ``requests`` query counted the
  version's requests is 0: the version served and nothing was counted, which
  is Prometheus' ``or all * 0``. Without requests it stays no data;
- zero requests behind a ratio is no data, never 0 %;
- the ``requests`` query, when given, is the request count behind ratios and
  latencies, so the engine can refuse to judge on too little traffic.

Placeholders (:data:`~rollguard.policy.sources.PLACEHOLDERS`) are filled by
:func:`fill` with what each backend writes for them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rollguard.metrics.http import QueryFailed
from rollguard.policy.sources import CustomSignalSpec, SignalQueries, VersionValues
from rollguard.signals import AnySignal, CustomSignal, Measurement, Query, Signal, Version

Q = TypeVar("Q")
T = TypeVar("T")

#: Built-in signals that count events: no result beside counted requests reads 0.
COUNT_SIGNALS = frozenset(
    {Signal.REQUESTS, Signal.ERRORS, Signal.UNAUTHORIZED_PER_MINUTE, Signal.SUSPICIOUS_EVENTS}
)
#: Signals whose value is judged against the requests behind it.
_WITH_REQUESTS = frozenset({Signal.LATENCY_P95_MS, Signal.LATENCY_P50_MS, Signal.LATENCY_MEAN_MS})


@dataclass(frozen=True)
class Window:
    """One query's version and time span (seconds since the epoch)."""

    version: Version
    label: str  # what $version becomes
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Plan(Generic[Q]):
    """Which queries answer one signal, and how their numbers combine."""

    value: Q | None = None  # one query's number is the value
    errors: Q | None = None  # with requests: 100 * errors / requests
    requests: Q | None = None  # the count behind the value (or the ratio's denominator)
    count: bool = False  # the value counts events (summed over the window; with requests,
    # an empty value beside counted requests is 0)


def plan_for(
    signal: AnySignal,
    queries: SignalQueries[Q],
    signals: Mapping[str, CustomSignalSpec[Q]],
) -> Plan[Q] | str:
    """The plan answering ``signal``, or why there is none (a query is missing)."""
    if isinstance(signal, CustomSignal):
        return _custom_plan(signal, signals)
    requests = queries.requests
    if signal is Signal.ERROR_RATE_PERCENT:
        if queries.error_rate_percent is not None:
            return Plan(value=queries.error_rate_percent, requests=requests)
        if queries.errors is not None and requests is not None:
            return Plan(errors=queries.errors, requests=requests)
        return "no errors and requests queries (metrics.queries)"
    if signal is Signal.LATENCY_BUCKETS:
        return "histogram buckets come from Prometheus, scrape or replay sources only"
    value = queries.of(signal)
    if value is None:
        return f"no query for {signal.value} (metrics.queries.{signal.value})"
    if signal is Signal.REQUESTS:
        return Plan(value=value, count=True)
    if signal in COUNT_SIGNALS:
        return Plan(value=value, requests=requests, count=True)
    return Plan(value=value, requests=requests if signal in _WITH_REQUESTS else None)


def _custom_plan(signal: CustomSignal, signals: Mapping[str, CustomSignalSpec[Q]]) -> Plan[Q] | str:
    spec = signals.get(signal.name)
    if spec is None:
        return f"no signal {signal.name} under metrics.signals"
    ratio = spec.ratio()
    if ratio is None:
        if signal.part != "value" or spec.query is None:
            return f"{signal.name} is a gauge: it has no errors and requests to count"
        return Plan(value=spec.query)
    errors, requests = ratio
    if signal.part == "errors":
        return Plan(value=errors, requests=requests, count=True)
    if signal.part == "requests":
        return Plan(value=requests, count=True)
    return Plan(errors=errors, requests=requests)


class QueryProvider(Generic[Q]):
    """A provider that answers every query with the policy's own queries for its backend.

    Subclasses implement :meth:`run`, which raises :class:`QueryFailed` (with
    ``no_data=True`` for an empty result) instead of returning a made-up number.
    """

    def __init__(
        self,
        *,
        queries: SignalQueries[Q],
        signals: Mapping[str, CustomSignalSpec[Q]],
        versions: VersionValues,
    ) -> None:
        self._queries = queries
        self._signals = signals
        self._versions = versions

    async def run(self, query: Q, window: Window, *, count: bool) -> float:
        """One number for ``query`` over ``window``; ``count`` says it counts events."""
        raise NotImplementedError

    async def collect(self, *, now: float) -> None:
        """Query APIs keep nothing between evaluations."""

    async def aclose(self) -> None:
        """Release connections (none here)."""

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query, each over the window ending at ``now``, concurrently."""
        return await _all(*(self._measure_one(q, now) for q in queries))

    def cannot_answer(self, query: Query) -> str:
        """Why no query of the policy answers ``query``, or "" when one does."""
        plan = plan_for(query.signal, self._queries, self._signals)
        return plan if isinstance(plan, str) else ""

    async def _measure_one(self, query: Query, now: float) -> Measurement:
        if query.promql is not None:
            return Measurement.error(query, now, "this provider does not run PromQL")
        plan = plan_for(query.signal, self._queries, self._signals)
        if isinstance(plan, str):
            return Measurement.error(query, now, plan)
        label = self._versions.stable if query.version is Version.STABLE else self._versions.canary
        window = Window(query.version, label, now - query.window_seconds, now)
        try:
            value, requests = await self._answer(plan, window)
        except QueryFailed as failed:
            if failed.no_data:
                return Measurement.no_data(query, now, failed.reason)
            return Measurement.error(query, now, failed.reason)
        return Measurement.ok(query, now, value, requests=requests)

    async def _answer(self, plan: Plan[Q], window: Window) -> tuple[float, float | None]:
        """(value, requests behind it) for a plan."""
        if plan.errors is not None and plan.requests is not None:
            errors, requests = await _all(
                self._optional(plan.errors, window, count=True),
                self._optional(plan.requests, window, count=True),
            )
            if isinstance(requests, QueryFailed):
                raise requests
            if requests <= 0:
                raise QueryFailed("no requests in the window", no_data=True)
            return 100.0 * _zero_if_counted(errors) / requests, requests
        assert plan.value is not None  # noqa: S101 plan_for always sets one of the two shapes
        if plan.requests is None:
            return await self._finite(plan.value, window, count=plan.count), None
        value, behind = await _all(
            self._optional(plan.value, window, count=plan.count),
            self._optional(plan.requests, window, count=True),
        )
        counted = behind if isinstance(behind, float) else None
        if isinstance(value, QueryFailed):
            if not plan.count or counted is None:
                raise value
            return 0.0, counted  # nothing counted while the version served requests
        return value, counted

    async def _finite(self, query: Q, window: Window, *, count: bool) -> float:
        value = await self.run(query, window, count=count)
        if not math.isfinite(value):
            raise QueryFailed(f"the query gave {value}", no_data=True)
        return value

    async def _optional(self, query: Q, window: Window, *, count: bool) -> float | QueryFailed:
        """The number, or the no-data failure (other failures still raise)."""
        try:
            return await self._finite(query, window, count=count)
        except QueryFailed as failed:
            if failed.no_data:
                return failed
            raise


async def _all(*steps: Awaitable[T]) -> list[T]:
    """Every result, run concurrently; on the first failure the others are cancelled and awaited.

    ``asyncio.gather`` alone leaves them running after it raises: a query's
    program or request would outlive the measurement that asked for it.
    """
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _zero_if_counted(errors: float | QueryFailed) -> float:
    return 0.0 if isinstance(errors, QueryFailed) else errors


def fill(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with each ``$name`` in ``values`` replaced (longest names first)."""
    for name in sorted(values, key=len, reverse=True):
        template = template.replace(f"${name}", str(values[name]))
    return template


def aggregate(points: Sequence[float], how: str) -> float:
    """Reduce a window's points: ``sum``, ``average`` (or ``avg``), ``max``, ``min``, ``last``."""
    if not points:
        raise QueryFailed("no points in the window", no_data=True)
    if how == "sum":
        return math.fsum(points)
    if how in ("average", "avg"):
        return math.fsum(points) / len(points)
    if how == "max":
        return max(points)
    if how == "min":
        return min(points)
    return points[-1]
