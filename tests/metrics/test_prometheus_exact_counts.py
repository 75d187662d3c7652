"""The counts the sequential tests are fed, through a real Prometheus, are exact.

A real Prometheus scrapes a real exporter once a second, and every scrape
itself serves a known number of requests: scrape ``n`` (from 0) finds
``STEP`` more canary requests than scrape ``n - 1``, 3 more latency
observations (1 of them in the ``le="0.1"`` bucket), and from ``ERRORS_FROM``
on 2 more 5xx. The canary's process restarts at ``RESET_AT`` (its counter drops
to ``STEP``), and a version ``fresh`` first appears at ``FRESH_FROM``. So a
window holding scrapes ``N - k + 1 .. N`` (its start halfway between scrape
``N - k`` and ``N - k + 1``) served exactly ``k * STEP`` canary requests,
whatever Prometheus' ``increase()`` extrapolates; the expected figures are
sums of what was served, never read back from Prometheus. Each case is
measured per deployment and through the batched path.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import prometheus_client
import pytest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from rollguard.metrics.batching import QueryBatcher
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.exporter import ExporterServer
from servers.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from support import wait_until

pytestmark = pytest.mark.real_server

STEP = 7
RESET_AT = 26
ERRORS_FROM = 30
FRESH_FROM = 30
SCRAPES = 34  # scrapes 0 .. 33 are enough for every case


class Steps(Collector):
    """Counters that grow by a known amount at every scrape (each collect is one)."""

    def __init__(self) -> None:
        self.scrapes = 0
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # registering must not count as a scrape

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            n = self.scrapes
            self.scrapes += 1
        requests = CounterMetricFamily("http_requests", "Requests.", labels=["version", "code"])
        since_start = n + 1 if n < RESET_AT else n - RESET_AT + 1
        requests.add_metric(["canary", "200"], STEP * since_start)
        if n >= ERRORS_FROM:
            requests.add_metric(["canary", "500"], 2 * (n - ERRORS_FROM + 1))
        if n >= FRESH_FROM:
            requests.add_metric(["fresh", "200"], STEP * (n - FRESH_FROM + 1))
        yield requests
        observed = n + 1
        duration = HistogramMetricFamily(
            "http_request_duration_seconds", "Latency.", labels=["version"]
        )
        duration.add_metric(
            ["canary"], [("0.1", observed), ("+Inf", 3 * observed)], sum_value=0.5 * observed
        )
        yield duration


@dataclass(frozen=True)
class Scraped:
    prometheus: PrometheusServer
    times: list[float]  # when scrape n was taken, by Prometheus' clock


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    registry = prometheus_client.CollectorRegistry()
    registry.register(Steps())
    exporter = ExporterServer()
    exporter.set(registry=registry)
    exporter.start()
    try:
        target = ScrapeTarget(f"127.0.0.1:{exporter.port}", {}, job="counts")
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), [target]) as prometheus:
            selector = 'http_requests_total{job="counts",version="canary",code="200"}'
            wait_until(
                lambda: (prometheus.value(f"count_over_time({selector}[10m])") or 0) >= SCRAPES,
                timeout=SCRAPES * 3 + 30,
                interval=0.5,
                what=f"{SCRAPES} scrapes of the exporter",
            )
            [series] = prometheus.query(f"{selector}[10m]")
            values = series["values"]
            assert isinstance(values, list)
            # every scrape found what was served: none failed, none is missing
            expected = [STEP * (n + 1 if n < RESET_AT else n - RESET_AT + 1) for n in range(30)]
            assert [int(v) for _, v in values[:30]] == expected
            yield Scraped(prometheus, [float(t) for t, _ in values])
    finally:
        exporter.stop()


def _source(url: str, stable: str, canary: str) -> PrometheusSource:
    return PrometheusSource.model_validate(
        {
            "address": url,
            "stable_selector": f'job="counts",version="{stable}"',
            "canary_selector": f'job="counts",version="{canary}"',
        }
    )


@dataclass(frozen=True)
class Window:
    """The window holding scrapes ``last - k + 1 .. last``."""

    last: int
    k: int

    def at(self, scraped: Scraped) -> tuple[float, float]:
        """(end, length in seconds, to the millisecond) of the window."""
        times = scraped.times
        end = times[self.last]
        start = (times[self.last - self.k] + times[self.last - self.k + 1]) / 2
        return end, round(end - start, 3)


def _measure(
    scraped: Scraped, window: Window, signal: Signal, *, version: str = "canary"
) -> Measurement:
    """The measurement per deployment; the batched path must give the very same."""
    end, seconds = window.at(scraped)
    source = _source(scraped.prometheus.url, version, version)
    query = Query(signal, Version.CANARY, seconds)

    async def go() -> tuple[Measurement, Measurement]:
        alone = PrometheusProvider(source)
        batched = QueryBatcher().provider(source)
        try:
            [one] = await alone.measure([query], now=end)
            [other] = await batched.measure([query], now=end)
            return one, other
        finally:
            await alone.aclose()
            await batched.aclose()

    one, other = asyncio.run(go())
    assert one == other
    return one


@pytest.mark.parametrize("k", [2, 3, 21])
def test_requests_are_the_requests_served_at_any_samples_per_window(
    scraped: Scraped, k: int
) -> None:
    window = Window(last=24, k=k)
    measured = _measure(scraped, window, Signal.REQUESTS)
    assert measured.phase is Phase.OK, measured.reason
    assert measured.value == measured.requests == k * STEP  # whole requests, none invented
    end, seconds = window.at(scraped)
    extrapolated = scraped.prometheus.value(
        f'sum(increase(http_requests_total{{version="canary"}}[{round(seconds * 1000)}ms] '
        f"@ {end:.3f}))"
    )
    assert extrapolated is not None
    assert extrapolated != k * STEP  # what the tests were fed before: more than was served


@pytest.mark.parametrize("k", [2, 3, 21])
def test_latency_buckets_count_the_observations_of_the_window(scraped: Scraped, k: int) -> None:
    measured = _measure(scraped, Window(last=24, k=k), Signal.LATENCY_BUCKETS)
    assert measured.phase is Phase.OK, measured.reason
    assert measured.buckets == {0.1: k, math.inf: 3 * k}
    assert measured.value == measured.requests == 3 * k


def test_a_counter_reset_inside_the_window_counts_from_zero(scraped: Scraped) -> None:
    # scrapes 25, 26 (the restart: STEP * 26 drops to STEP) and 27
    measured = _measure(scraped, Window(last=RESET_AT + 1, k=3), Signal.REQUESTS)
    assert measured.phase is Phase.OK, measured.reason
    assert measured.value == 3 * STEP


def test_a_series_new_in_the_window_counts_from_zero(scraped: Scraped) -> None:
    # scrapes 29, 30 and 31: the first 5xx appear at 30 (2 of them), 2 more at 31
    measured = _measure(scraped, Window(last=ERRORS_FROM + 1, k=3), Signal.ERRORS)
    assert measured.phase is Phase.OK, measured.reason
    assert measured.value == 4
    assert measured.requests == 3 * STEP + 4


def test_errors_are_zero_while_requests_are_counted(scraped: Scraped) -> None:
    measured = _measure(scraped, Window(last=24, k=3), Signal.ERRORS)
    assert (measured.phase, measured.value, measured.requests) == (Phase.OK, 0, 3 * STEP)


def test_a_version_first_seen_in_the_window_counts_only_what_its_samples_show(
    scraped: Scraped,
) -> None:
    # "fresh" has samples at 30, 31, 32 and none before: nothing says its first value was
    # not counted before, so only the growth between its samples counts (documented)
    measured = _measure(scraped, Window(last=FRESH_FROM + 2, k=3), Signal.REQUESTS, version="fresh")
    assert measured.phase is Phase.OK, measured.reason
    assert measured.value == 2 * STEP


@pytest.mark.parametrize("signal", [Signal.REQUESTS, Signal.ERRORS, Signal.LATENCY_BUCKETS])
def test_a_missing_series_is_no_data_not_zero(scraped: Scraped, signal: Signal) -> None:
    for version, window in (("gone", Window(last=24, k=3)), ("fresh", Window(last=28, k=3))):
        measured = _measure(scraped, window, signal, version=version)
        assert measured.phase is Phase.NO_DATA, (version, measured)
        assert measured.value is None


def test_requests_and_errors_share_the_requests_samples(scraped: Scraped) -> None:
    end, seconds = Window(last=ERRORS_FROM + 1, k=3).at(scraped)
    source = _source(scraped.prometheus.url, "canary", "canary")
    queries = [Query(s, Version.CANARY, seconds) for s in (Signal.REQUESTS, Signal.ERRORS)]
    measured: list[Measurement] = []

    async def go() -> None:
        provider = PrometheusProvider(source)
        try:
            measured.extend(await provider.measure(queries, now=end))
        finally:
            await provider.aclose()

    # the requests' samples in and before the window, asked once for both; the 5xx's
    assert scraped.prometheus.count_queries(lambda: asyncio.run(go())) == 4
    assert [m.value for m in measured] == [3 * STEP + 4, 4]
