"""HAProxy's built-in Prometheus exporter as the metric source, through a real Prometheus."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.haproxy import BACKEND, HaproxyServer, running_haproxy
from servers.prometheus import ScrapeTarget, running_prometheus
from servers.version_http import running_version_servers
from support import wait_until

pytestmark = pytest.mark.real_server


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HaproxyServer]:
    with (
        running_version_servers("stable", "canary") as versions,
        running_haproxy(
            tmp_path / "haproxy",
            stable=versions["stable"].address,
            canary=versions["canary"].address,
            canary_weight=25,
        ) as server,
    ):
        yield server


def test_requests_per_server_from_haproxy_metrics(haproxy: HaproxyServer, tmp_path: Path) -> None:
    target = ScrapeTarget(f"127.0.0.1:{haproxy.port}", {}, job="haproxy")
    with running_prometheus(tmp_path / "prometheus", [target]) as prometheus:
        answered = haproxy.count_answers(100)
        series = f'haproxy_server_http_responses_total{{proxy="{BACKEND}",server="canary"}}'
        wait_until(
            lambda: prometheus.value(f"sum({series})") == answered["canary"],
            timeout=20,
            what="Prometheus to scrape HAProxy's counters",
        )
        at = prometheus.value(f"max(timestamp({series}))")
        assert at is not None
        source = PrometheusSource.model_validate(
            {
                "address": prometheus.url,
                "stable_selector": f'proxy="{BACKEND}",server="stable"',
                "canary_selector": f'proxy="{BACKEND}",server="canary"',
                "names": {"requests_total": "haproxy_server_http_responses_total"},
            }
        )
        queries = [
            Query(Signal.REQUESTS, Version.CANARY, 120),
            Query(Signal.REQUESTS, Version.STABLE, 120),
            Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, 120),
        ]

        async def go() -> list[Measurement]:
            provider = PrometheusProvider(source)
            try:
                return await provider.measure(queries, now=at)
            finally:
                await provider.aclose()

        canary, stable, error_rate = asyncio.run(go())
    assert answered == {"canary": 25, "stable": 75}
    assert (canary.phase, stable.phase, error_rate.phase) == (Phase.OK,) * 3
    assert canary.value == pytest.approx(25)
    assert stable.value == pytest.approx(75)
    assert error_rate.value == 0.0
