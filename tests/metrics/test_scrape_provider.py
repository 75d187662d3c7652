"""The scrape provider against real HTTP exporters on loopback.

Each exporter is a prometheus_client registry served over HTTP (conftest's
``ExporterServer``); the test drives what it counts and a simulated clock for
``collect``/``measure``, and checks the provider's values against what was
served, worked out by hand.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import httpx
import prometheus_client as pc
import pytest

from rollguard.metrics.scrape import MAX_BODY_BYTES, ScrapeProvider
from rollguard.policy.model import ScrapeSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.exporter import ExporterServer
from servers.metrics_app import running_metrics_app
from support import free_port

WINDOW = 30.0


class Service:
    """One version's instruments in its own registry, as the service would expose them."""

    def __init__(self, *, suspicious: bool = False) -> None:
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.requests = pc.Counter("http_requests", "Requests.", ["code"], registry=r)
        self.latency = pc.Histogram(
            "http_request_duration_seconds", "Latency.", buckets=[0.1, 0.5, 1.0], registry=r
        )
        self.memory = pc.Gauge("process_resident_memory_bytes", "RSS.", registry=r)
        self.cpu = pc.Counter("process_cpu_seconds", "CPU.", registry=r)
        self.connections = pc.Gauge("http_active_connections", "Open.", registry=r)
        self.vulnerabilities = pc.Gauge("vulnerabilities", "Found.", ["severity"], registry=r)
        if suspicious:
            self.suspicious = pc.Counter("rollguard_suspicious_requests", "Bad.", registry=r)

    def serve(self, code: str, seconds: float, times: int) -> None:
        for _ in range(times):
            self.requests.labels(code).inc()
            self.latency.observe(seconds)


def measure_all(
    provider: ScrapeProvider, version: Version, signals: Sequence[Signal], now: float
) -> dict[Signal, Measurement]:
    queries = [Query(signal, version, WINDOW) for signal in signals]
    measured = asyncio.run(provider.measure(queries, now=now))
    return {m.query.signal: m for m in measured}


@pytest.fixture
def served(
    scrape_source: ScrapeSource, stable_server: ExporterServer, canary_server: ExporterServer
) -> dict[Version, dict[Signal, Measurement]]:
    """Three scrapes 10 s apart of two exporters doing known work; every signal measured."""
    stable, canary = Service(), Service(suspicious=True)
    stable_server.set(registry=stable.registry)
    canary_server.set(registry=canary.registry)
    stable.serve("200", 0.05, 100)  # before the window: not counted
    stable.cpu.inc(10)
    canary.vulnerabilities.labels("Critical").set(2)
    canary.vulnerabilities.labels("HIGH").set(11)

    def first_interval() -> None:
        stable.serve("200", 0.05, 95)
        stable.serve("500", 0.7, 5)  # the 500 series first appears here
        stable.cpu.inc(2)
        canary.serve("200", 0.05, 80)
        canary.serve("500", 0.05, 17)
        canary.serve("401", 0.05, 3)
        canary.suspicious.inc()

    def second_interval() -> None:
        stable.serve("200", 0.05, 95)
        stable.serve("200", 0.7, 5)
        stable.cpu.inc(2)
        stable.memory.set(200 * 1024 * 1024)
        stable.connections.set(17)
        canary.serve("200", 0.05, 80)
        canary.serve("503", 0.05, 17)
        canary.serve("403", 0.05, 3)
        canary.suspicious.inc()

    async def scenario() -> dict[Version, dict[Signal, Measurement]]:
        provider = ScrapeProvider(scrape_source)
        try:
            await provider.collect(now=1000)
            first_interval()
            await provider.collect(now=1010)
            second_interval()
            await provider.collect(now=1020)
            out = {}
            for version in Version:
                queries = [Query(signal, version, WINDOW) for signal in Signal]
                measured = await provider.measure(queries, now=1020)
                out[version] = {m.query.signal: m for m in measured}
            return out
        finally:
            await provider.aclose()

    return asyncio.run(scenario())


def test_stable_values_equal_what_its_exporter_served(
    served: dict[Version, dict[Signal, Measurement]],
) -> None:
    got = served[Version.STABLE]
    assert got[Signal.REQUESTS].value == 200
    assert got[Signal.ERRORS].value == 5
    assert got[Signal.ERROR_RATE_PERCENT].value == pytest.approx(2.5)
    assert got[Signal.ERROR_RATE_PERCENT].requests == 200
    # 190 fast (<= 0.1 s) and 10 slow (0.5-1 s): p95's rank 190 tops the first bucket
    assert got[Signal.LATENCY_P95_MS].value == pytest.approx(100.0)
    assert got[Signal.LATENCY_P50_MS].value == pytest.approx(100 / 190 * 100)
    assert got[Signal.LATENCY_MEAN_MS].value == pytest.approx(82.5)
    assert got[Signal.LATENCY_BUCKETS].buckets == {0.1: 190, 0.5: 190, 1.0: 200, math.inf: 200}
    assert got[Signal.MEMORY_MB].value == 200
    assert got[Signal.CONNECTIONS].value == 17
    assert got[Signal.CPU_PERCENT].value == pytest.approx(4 / 20 * 100)
    assert got[Signal.UNAUTHORIZED_PER_MINUTE].value == 0
    assert got[Signal.SUSPICIOUS_EVENTS].phase is Phase.NO_DATA
    assert "not exposed" in got[Signal.SUSPICIOUS_EVENTS].reason
    assert got[Signal.VULNERABILITIES_CRITICAL].phase is Phase.NO_DATA


def test_canary_values_equal_what_its_exporter_served(
    served: dict[Version, dict[Signal, Measurement]],
) -> None:
    got = served[Version.CANARY]
    assert got[Signal.REQUESTS].value == 200
    assert got[Signal.ERROR_RATE_PERCENT].value == pytest.approx(17.0)
    # 6 attempts over the 20 s the scrapes cover
    assert got[Signal.UNAUTHORIZED_PER_MINUTE].value == pytest.approx(18.0)
    assert got[Signal.SUSPICIOUS_EVENTS].value == 2
    assert got[Signal.VULNERABILITIES_CRITICAL].value == 2
    assert got[Signal.VULNERABILITIES_HIGH].value == 11


def test_consecutive_short_windows_count_each_request_once(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable = Service()
    stable_server.set(registry=stable.registry)
    served = [7, 0, 12, 5]

    async def scenario() -> list[float | None]:
        provider = ScrapeProvider(scrape_source)
        counted = []
        try:
            await provider.collect(now=0)
            for tick, n in enumerate(served, start=1):
                stable.serve("200", 0.01, n)
                await provider.collect(now=tick * 5.0)
                query = Query(Signal.REQUESTS, Version.STABLE, 5.0)
                (measured,) = await provider.measure([query], now=tick * 5.0)
                counted.append(measured.value)
        finally:
            await provider.aclose()
        return counted

    assert asyncio.run(scenario()) == served


def test_an_injected_client_is_used_and_left_open(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable_server.set(registry=Service().registry)

    async def scenario() -> bool:
        async with httpx.AsyncClient(headers={"User-Agent": "rollguard-test"}) as client:
            provider = ScrapeProvider(scrape_source, http_client=client)
            await provider.collect(now=1)
            await provider.aclose()
            return client.is_closed

    assert asyncio.run(scenario()) is False
    assert stable_server.requests == 1
    assert "text/plain;version=0.0.4" in stable_server.accept_headers[0]


def test_openmetrics_responses_are_read_too(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable = Service()
    stable_server.set(registry=stable.registry, openmetrics=True)

    async def scenario() -> ScrapeProvider:
        provider = ScrapeProvider(scrape_source)
        await provider.collect(now=0)
        stable.serve("500", 0.01, 4)
        stable.serve("200", 0.01, 4)
        await provider.collect(now=10)
        return provider

    provider = asyncio.run(scenario())
    got = measure_all(provider, Version.STABLE, [Signal.ERROR_RATE_PERCENT], now=10)
    asyncio.run(provider.aclose())
    assert got[Signal.ERROR_RATE_PERCENT].value == pytest.approx(50.0)


def test_a_real_instrumented_app_with_process_metrics() -> None:
    """infra's MetricsApp: real requests, and prometheus_client's ProcessCollector."""
    with running_metrics_app() as app:
        app.declare("web", "stable")
        source = ScrapeSource.model_validate(
            {"stable": app.url + "/metrics", "canary": app.url + "/metrics"}
        )

        async def scenario() -> dict[Signal, Measurement]:
            provider = ScrapeProvider(source)
            try:
                await provider.collect(now=0)
                async with httpx.AsyncClient(base_url=app.url) as client:
                    for code in ("200", "200", "200", "500"):
                        await client.get("/serve", params={"code": code, "version": "stable"})
                await provider.collect(now=5)
                signals = [Signal.ERROR_RATE_PERCENT, Signal.MEMORY_MB, Signal.CPU_PERCENT]
                queries = [Query(signal, Version.STABLE, 10.0) for signal in signals]
                return {m.query.signal: m for m in await provider.measure(queries, now=5)}
            finally:
                await provider.aclose()

        got = asyncio.run(scenario())
    assert got[Signal.ERROR_RATE_PERCENT].value == pytest.approx(25.0)
    assert got[Signal.ERROR_RATE_PERCENT].requests == 4
    assert got[Signal.MEMORY_MB].phase is Phase.OK
    assert got[Signal.MEMORY_MB].value is not None
    assert 5 < got[Signal.MEMORY_MB].value < 100_000  # this test process's RSS, in MiB
    assert got[Signal.CPU_PERCENT].phase is Phase.OK


# --- failures are data: never a zero ---------------------------------------------------


def collect_and_measure(
    source: ScrapeSource, signals: Sequence[Signal], *times: float
) -> dict[Signal, Measurement]:
    async def scenario() -> dict[Signal, Measurement]:
        provider = ScrapeProvider(source)
        try:
            for now in times:
                await provider.collect(now=now)
            queries = [Query(signal, Version.STABLE, WINDOW) for signal in signals]
            return {m.query.signal: m for m in await provider.measure(queries, now=times[-1])}
        finally:
            await provider.aclose()

    return asyncio.run(scenario())


def test_endpoint_down_is_an_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    source = ScrapeSource.model_validate({"stable": url, "canary": url, "timeout": 1})
    got = collect_and_measure(source, list(Signal), 0, 10)
    for measurement in got.values():
        assert measurement.phase is Phase.ERROR
        assert measurement.value is None
        assert url in measurement.reason


def test_a_timeout_is_an_error(scrape_source: ScrapeSource, stable_server: ExporterServer) -> None:
    stable_server.set(registry=Service().registry, delay_seconds=1.0)
    source = scrape_source.model_copy(update={"timeout": 0.1})
    got = collect_and_measure(source, [Signal.MEMORY_MB], 0)
    assert got[Signal.MEMORY_MB].phase is Phase.ERROR
    assert "timed out after 0.1s" in got[Signal.MEMORY_MB].reason


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            {"body": "<html><body>Sign in</body></html>", "content_type": "text/html"},
            "not Prometheus text exposition: the response is text/html",
        ),
        (
            {"body": "<!doctype html><title>502</title>", "content_type": "text/plain"},
            "not Prometheus text exposition: the body looks like HTML",
        ),
        ({"body": "all good, thanks\n"}, "not Prometheus text exposition"),
        ({"body": "upstream error", "status": 502}, "returned HTTP 502"),
        ({"body": "# x\n" * (MAX_BODY_BYTES // 4 + 1)}, f"more than {MAX_BODY_BYTES} bytes"),
    ],
)
def test_bad_answers_are_errors_naming_the_url(
    scrape_source: ScrapeSource,
    stable_server: ExporterServer,
    reply: dict[str, object],
    expected: str,
) -> None:
    stable_server.set(**reply)
    got = collect_and_measure(scrape_source, [Signal.ERROR_RATE_PERCENT, Signal.MEMORY_MB], 0, 5)
    for measurement in got.values():
        assert measurement.phase is Phase.ERROR
        assert expected in measurement.reason
        assert stable_server.url in measurement.reason


def test_recovers_once_the_endpoint_answers_again(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable = Service()
    stable.memory.set(64 * 1024 * 1024)

    async def scenario() -> list[Phase]:
        provider = ScrapeProvider(scrape_source)
        phases = []
        query = Query(Signal.MEMORY_MB, Version.STABLE, WINDOW)
        try:
            for now, reply in ((0, {"status": 503}), (5, {"registry": stable.registry})):
                stable_server.set(**reply)
                await provider.collect(now=now)
                phases.append((await provider.measure([query], now=now))[0].phase)
        finally:
            await provider.aclose()
        return phases

    assert asyncio.run(scenario()) == [Phase.ERROR, Phase.OK]


def test_before_any_scrape_and_with_one_scrape_is_no_data(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable = Service()
    stable.serve("200", 0.01, 10)
    stable_server.set(registry=stable.registry)
    nothing = collect_and_measure(scrape_source, [Signal.ERROR_RATE_PERCENT], 0)
    assert nothing[Signal.ERROR_RATE_PERCENT].phase is Phase.NO_DATA
    assert "needs two to compare" in nothing[Signal.ERROR_RATE_PERCENT].reason

    async def unscraped() -> Measurement:
        provider = ScrapeProvider(scrape_source)
        query = Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, WINDOW)
        (measured,) = await provider.measure([query], now=0)
        await provider.aclose()
        return measured

    measured = asyncio.run(unscraped())
    assert measured.phase is Phase.NO_DATA
    assert "not been scraped yet" in measured.reason


def test_no_traffic_is_no_data_not_a_zero_error_rate(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable = Service()
    stable.serve("200", 0.01, 10)
    stable_server.set(registry=stable.registry)
    got = collect_and_measure(
        scrape_source, [Signal.ERROR_RATE_PERCENT, Signal.LATENCY_P95_MS], 0, 10
    )
    for measurement in got.values():
        assert measurement.phase is Phase.NO_DATA
        assert "no requests in the window" in measurement.reason


def test_calls_closer_than_half_an_interval_do_not_scrape_again(
    scrape_source: ScrapeSource, stable_server: ExporterServer
) -> None:
    stable_server.set(registry=Service().registry)
    collect_and_measure(scrape_source, [Signal.MEMORY_MB], 0, 0.2, 0.4, 1.0)
    assert stable_server.requests == 2  # at 0 and at 1.0 (interval 1 s)


def test_a_password_in_the_url_is_never_shown() -> None:
    url = f"http://scraper:hunter2@127.0.0.1:{free_port()}/metrics"
    source = ScrapeSource.model_validate({"stable": url, "canary": url})
    got = collect_and_measure(source, [Signal.MEMORY_MB], 0)
    assert "hunter2" not in got[Signal.MEMORY_MB].reason
    assert "scraper:***@127.0.0.1" in got[Signal.MEMORY_MB].reason
