"""The counts the scrape source feeds the sequential tests are exact.

A real exporter on loopback is scraped once a simulated second, and before
every scrape ``n`` (from 1) it serves ``STEP`` requests and ``OBSERVED``
latency observations (1 of them in the ``le="0.1"`` bucket); from scrape
``ERRORS_FROM`` on also 2 5xx, whose series first appears there. Its process
restarts before scrape ``RESET_AT`` (a new registry: every counter drops to
what was served since). So a window holding scrapes ``N - k + 1 .. N``, its
start halfway between two scrapes, served exactly ``k`` scrapes' worth; the
expected figures are sums of what was served, never read back.
"""

from __future__ import annotations

import asyncio
import itertools

import prometheus_client as pc
import pytest

from rollguard.metrics.scrape import ScrapeProvider
from rollguard.policy.model import ScrapeSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.exporter import ExporterServer

STEP = 7
OBSERVED = 3
RESET_AT = 10
ERRORS_FROM = 15
SCRAPES = 21  # scrapes 0 .. 20


class Process:
    """One run of the service: its counters start from zero."""

    def __init__(self) -> None:
        self.registry = pc.CollectorRegistry()
        self.requests = pc.Counter("http_requests", "Requests.", ["code"], registry=self.registry)
        self.latency = pc.Histogram(
            "http_request_duration_seconds", "Latency.", buckets=[0.1, 1.0], registry=self.registry
        )

    def serve(self, scrape: int) -> None:
        """What the service does between scrape ``scrape - 1`` and ``scrape``."""
        self.requests.labels("200").inc(STEP)
        if scrape >= ERRORS_FROM:
            self.requests.labels("500").inc(2)
        self.latency.observe(0.05)
        for _ in range(OBSERVED - 1):
            self.latency.observe(0.5)


def errors_in(scrapes: range) -> int:
    return sum(2 for n in scrapes if n >= ERRORS_FROM)


@pytest.fixture(scope="module")
def provider_scraped() -> ScrapeProvider:
    """A provider holding scrapes 0 .. 20 (at t = 0 .. 20 s) of the exporter above."""
    stable, canary = ExporterServer(), ExporterServer()
    stable.start()
    canary.start()
    source = ScrapeSource.model_validate(
        {"stable": stable.url, "canary": canary.url, "scrape_interval": 1, "timeout": 5}
    )
    process = Process()
    process.requests.labels("200").inc(100)  # before scrape 0: never counted
    stable.set(registry=process.registry)
    canary.set(registry=Process().registry)

    async def scrape_all() -> ScrapeProvider:
        provider = ScrapeProvider(source)
        nonlocal process
        await provider.collect(now=0.0)
        for n in range(1, SCRAPES):
            if n == RESET_AT:
                process = Process()
                stable.set(registry=process.registry)
            process.serve(n)
            await provider.collect(now=float(n))
        await provider.aclose()
        return provider

    try:
        return asyncio.run(scrape_all())
    finally:
        stable.stop()
        canary.stop()


def measure(provider: ScrapeProvider, *, now: float, seconds: float) -> dict[Signal, Measurement]:
    signals = [Signal.REQUESTS, Signal.ERRORS, Signal.ERROR_RATE_PERCENT, Signal.LATENCY_BUCKETS]
    queries = [Query(signal, Version.STABLE, seconds) for signal in signals]
    return {m.query.signal: m for m in asyncio.run(provider.measure(queries, now=now))}


@pytest.mark.parametrize(
    ("last", "k"),
    [
        (5, 2),
        (8, 3),
        (11, 3),  # scrapes 9, 10, 11: the process restarted before scrape 10
        (16, 3),  # scrapes 14, 15, 16: the 5xx series appears at 15
        (20, 20),  # every scrape but the first: across the restart and the new series
    ],
)
def test_a_window_of_k_scrapes_counts_k_scrapes_of_requests(
    provider_scraped: ScrapeProvider, last: int, k: int
) -> None:
    got = measure(provider_scraped, now=float(last), seconds=k - 0.5)
    scrapes = range(last - k + 1, last + 1)
    errors = errors_in(scrapes)
    requests = k * STEP + errors
    assert got[Signal.REQUESTS].value == requests
    assert got[Signal.ERRORS].value == errors
    assert got[Signal.ERRORS].requests == requests
    assert got[Signal.ERROR_RATE_PERCENT].value == pytest.approx(errors / requests * 100)
    buckets = got[Signal.LATENCY_BUCKETS]
    assert buckets.buckets == {0.1: k, 1.0: k * OBSERVED, float("inf"): k * OBSERVED}
    assert buckets.requests == k * OBSERVED


def test_a_window_ending_between_scrapes_counts_the_scrapes_inside(
    provider_scraped: ScrapeProvider,
) -> None:
    # (6.3, 8.7]: scrapes 7 and 8, counted from scrape 6
    assert measure(provider_scraped, now=8.7, seconds=2.4)[Signal.REQUESTS].value == 2 * STEP


def test_consecutive_windows_add_up(provider_scraped: ScrapeProvider) -> None:
    cuts = [0.5, 3.2, 7.9, 9.5, 14.1, 20.0]
    counts = [
        measure(provider_scraped, now=end, seconds=end - start)[Signal.REQUESTS].value
        for start, end in itertools.pairwise(cuts)
    ]
    assert None not in counts
    everything = measure(provider_scraped, now=20.0, seconds=19.5)[Signal.REQUESTS].value
    assert (
        sum(c for c in counts if c is not None) == everything == 20 * STEP + errors_in(range(1, 21))
    )


def test_a_window_without_a_scrape_is_no_data(provider_scraped: ScrapeProvider) -> None:
    got = measure(provider_scraped, now=5.6, seconds=0.5)  # (5.1, 5.6]
    for measurement in got.values():
        assert measurement.phase is Phase.NO_DATA
        assert "no successful scrape in the last 0.5s" in measurement.reason
