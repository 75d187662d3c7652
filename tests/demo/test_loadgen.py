"""The load generator keeps its schedule and records what users saw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from demo_servers import deployment, scrape, service_in_thread, value
from rollguard.demo.loadgen import LoadGenerator, LoadReport, Sample
from rollguard.demo.servers import ThreadServer
from support import free_port


@pytest.fixture
def svc() -> Iterator[ThreadServer]:
    with service_in_thread("v1", role="stable") as server:
        yield server


def test_stops_at_its_request_bound(svc: ThreadServer) -> None:
    generator = LoadGenerator(f"{svc.url}/api/x", rate_per_second=200, max_requests=60)
    report = asyncio.run(generator.run())
    assert len(report.samples) + report.skipped == 60
    assert {sample.status for sample in report.samples} == {200}
    assert value(scrape(svc.url), "http_requests_total", code="200") == len(report.samples)


def test_stops_at_its_time_bound_having_kept_the_rate(svc: ThreadServer) -> None:
    # The schedule sends request i at i / rate: 1.5 s at 40 rps is 60 requests, however slow
    # the machine, so the count is the loose bound (nothing here times the run).
    generator = LoadGenerator(f"{svc.url}/api/x", rate_per_second=40, max_seconds=1.5)
    report = asyncio.run(generator.run())
    assert len(report.samples) + report.skipped == 60
    assert len(report.samples) >= 50
    assert report.error_rate_percent() == 0.0


def test_error_rate_by_time_range(svc: ThreadServer) -> None:
    async def scenario() -> tuple[LoadReport, float, float]:
        generator = LoadGenerator(f"{svc.url}/api/x", rate_per_second=50, max_requests=120)
        task = asyncio.create_task(generator.run())
        async with httpx.AsyncClient() as client:
            while len(generator.report.samples) < 30:  # noqa: ASYNC110 a count, no event to await
                await asyncio.sleep(0.02)
            before = time.time()
            await client.post(f"{svc.url}/simulate/error_rate/50")
            after = time.time()
        return await task, before, after

    report, before, after = asyncio.run(scenario())
    # Requests answered before the fault was switched on all succeeded; one sent
    # earlier but still in flight on a loaded machine may meet the fault.
    answered_before = [s for s in report.samples if s.sent_at + s.latency_ms / 1000 < before]
    assert len(answered_before) >= 20
    assert {s.status for s in answered_before} == {200}
    during = report.error_rate_percent(since=after)
    assert during is not None
    assert 40.0 <= during <= 60.0  # every other request fails once the fault is on
    intervals = report.intervals(0.5)
    assert sum(interval.requests for interval in intervals) == len(report.samples)
    assert sum(interval.errors for interval in intervals) == sum(
        sample.status == 500 for sample in report.samples
    )


def test_records_the_upstream_behind_the_router() -> None:
    with deployment(canary_percent=20) as dep:
        report = asyncio.run(
            LoadGenerator(f"{dep.router.url}/api/x", rate_per_second=100, max_requests=50).run()
        )
    upstreams = [sample.upstream for sample in report.samples]
    assert upstreams.count("canary") == 10
    assert upstreams.count("stable") == 40


def test_a_dead_target_counts_as_errors_users_saw() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/x"
    report = asyncio.run(LoadGenerator(url, rate_per_second=100, max_requests=5).run())
    assert [sample.status for sample in report.samples] == [0] * 5
    assert report.error_rate_percent() == 100.0


def test_stop_ends_the_run_early(svc: ThreadServer) -> None:
    async def scenario() -> LoadReport:
        generator = LoadGenerator(f"{svc.url}/api/x", rate_per_second=50, max_seconds=60)
        task = asyncio.create_task(generator.run())
        while len(generator.report.samples) < 5:  # noqa: ASYNC110 a count, no event to await
            await asyncio.sleep(0.02)
        generator.stop()
        return await task

    report = asyncio.run(scenario())
    assert 5 <= len(report.samples) < 3000


def test_empty_ranges_have_no_error_rate() -> None:
    report = LoadReport(target_rate=1, samples=[Sample(10.0, 200, None)])
    assert report.error_rate_percent(since=11.0) is None
    assert report.error_rate_percent(until=10.0) is None
    assert report.error_rate_percent(since=10.0) == 0.0


@pytest.mark.parametrize("bad", [{"rate_per_second": 0}, {"max_requests": 0}, {"max_seconds": -1}])
def test_unbounded_or_silly_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        LoadGenerator("http://127.0.0.1:1/", **bad)  # type: ignore[arg-type]


def test_latency_percentile_is_nearest_rank_over_answered_requests() -> None:
    samples = [Sample(float(i), 200, "stable", float(i)) for i in range(1, 101)]
    samples.append(Sample(200.0, 0, None, 9_999.0))  # no answer: no latency to count
    report = LoadReport(target_rate=1, samples=samples)
    assert report.latency_p95_ms() == 95.0
    assert report.latency_p95_ms(since=91.0) == 100.0
    assert report.latency_p95_ms(since=150.0) is None


def test_latency_is_measured_per_request(svc: ThreadServer) -> None:
    httpx.post(f"{svc.url}/simulate/latency/80").raise_for_status()
    generator = LoadGenerator(f"{svc.url}/api/x", rate_per_second=50, max_requests=5)
    report = asyncio.run(generator.run())
    assert min(sample.latency_ms for sample in report.samples) >= 80.0
