"""The Prometheus provider against a real Prometheus scraping a real instrumented app.

Expected values come from what the app served (its own counters), and
measurements are taken at the timestamp of Prometheus' last sample, where
``increase`` needs no extrapolation, so counts compare exactly.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.signals import CustomSignal, Measurement, Phase, Query, Signal, Version
from servers.metrics_app import MetricsApp, running_metrics_app
from servers.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from support import free_port, wait_until

pytestmark = pytest.mark.real_server
WINDOW = 60.0


@pytest.fixture(scope="module")
def app() -> Iterator[MetricsApp]:
    with running_metrics_app() as served:
        yield served


@pytest.fixture(scope="module")
def prometheus(
    app: MetricsApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    target = ScrapeTarget(f"127.0.0.1:{app.port}", {"service": "shop"})
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), [target]) as server:
        yield server


@dataclass(frozen=True)
class Loaded:
    """A deployment that served known traffic, and the time of the last sample."""

    deployment: str
    at: float


def _send(
    app: MetricsApp, deployment: str, version: str, code: str, *, n: int, delay: float = 0
) -> None:
    params = {"deployment": deployment, "version": version, "code": code, "delay": delay}
    with httpx.Client(base_url=app.url) as client, ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: client.get("/serve", params=params), range(n)))


def _last_sample_at(prometheus: PrometheusServer, deployment: str, total: int) -> float:
    """Wait until Prometheus has scraped ``total`` requests; the time of that sample."""
    selector = f'{{deployment="{deployment}"}}'
    wait_until(
        lambda: prometheus.value(f"sum(http_requests_total{selector})") == total,
        timeout=20,
        what=f"Prometheus to scrape {total} requests of {deployment}",
    )
    at = prometheus.value(f"max(timestamp(http_requests_total{selector}))")
    assert at is not None
    return at


def _declare(app: MetricsApp, prometheus: PrometheusServer, deployment: str) -> None:
    """Create the series and wait until Prometheus has scraped them at zero."""
    app.declare(deployment, "stable")
    app.declare(deployment, "canary")
    wait_until(
        lambda: prometheus.value(f'count(http_requests_total{{deployment="{deployment}"}})') == 10,
        timeout=20,
        what="the declared series in Prometheus",
    )


@pytest.fixture(scope="module")
def loaded(app: MetricsApp, prometheus: PrometheusServer) -> Loaded:
    deployment = "checkout"
    app.declare(deployment, "stable")
    app.declare(deployment, "canary")
    app.connections.labels(deployment, "canary").set(7)
    _declare(app, prometheus, deployment)
    _send(app, deployment, "stable", "200", n=50)
    _send(app, deployment, "canary", "200", n=80)
    _send(app, deployment, "canary", "500", n=10)
    _send(app, deployment, "canary", "200", n=10, delay=0.3)
    _send(app, deployment, "canary", "401", n=6)
    return Loaded(deployment, _last_sample_at(prometheus, deployment, 156))


def _source(prometheus_url: str, deployment: str, **extra: object) -> PrometheusSource:
    return PrometheusSource.model_validate(
        {
            "address": prometheus_url,
            "stable_selector": f'deployment="{deployment}",version="stable"',
            "canary_selector": f'deployment="{deployment}",version="canary"',
            **extra,
        }
    )


def _measure(source: PrometheusSource, queries: Sequence[Query], at: float) -> list[Measurement]:
    async def go() -> list[Measurement]:
        provider = PrometheusProvider(source, backoff_seconds=0.01)
        try:
            return await provider.measure(queries, now=at)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def _served_quantile(app: MetricsApp, deployment: str, version: str, q: float) -> float:
    """Prometheus' histogram_quantile, applied by hand to the app's own buckets (ms)."""
    samples = {
        float(s.labels["le"]): s.value
        for metric in app.duration.collect()
        for s in metric.samples
        if s.name.endswith("_bucket")
        and s.labels["deployment"] == deployment
        and s.labels["version"] == version
    }
    bounds = sorted(samples)
    rank = q * samples[math.inf]
    lower, below = 0.0, 0.0
    for bound in bounds:
        if samples[bound] >= rank:
            return 1000 * (lower + (bound - lower) * (rank - below) / (samples[bound] - below))
        lower, below = bound, samples[bound]
    raise AssertionError("rank above every bucket")


def test_values_match_what_the_app_served(
    app: MetricsApp, prometheus: PrometheusServer, loaded: Loaded
) -> None:
    source = _source(prometheus.url, loaded.deployment)
    signals = [
        Signal.ERROR_RATE_PERCENT,
        Signal.LATENCY_P95_MS,
        Signal.REQUESTS,
        Signal.ERRORS,
        Signal.UNAUTHORIZED_PER_MINUTE,
        Signal.CONNECTIONS,
    ]
    queries = [Query(s, v, WINDOW) for s in signals for v in (Version.CANARY, Version.STABLE)]
    got = {(m.query.signal, m.query.version): m for m in _measure(source, queries, loaded.at)}
    assert all(m.phase is Phase.OK for m in got.values()), [m.reason for m in got.values()]

    def value(signal: Signal, version: Version) -> float:
        found = got[(signal, version)].value
        assert found is not None
        return found

    canary_total = 80 + 10 + 10 + 6
    assert value(Signal.ERROR_RATE_PERCENT, Version.CANARY) == pytest.approx(
        100 * 10 / canary_total
    )
    assert value(Signal.ERROR_RATE_PERCENT, Version.STABLE) == 0.0  # served, no errors: a true zero
    assert got[(Signal.ERROR_RATE_PERCENT, Version.CANARY)].requests == pytest.approx(canary_total)
    assert value(Signal.REQUESTS, Version.CANARY) == pytest.approx(canary_total)
    assert value(Signal.REQUESTS, Version.STABLE) == pytest.approx(50)
    assert value(Signal.ERRORS, Version.CANARY) == pytest.approx(10)
    assert value(Signal.UNAUTHORIZED_PER_MINUTE, Version.CANARY) == pytest.approx(6 * 60 / WINDOW)
    assert value(Signal.CONNECTIONS, Version.CANARY) == pytest.approx(7)
    expected_p95 = _served_quantile(app, loaded.deployment, "canary", 0.95)
    assert 250 < expected_p95 <= 500  # the ten slow requests sit in the (0.25, 0.5] bucket
    assert value(Signal.LATENCY_P95_MS, Version.CANARY) == pytest.approx(expected_p95)
    assert value(Signal.LATENCY_P95_MS, Version.STABLE) < 250


def test_latency_buckets_are_the_served_histogram(
    app: MetricsApp, prometheus: PrometheusServer, loaded: Loaded
) -> None:
    source = _source(prometheus.url, loaded.deployment)
    [measured] = _measure(
        source, [Query(Signal.LATENCY_BUCKETS, Version.CANARY, WINDOW)], loaded.at
    )
    served = {
        float(s.labels["le"]): s.value
        for metric in app.duration.collect()
        for s in metric.samples
        if s.name.endswith("_bucket")
        and s.labels["deployment"] == loaded.deployment
        and s.labels["version"] == "canary"
    }
    assert measured.phase is Phase.OK
    assert dict(measured.buckets) == pytest.approx(served)
    assert measured.value == pytest.approx(106)


def test_process_memory_and_cpu(
    app: MetricsApp, prometheus: PrometheusServer, loaded: Loaded
) -> None:
    source = PrometheusSource.model_validate(
        {
            "address": prometheus.url,
            "stable_selector": 'job="app"',
            "canary_selector": 'service="shop"',
        }
    )
    queries = [
        Query(Signal.MEMORY_MB, Version.CANARY, 10),
        Query(Signal.CPU_PERCENT, Version.STABLE, 10),
    ]
    memory, cpu = _measure(source, queries, loaded.at)
    text = httpx.get(f"{app.url}/metrics").text
    served_bytes = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("process_resident_memory_bytes ")
    )
    assert memory.phase is Phase.OK
    assert memory.value == pytest.approx(served_bytes / 1048576, rel=0.25)
    assert cpu.phase is Phase.OK
    assert cpu.value is not None
    assert 0 <= cpu.value <= 100 * 64


def test_a_trigger_query_runs_verbatim_with_placeholders(
    prometheus: PrometheusServer, loaded: Loaded
) -> None:
    source = _source(prometheus.url, loaded.deployment)
    own = 'sum(increase(http_requests_total{$selector,code="401"}[$window]))'
    queries = [Query(Signal.UNAUTHORIZED_PER_MINUTE, v, WINDOW, promql=own) for v in Version]
    stable, canary = _measure(source, queries, loaded.at)
    assert (stable.value, canary.value) == (pytest.approx(0), pytest.approx(6))


def test_idle_version_is_no_data_not_zero(app: MetricsApp, prometheus: PrometheusServer) -> None:
    _declare(app, prometheus, "idle")
    at = prometheus.value('max(timestamp(http_requests_total{deployment="idle"}))')
    assert at is not None
    source = _source(prometheus.url, "idle")
    signals = [Signal.ERROR_RATE_PERCENT, Signal.LATENCY_P95_MS, Signal.LATENCY_MEAN_MS]
    measured = _measure(source, [Query(s, Version.CANARY, WINDOW) for s in signals], at)
    assert [m.phase for m in measured] == [Phase.NO_DATA] * 3
    assert all(m.value is None and m.reason for m in measured)


def test_unknown_selector_is_no_data(prometheus: PrometheusServer, loaded: Loaded) -> None:
    source = _source(prometheus.url, "does-not-exist")
    signals = [Signal.ERROR_RATE_PERCENT, Signal.REQUESTS, Signal.ERRORS, Signal.MEMORY_MB]
    measured = _measure(source, [Query(s, Version.CANARY, WINDOW) for s in signals], loaded.at)
    assert [m.phase for m in measured] == [Phase.NO_DATA] * 4
    assert "no series matched" in measured[0].reason


@pytest.mark.parametrize(
    ("promql", "expected"),
    [
        ("sum(rate(http_requests_total[$window]", "bad_data"),
        ("http_requests_total{$selector}", "aggregate it to one"),
    ],
)
def test_bad_queries_are_errors_with_the_reason(
    prometheus: PrometheusServer, loaded: Loaded, promql: str, expected: str
) -> None:
    source = _source(prometheus.url, loaded.deployment)
    [measured] = _measure(
        source, [Query(Signal.REQUESTS, Version.CANARY, WINDOW, promql=promql)], loaded.at
    )
    assert measured.phase is Phase.ERROR
    assert expected in measured.reason
    assert measured.value is None


def test_nan_and_infinity_are_no_data(prometheus: PrometheusServer, loaded: Loaded) -> None:
    source = _source(prometheus.url, loaded.deployment)
    queries = [
        Query(Signal.REQUESTS, Version.CANARY, WINDOW, promql="vector(0) / vector(0)"),
        Query(Signal.REQUESTS, Version.CANARY, WINDOW, promql="vector(1) / vector(0)"),
        Query(Signal.REQUESTS, Version.CANARY, WINDOW, promql="-1 / 0"),
    ]
    measured = _measure(source, queries, loaded.at)
    assert [m.phase for m in measured] == [Phase.NO_DATA] * 3
    assert [
        "NaN" in measured[0].reason,
        "inf" in measured[1].reason,
        "inf" in measured[2].reason,
    ] == [True] * 3


def test_unreachable_prometheus_is_an_error(tmp_path: Path) -> None:
    source = _source(f"http://127.0.0.1:{free_port()}", "x", retries=2)
    [measured] = _measure(source, [Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, WINDOW)], 1e9)
    assert measured.phase is Phase.ERROR
    assert "cannot reach Prometheus" in measured.reason


def test_prometheus_going_down_mid_watch(app: MetricsApp, tmp_path: Path) -> None:
    target = ScrapeTarget(f"127.0.0.1:{app.port}", {"service": "shop"})
    with running_prometheus(tmp_path / "short-lived", [target]) as server:
        source = PrometheusSource.model_validate(
            {
                "address": server.url,
                "stable_selector": 'job="app"',
                "canary_selector": 'job="app"',
                "retries": 1,
            }
        )
        query = Query(Signal.MEMORY_MB, Version.CANARY, 30)

        async def watch() -> tuple[Measurement, Measurement]:
            provider = PrometheusProvider(source, backoff_seconds=0.01)
            try:
                loop = asyncio.get_running_loop()
                [before] = await provider.measure([query], now=_now())
                await loop.run_in_executor(None, server.stop)
                [after] = await provider.measure([query], now=_now())
                return before, after
            finally:
                await provider.aclose()

        before, after = asyncio.run(watch())
    assert before.phase is Phase.OK
    assert after.phase is Phase.ERROR
    assert after.value is None
    assert server.url.removeprefix("http://") in after.reason


def _now() -> float:
    import time

    return time.time()


def test_custom_signals_run_their_own_promql(prometheus: PrometheusServer, loaded: Loaded) -> None:
    """A custom ratio (401s over all requests) and gauge, defined under ``metrics.signals``."""
    source = _source(
        prometheus.url,
        loaded.deployment,
        signals={
            "unauthorized_share": {
                "errors": 'sum(increase(http_requests_total{$selector,code="401"}[$window]))',
                "requests": "sum(increase(http_requests_total{$selector}[$window]))",
            },
            "open_connections": {
                "unit": "connections",
                "query": "sum(http_active_connections{$selector})",
            },
        },
    )
    ratio = CustomSignal("unauthorized_share", "%", "ratio")
    requests, errors = ratio.counts()
    gauge = CustomSignal("open_connections", "connections", "gauge")
    queries = [Query(s, Version.CANARY, WINDOW) for s in (ratio, requests, errors, gauge)]
    queries.append(Query(ratio, Version.STABLE, WINDOW))
    got = _measure(source, queries, loaded.at)
    assert [m.phase for m in got] == [Phase.OK] * 5, [m.reason for m in got]
    canary_total = 80 + 10 + 10 + 6
    assert [m.value for m in got] == [
        pytest.approx(100 * 6 / canary_total),
        pytest.approx(canary_total),
        pytest.approx(6),
        pytest.approx(7),
        0.0,  # stable served 50 requests and no 401: a counted zero, not no data
    ]
