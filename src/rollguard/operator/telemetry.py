"""``rollguard controller``'s own metrics, on a registry the caller passes in.

Counters count what happened (evaluations, actions by result, fenced
refusals, resyncs and Lease ticks that failed); what is true right now (shards
held, analyses running, requests made to the API server) is read at scrape
time from the objects that know it, so it can never drift from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rollguard.executors.base import ActionResult
from rollguard.operator.writer import RESULTS

PREFIX = "rollguard_controller"
#: Upper bounds of the evaluation-lag histogram, in seconds (an interval is seconds long).
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 60.0)


@dataclass(frozen=True)
class Sources:
    """Where the scrape-time figures come from (callables: read when scraped)."""

    shards: int
    shards_held: Callable[[], int]
    analyses_running: Callable[[], int]
    api_requests: Callable[[], Mapping[str, int]]
    lease_requests: Callable[[], int]
    #: Policies whose status write waits in the status writer.
    status_pending: Callable[[], int] = lambda: 0


class _Now:
    """A collector for the figures that are read, not counted."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        found = self._sources
        yield GaugeMetricFamily(
            f"{PREFIX}_shards", "Shards the policies are split into (--shards).", found.shards
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_shards_held",
            "Shards whose Lease this replica holds now (it evaluates their policies).",
            found.shards_held(),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_analyses_running",
            "Policies this replica is analysing now (one watch each).",
            found.analyses_running(),
        )
        requests = CounterMetricFamily(
            f"{PREFIX}_api_requests",
            "Requests this replica's reconcile loop and status writer made to the API server, "
            "by verb.",
            labels=["verb"],
        )
        for verb, count in sorted(found.api_requests().items()):
            requests.add_metric([verb], count)
        yield requests
        yield GaugeMetricFamily(
            f"{PREFIX}_status_writes_pending",
            "Policies whose status write waits to be sent (at most one each: newer reports "
            "are merged into it).",
            found.status_pending(),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_lease_requests",
            "Requests this replica made to the API server for its shard and member Leases.",
            found.lease_requests(),
        )


class ControllerMetrics:
    """What ``rollguard controller`` reports on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry, sources: Sources) -> None:
        self.registry = registry
        self.evaluations = Counter(
            f"{PREFIX}_evaluations",
            "Evaluations of a policy's triggers, over every policy this replica analysed.",
            registry=registry,
        )
        self.lag = Histogram(
            f"{PREFIX}_evaluation_lag_seconds",
            "Seconds from the tick an evaluation was due at to its decision (queries, "
            "evaluation and the wait for the event loop included).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.actions = Counter(
            f"{PREFIX}_actions",
            "Executor actions (rollback, set_canary_weight, scale, isolate) by result: "
            "ok, failed, or refused by the fence.",
            ["action", "result"],
            registry=registry,
        )
        self.fenced = Counter(
            f"{PREFIX}_fenced_refusals",
            "Actions refused because this replica no longer owned the policy's shard.",
            registry=registry,
        )
        self.resyncs = Counter(
            f"{PREFIX}_resyncs",
            "Passes of the reconcile loop, by result (ok, or error: the API server was away).",
            ["result"],
            registry=registry,
        )
        self.lease_ticks = Counter(
            f"{PREFIX}_lease_ticks",
            "Rounds of shard Lease renewal, by result (ok, or error).",
            ["result"],
            registry=registry,
        )
        self.status_writes = Counter(
            f"{PREFIX}_status_writes",
            "Status reports by what became of them: written, coalesced (merged into a "
            "pending one), fenced (the shard moved before the write), dropped (the "
            "analysis stopped), failed.",
            ["result"],
            registry=registry,
        )
        for result in RESULTS:
            self.status_writes.labels(result)
        for result in ("ok", "error"):  # both series exist from the start, at 0
            self.resyncs.labels(result)
            self.lease_ticks.labels(result)
        registry.register(_Now(sources))

    def acted(self, action: str, result: ActionResult) -> None:
        """An executor call returned ``result`` (``output['fenced']``: the fence refused it)."""
        refused = bool(result.output.get("fenced"))
        outcome = "refused" if refused else "ok" if result.ok else "failed"
        self.actions.labels(action, outcome).inc()
        if refused:
            self.fenced.inc()
