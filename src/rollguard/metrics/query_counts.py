"""The queries a :class:`~rollguard.metrics.batching.QueryBatcher` sent, as metrics.

Read from the batcher at each scrape, so the figures are the batcher's own
counts: how many queries Prometheus was asked, batched or per deployment, and
how many deployment versions the batched ones asked for (divided by the batched
queries: deployments per query).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from rollguard.metrics.batching import QueryBatcher


class QueryCounts(Collector):
    """``<prefix>_prometheus_queries_total{mode}`` and
    ``<prefix>_prometheus_query_deployments_total``."""

    def __init__(self, batcher: QueryBatcher, *, prefix: str) -> None:
        self.batcher = batcher
        self.prefix = prefix

    def collect(self) -> Iterator[CounterMetricFamily]:
        batcher = self.batcher
        queries = CounterMetricFamily(
            f"{self.prefix}_prometheus_queries",
            "Queries sent to Prometheus: batched (one per query shape and tick) or "
            "single (a policy's own PromQL, asked per deployment).",
            labels=["mode"],
        )
        queries.add_metric(["batched"], batcher.sent_batched)
        queries.add_metric(["single"], batcher.sent - batcher.sent_batched)
        yield queries
        yield CounterMetricFamily(
            f"{self.prefix}_prometheus_query_deployments",
            "Deployment versions the batched queries asked for; divided by "
            'the queries with mode="batched": deployment versions per query.',
            value=batcher.deployments_asked,
        )


def register(registry: CollectorRegistry, batcher: QueryBatcher, *, prefix: str) -> None:
    """Expose ``batcher``'s counts on ``registry``."""
    registry.register(QueryCounts(batcher, prefix=prefix))
