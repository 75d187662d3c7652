"""The providers that run the policy's own queries against one HTTP server.

Datadog, Graphite, InfluxDB, Loki, New Relic and web sources differ only in
their name, their credentials and the request each query becomes: the edge
(timeouts, retries, TLS, bounded reads) and its closing are built here once,
from the source, so each provider states just what is its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TypedDict, TypeVar

import httpx

from rollguard.metrics.http import source_edge
from rollguard.metrics.templated import QueryProvider
from rollguard.policy.sources import CustomSignalSpec, HttpSource, SignalQueries
from rollguard.retry import Sleep

Q = TypeVar("Q")


class EdgeOptions(TypedDict, total=False):
    """What a caller (a test, a benchmark) may set on the edge: the client and retry pacing."""

    client: httpx.AsyncClient | None
    backoff_seconds: float | None
    sleep: Sleep


class HttpQueryProvider(QueryProvider[Q]):
    """A query provider whose every request goes through the source's one edge."""

    def __init__(
        self,
        source: HttpSource,
        queries: SignalQueries[Q],
        signals: Mapping[str, CustomSignalSpec[Q]],
        *,
        name: str,
        address: str,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        credentials_field: str = "metrics.auth",
        client: httpx.AsyncClient | None = None,
        backoff_seconds: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(queries=queries, signals=signals, versions=source.versions)
        self._edge = source_edge(
            source,
            name=name,
            address=address,
            client=client,
            backoff_seconds=backoff_seconds,
            sleep=sleep,
            auth=auth,
            headers=headers,
            credentials_field=credentials_field,
        )

    async def aclose(self) -> None:
        await self._edge.aclose()
