"""One contract, every provider that runs the policy's own queries (docs/metrics.md).

Each backend is the real server started on loopback by the tests (InfluxDB,
Graphite, moto's CloudWatch, a local JSON endpoint, real programs), or, where
the service cannot run here, its documented answers (said in each harness).
The same behaviours are checked on all of them: values per version, an empty
result is no data, a server that is down or hangs is an error, bad credentials
name the provider and never the secret, a bad query carries the backend's own
message, and a baseline can be made from the stable version's metrics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from backends import SECRET_ENV, STARTERS, Backend, Traffic

from rollguard.baselines.from_metrics import baseline_from_measurements, queries
from rollguard.metrics.factory import make_provider
from rollguard.policy.model import Policy
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.silent import silent_server
from support import free_port

WINDOW = 120.0
TRIGGER = {"error_rate_trigger": {"threshold": "5%"}}


@pytest.fixture(scope="module", params=sorted(STARTERS))
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """Each backend once per module, started on loopback."""
    with ExitStack() as stack, pytest.MonkeyPatch.context() as monkeypatch:
        directory = tmp_path_factory.mktemp(request.param)
        yield STARTERS[request.param](stack, directory, monkeypatch)


@pytest.fixture
def labels() -> tuple[str, str]:
    """Version labels of this test alone, so tests sharing a server never see each other."""
    run = uuid.uuid4().hex[:8]
    return f"stable-{run}", f"canary-{run}"


async def measure(
    source: dict[str, Any], wanted: list[Query], tmp_path: Path, *, now: float
) -> list[Measurement]:
    policy = Policy.model_validate({"target": {"deployment": "shop"}, "metrics": source, **TRIGGER})
    provider = make_provider(policy, base_dir=tmp_path)
    try:
        await provider.collect(now=now)
        return await provider.measure(wanted, now=now)
    finally:
        await provider.aclose()


def rate(version: Version) -> Query:
    return Query(Signal.ERROR_RATE_PERCENT, version, WINDOW)


async def test_values_are_measured_per_version(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    now = time.time()
    stable, canary = labels
    backend.feed(stable, Traffic(requests=200, errors=2), at=now - 5)
    backend.feed(canary, Traffic(requests=100, errors=7), at=now - 5)
    wanted = [rate(Version.STABLE), rate(Version.CANARY)]
    wanted += [Query(s, v, WINDOW) for v in Version for s in (Signal.REQUESTS, Signal.ERRORS)]
    got = await measure(backend.source(stable, canary), wanted, tmp_path, now=now)
    assert [m.phase for m in got] == [Phase.OK] * len(wanted), [m.reason for m in got]
    values = {(m.query.signal, m.query.version): m.value for m in got}
    assert values[(Signal.ERROR_RATE_PERCENT, Version.STABLE)] == pytest.approx(1.0)
    assert values[(Signal.ERROR_RATE_PERCENT, Version.CANARY)] == pytest.approx(7.0)
    assert values[(Signal.REQUESTS, Version.CANARY)] == pytest.approx(100)
    assert values[(Signal.ERRORS, Version.STABLE)] == pytest.approx(2)
    assert got[1].requests == pytest.approx(100)


async def test_counts_add_up_the_points_inside_the_window_only(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    if not backend.stores_points:
        pytest.skip(f"{backend.name} answers for the window itself; nothing is added up here")
    now = time.time()
    stable, canary = labels
    backend.feed(canary, Traffic(requests=1000, errors=1000), at=now - 400)  # before the window
    backend.feed(canary, Traffic(requests=30, errors=3), at=now - 100)
    backend.feed(canary, Traffic(requests=20, errors=2), at=now - 10)
    wanted = [rate(Version.CANARY)] + [
        Query(s, Version.CANARY, WINDOW) for s in (Signal.REQUESTS, Signal.ERRORS)
    ]
    got = await measure(backend.source(stable, canary), wanted, tmp_path, now=now)
    assert [m.phase for m in got] == [Phase.OK] * 3, [m.reason for m in got]
    assert [m.value for m in got] == [pytest.approx(10.0), 50, 5]


async def test_an_empty_result_is_no_data(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    stable, canary = labels  # nothing was written for either
    got = await measure(
        backend.source(stable, canary), [rate(Version.CANARY)], tmp_path, now=time.time()
    )
    assert got[0].phase is Phase.NO_DATA, got[0].reason
    assert got[0].value is None


async def test_a_server_that_is_down_is_an_error(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    source = backend.at_address(backend.source(*labels), f"http://127.0.0.1:{free_port()}")
    got = await measure(source, [rate(Version.CANARY)], tmp_path, now=time.time())
    assert got[0].phase is Phase.ERROR
    assert backend.down_words in got[0].reason


async def test_bad_credentials_name_the_provider_never_the_secret(
    backend: Backend,
    labels: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "wrong-" + uuid.uuid4().hex
    monkeypatch.setenv(SECRET_ENV, secret)
    source = backend.with_wrong_credentials(backend.source(*labels))
    got = await measure(source, [rate(Version.CANARY)], tmp_path, now=time.time())
    assert got[0].phase is Phase.ERROR
    assert "credentials" in got[0].reason
    assert backend.name.lower() in got[0].reason.lower().replace(" ", "")
    assert secret not in got[0].reason


async def test_a_bad_query_carries_the_backends_message(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    source, words = backend.with_bad_query(backend.source(*labels))
    got = await measure(
        source, [Query(Signal.REQUESTS, Version.CANARY, WINDOW)], tmp_path, now=time.time()
    )
    assert got[0].phase is Phase.ERROR
    assert words in got[0].reason


async def test_a_slow_server_times_out_into_an_error(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    with silent_server() as url:
        source = {**backend.hanging(backend.source(*labels), url), "timeout": "2s"}
        got = await measure(source, [rate(Version.CANARY)], tmp_path, now=time.time())
    assert got[0].phase is Phase.ERROR
    assert "in time" in got[0].reason


async def test_a_baseline_comes_from_the_stable_versions_metrics(
    backend: Backend, labels: tuple[str, str], tmp_path: Path
) -> None:
    now = time.time()
    stable, canary = labels
    backend.feed(stable, Traffic(requests=400, errors=4, latencies_ms=(10, 20, 30, 40)), at=now - 5)
    got = await measure(backend.source(stable, canary), queries(WINDOW), tmp_path, now=now)
    from datetime import UTC, datetime

    baseline = baseline_from_measurements(got, source="contract", timestamp=datetime.now(UTC))
    assert baseline.metrics.error_rate_percent == pytest.approx(1.0)
    assert baseline.metrics.avg_latency_ms == pytest.approx(25.0)
    assert 30 <= baseline.metrics.p95_latency_ms <= 40
    assert baseline.metrics.requests == 400
