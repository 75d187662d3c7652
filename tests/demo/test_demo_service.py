"""The demo service's faults really show in its /metrics, scraped and parsed."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from demo_servers import scrape, service_in_thread, value
from rollguard.demo import service
from rollguard.demo.faults import BALLAST_NICENESS, Faults, yield_to_the_loop
from rollguard.demo.servers import ProcessServer, ThreadServer
from support import wait_until

MB = 1024 * 1024


@pytest.fixture
def svc() -> Iterator[ThreadServer]:
    with service_in_thread("v2") as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def test_answers_with_its_version_and_counts_only_application_requests(
    svc: ThreadServer, client: httpx.Client
) -> None:
    assert client.get(f"{svc.url}/").json()["version"] == "v2"
    assert client.get(f"{svc.url}/api/orders").json() == {"version": "v2", "path": "/api/orders"}
    client.get(f"{svc.url}/deployment/status")
    samples = scrape(svc.url)
    assert value(samples, "http_requests_total", code="200") == 2
    assert value(samples, "http_request_duration_seconds_count") == 2
    assert value(samples, "process_resident_memory_bytes") > 0
    assert ("process_cpu_seconds_total", frozenset()) in samples


def test_error_rate_fault_fails_exactly_that_share(svc: ThreadServer, client: httpx.Client) -> None:
    client.post(f"{svc.url}/simulate/error_rate/10").raise_for_status()
    statuses = [client.get(f"{svc.url}/api/x").status_code for _ in range(100)]
    assert statuses.count(500) == 10
    samples = scrape(svc.url)
    assert value(samples, "http_requests_total", code="500") == 10
    assert value(samples, "http_requests_total", code="200") == 90


def test_latency_fault_moves_the_histogram(svc: ThreadServer, client: httpx.Client) -> None:
    client.get(f"{svc.url}/api/x")
    fast = scrape(svc.url)
    client.post(f"{svc.url}/simulate/latency/60").raise_for_status()
    for _ in range(4):
        client.get(f"{svc.url}/api/x")
    slow = scrape(svc.url)
    # The four slow requests all land above the 50 ms bucket's bound.
    below_50ms = value(slow, "http_request_duration_seconds_bucket", le="0.05") - value(
        fast, "http_request_duration_seconds_bucket", le="0.05"
    )
    assert below_50ms == 0
    added = value(slow, "http_request_duration_seconds_sum") - value(
        fast, "http_request_duration_seconds_sum"
    )
    assert added >= 4 * 0.060


def test_memory_fault_grows_and_releases_the_resident_set(client: httpx.Client) -> None:
    child: ProcessServer = service.start("v2")  # a process of its own, so RSS is its own
    try:
        before = value(scrape(child.url), "process_resident_memory_bytes")
        answer = client.post(f"{child.url}/simulate/memory/80").raise_for_status()
        assert answer.json()["faults"] == {"memory_mb": 80}
        grown = value(scrape(child.url), "process_resident_memory_bytes")
        assert grown - before >= 75 * MB
        client.post(f"{child.url}/simulate/reset").raise_for_status()
        released = value(scrape(child.url), "process_resident_memory_bytes")
        assert grown - released >= 75 * MB
    finally:
        child.stop()


def test_unauthorized_fault_answers_401_and_403_in_metrics(
    svc: ThreadServer, client: httpx.Client
) -> None:
    client.post(f"{svc.url}/simulate/unauthorized/6").raise_for_status()  # one per 10 s
    statuses = [client.get(f"{svc.url}/api/x").status_code for _ in range(5)]
    assert statuses[0] == 401  # the first one is due at once
    samples = scrape(svc.url)
    unauthorized = value(samples, "http_requests_total", code="401") + value(
        samples, "http_requests_total", code="403"
    )
    assert unauthorized == statuses.count(401) + statuses.count(403) >= 1
    assert value(samples, "http_requests_total", code="500") == 0


def test_unauthorized_answers_are_spread_at_the_asked_rate() -> None:
    faults = Faults()
    faults.set_unauthorized(30, now=0.0)
    # A request every 100 ms for two minutes: 30 a minute means 60 answers in all.
    statuses = [faults.status_for_next_request(now=tick / 10) for tick in range(1200)]
    assert statuses.count(401) + statuses.count(403) == 60
    assert statuses.count(401) == statuses.count(403) == 30


def test_error_fault_is_exact_over_any_hundred_requests() -> None:
    faults = Faults(error_rate_percent=7)
    statuses = [faults.status_for_next_request(now=0.0) for _ in range(1000)]
    assert statuses.count(500) == 70


def test_vulnerability_fault_sets_the_gauge_and_blocks(
    svc: ThreadServer, client: httpx.Client
) -> None:
    assert value(scrape(svc.url), "vulnerabilities", severity="critical") == 0
    client.post(f"{svc.url}/simulate/vulnerability/critical").raise_for_status()
    client.post(f"{svc.url}/simulate/vulnerability/CRITICAL").raise_for_status()
    assert value(scrape(svc.url), "vulnerabilities", severity="critical") == 2
    status = client.get(f"{svc.url}/deployment/status").json()
    assert status["status"] == "blocked"
    assert status["faults"] == {"vulnerabilities": {"critical": 2}}
    client.post(f"{svc.url}/simulate/reset").raise_for_status()
    assert value(scrape(svc.url), "vulnerabilities", severity="critical") == 0
    assert client.get(f"{svc.url}/deployment/status").json()["status"] == "active"


def test_active_connections_counts_requests_in_flight(
    svc: ThreadServer, client: httpx.Client
) -> None:
    client.post(f"{svc.url}/simulate/latency/2000").raise_for_status()
    users = [httpx.Client(timeout=10) for _ in range(3)]  # made first: creating one is slow
    slow = [threading.Thread(target=user.get, args=(f"{svc.url}/api/x",)) for user in users]
    for thread in slow:
        thread.start()
    try:
        wait_until(
            lambda: value(scrape(svc.url), "http_active_connections") == 3,
            what="three requests in flight",
        )
    finally:
        for thread in slow:
            thread.join()
        for user in users:
            user.close()
    assert value(scrape(svc.url), "http_active_connections") == 0


def test_reset_clears_every_fault(svc: ThreadServer, client: httpx.Client) -> None:
    for path in ("error_rate/100", "latency/5", "unauthorized/1", "memory/1"):
        client.post(f"{svc.url}/simulate/{path}").raise_for_status()
    assert len(client.get(f"{svc.url}/deployment/status").json()["faults"]) == 4
    assert client.post(f"{svc.url}/simulate/reset").json()["faults"] == {}
    assert client.get(f"{svc.url}/api/x").status_code == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("error_rate/abc", "percent must be a number, got 'abc'"),
        ("error_rate/150", "percent must be between 0 and 100, got '150'"),
        ("latency/-5", "ms must be between 0 and 60000"),
        ("vulnerability/severe", "severity must be one of critical, high, medium, low"),
    ],
)
def test_bad_fault_settings_get_one_clear_message(
    svc: ThreadServer, client: httpx.Client, path: str, message: str
) -> None:
    answer = client.post(f"{svc.url}/simulate/{path}")
    assert answer.status_code == 422
    assert message in answer.json()["error"]
    assert client.get(f"{svc.url}/deployment/status").json()["faults"] == {}


def test_rollback_status_reports_a_pushed_state(svc: ThreadServer, client: httpx.Client) -> None:
    client.post(f"{svc.url}/simulate/error_rate/10").raise_for_status()
    first = client.get(f"{svc.url}/rollback/status").json()
    assert (first["rolled_back"], first["faults"]) == (None, {"error_rate_percent": 10.0})
    pushed = client.put(f"{svc.url}/rollback/status", json={"rolled_back": True})
    assert pushed.json()["rolled_back"] is True
    assert client.get(f"{svc.url}/rollback/status").json()["source"] == "pushed"
    assert client.put(f"{svc.url}/rollback/status", json={"rolled_back": "yes"}).status_code == 422


def test_attack_signatures_are_counted_as_suspicious(
    svc: ThreadServer, client: httpx.Client
) -> None:
    client.get(f"{svc.url}/api/search", params={"q": "shoes"})
    assert value(scrape(svc.url), "rollguard_suspicious_requests_total") == 0
    client.get(f"{svc.url}/api/search", params={"q": "<script>alert(1)</script>"})
    client.get(f"{svc.url}/api/files/%2e%2e%2fetc%2fpasswd")
    client.get(f"{svc.url}/api/users", params={"id": "1 UNION SELECT password FROM users"})
    assert value(scrape(svc.url), "rollguard_suspicious_requests_total") == 3


@pytest.mark.skipif(sys.platform != "linux", reason="a priority per thread is Linux's")
def test_the_ballast_thread_runs_below_the_event_loops_priority() -> None:
    seen: dict[str, int] = {}

    def lowered() -> None:
        me = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, me)
        yield_to_the_loop()
        seen["after"] = os.getpriority(os.PRIO_PROCESS, me)

    thread = threading.Thread(target=lowered)
    thread.start()
    thread.join()
    assert seen["after"] == min(seen["before"] + BALLAST_NICENESS, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == seen["before"]
