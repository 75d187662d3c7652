"""The embedded default provider: scrape each version's ``/metrics`` and keep a ring.

No Prometheus server needed: ``collect`` fetches the stable and canary
endpoints once (concurrently) and stores the samples rollguard needs, stamped
with the controller's clock; ``measure`` derives every signal from the scrapes
in the query's window (:mod:`rollguard.metrics.derive`). A failed scrape is
kept in the ring too, so a down endpoint shows as an ERROR measurement naming
its URL instead of silently answering from stale samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from rollguard.metrics import derive
from rollguard.metrics.exposition import Exposition, ExpositionError, parse
from rollguard.metrics.http import display_url
from rollguard.metrics.series import Ring
from rollguard.policy.model import MetricNames, ScrapeSource
from rollguard.signals import CustomSignal, Measurement, Query, Version

#: Prometheus' own preference: the classic text format first, OpenMetrics accepted.
ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Scrape:
    """One attempt at one endpoint: the samples kept, or why there are none."""

    exposition: Exposition | None
    error: str = ""


def wanted_names(names: MetricNames) -> frozenset[str]:
    """The sample names the derivations read; everything else is dropped at parse time."""
    histogram = names.duration_histogram
    return frozenset(
        {
            names.requests_total,
            histogram + "_bucket",
            histogram + "_sum",
            histogram + "_count",
            names.memory_bytes,
            names.cpu_seconds_total,
            names.connections,
            names.suspicious_events_total,
            names.vulnerabilities,
        }
    )


class ScrapeProvider:
    """Scrapes Prometheus text exposition from the stable and canary endpoints.

    ``http_client`` is injectable (tests, proxies, TLS settings); one is
    created, and closed by :meth:`aclose`, when none is given. The ring keeps
    ``retention_seconds`` of scrapes per version, at most ``max_scrapes``.
    """

    def __init__(
        self,
        source: ScrapeSource,
        *,
        http_client: httpx.AsyncClient | None = None,
        retention_seconds: float = 900.0,
        max_scrapes: int = 4096,
    ) -> None:
        self._source = source
        self._names = source.names
        self._keep = wanted_names(source.names)
        self._urls = {Version.STABLE: str(source.stable), Version.CANARY: str(source.canary)}
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(follow_redirects=True)
        self._rings: dict[Version, Ring[Scrape]] = {
            version: Ring(max_items=max_scrapes, max_age_seconds=retention_seconds)
            for version in Version
        }
        self._last_attempt: dict[Version, float] = {}
        self.retention_seconds = retention_seconds

    def url(self, version: Version) -> str:
        """The endpoint scraped for ``version``, password hidden."""
        return display_url(self._urls[version])

    async def collect(self, *, now: float) -> None:
        """Scrape both endpoints once, concurrently.

        Calls closer together than half the scrape interval are no-ops, so a
        fast caller does not hammer the targets; a clock that goes back in
        time is ignored the same way.
        """
        due = [
            version
            for version in Version
            if version not in self._last_attempt
            or now >= self._last_attempt[version] + self._source.scrape_interval / 2
        ]
        results = await asyncio.gather(*(self._scrape(version) for version in due))
        for version, scrape in zip(due, results, strict=True):
            self._last_attempt[version] = now
            self._rings[version].append(now, scrape)

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query from the scrapes kept so far."""
        return [self._measure_one(query, now) for query in queries]

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_client:
            await self._client.aclose()

    async def _scrape(self, version: Version) -> Scrape:
        url = self._urls[version]
        shown = display_url(url)
        timeout = self._source.timeout
        try:
            # Streamed, so an oversized or endless body is cut at the limit instead of being
            # read whole into memory first (the timeout is per read, not for the whole body).
            async with self._client.stream(
                "GET", url, headers={"Accept": ACCEPT}, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    return Scrape(None, f"scrape of {shown} returned HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        return Scrape(
                            None, f"scrape of {shown} returned more than {MAX_BODY_BYTES} bytes"
                        )
        except httpx.TimeoutException:
            return Scrape(None, f"scrape of {shown} timed out after {timeout:g}s")
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Scrape(None, f"scrape of {shown} failed: {reason}")
        try:
            exposition = parse(
                body.decode(response.encoding or "utf-8", errors="replace"),
                content_type=response.headers.get("content-type", ""),
                keep=self._keep,
            )
        except ExpositionError as exc:
            return Scrape(None, f"{shown}: not Prometheus text exposition: {exc}")
        return Scrape(exposition)

    @staticmethod
    def _scrapes_for(
        ring: Ring[Scrape], start: float, end: float
    ) -> list[tuple[float, Exposition]]:
        """Successful scrapes in ``(start, end]``, after the last one at or before ``start``."""
        anchor: list[tuple[float, Exposition]] = []
        inside: list[tuple[float, Exposition]] = []
        for at, scrape in ring:
            if scrape.exposition is None or at > end:
                continue
            if at <= start:
                anchor = [(at, scrape.exposition)]
            else:
                inside.append((at, scrape.exposition))
        return anchor + inside

    def _measure_one(self, query: Query, now: float) -> Measurement:
        if query.promql is not None:
            return Measurement.error(query, now, "the scrape provider does not run PromQL")
        signal = query.signal
        if isinstance(signal, CustomSignal):
            return Measurement.error(query, now, "the scrape provider has no custom signals")
        ring = self._rings[query.version]
        shown = self.url(query.version)
        latest = ring.latest(at_or_before=now)
        if latest is None:
            return Measurement.no_data(query, now, f"{shown} has not been scraped yet")
        _, last_scrape = latest
        if last_scrape.exposition is None:
            return Measurement.error(query, now, last_scrape.error)
        start = now - query.window_seconds
        window = derive.Window(start=start, end=now, scrapes=self._scrapes_for(ring, start, now))
        try:
            derived = derive.derive(signal, window, self._names)
        except derive.Missing as missing:
            return Measurement.no_data(query, now, f"{shown}: {missing}")
        return Measurement.ok(
            query, now, derived.value, requests=derived.requests, buckets=derived.buckets
        )
