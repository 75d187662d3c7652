"""The local router splits real traffic by weight and obeys its admin API."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from demo_servers import Deployment, deployment, scrape, service_in_thread, value
from rollguard.demo import router
from rollguard.demo.router import UPSTREAM_HEADER, RouterState
from rollguard.demo.servers import serve_in_thread
from support import free_port


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def _send(client: httpx.Client, url: str, count: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(count):
        answer = client.get(f"{url}/api/x")
        assert answer.status_code == 200
        upstream = answer.headers[UPSTREAM_HEADER]
        seen[upstream] += 1
        assert answer.json()["version"] == ("v2" if upstream == "canary" else "v1")
    return seen


@pytest.fixture(scope="module")
def shared() -> Iterator[Deployment]:
    """One deployment for the split tests; each test sets its weight and reads deltas."""
    with deployment() as running:
        yield running


@pytest.mark.parametrize("percent", [0, 20, 50, 100])
def test_split_follows_the_weight_and_reaches_the_real_upstreams(
    client: httpx.Client, shared: Deployment, percent: int
) -> None:
    client.put(f"{shared.router.url}/-/router/weight", json={"canary_percent": percent})
    before = (scrape(shared.canary.url), scrape(shared.stable.url))
    seen = _send(client, shared.router.url, 50)
    # Smooth weighted round robin: exact over any 50 requests at these weights
    # (tolerance 0; a random split would need a wide binomial band).
    canary = percent // 2
    assert seen["canary"] == canary
    assert seen["stable"] == 50 - canary
    # The services' own counters agree: the traffic really reached them.
    after = (scrape(shared.canary.url), scrape(shared.stable.url))
    served = [
        value(now, "http_requests_total", code="200")
        - value(then, "http_requests_total", code="200")
        for then, now in zip(before, after, strict=True)
    ]
    assert served == [canary, 50 - canary]


def test_round_robin_interleaves_instead_of_bursting() -> None:
    state = RouterState("http://s", "http://c", canary_percent=20)
    picks = [state.pick() for _ in range(50)]
    canary_positions = [index for index, pick in enumerate(picks) if pick == "canary"]
    assert len(canary_positions) == 10
    assert all(b - a == 5 for a, b in itertools.pairwise(canary_positions))


def _reset(client: httpx.Client, dep: Deployment, percent: int) -> Deployment:
    """The shared deployment back to a known state: ``percent`` to the canary, scale 1."""
    client.put(f"{dep.router.url}/-/router/weight", json={"canary_percent": percent})
    client.post(f"{dep.router.url}/-/router/scale", json={"factor": 1})
    return dep


def test_weight_change_takes_effect_at_once(client: httpx.Client, shared: Deployment) -> None:
    dep = _reset(client, shared, 20)
    answer = client.put(f"{dep.router.url}/-/router/weight", json={"canary_percent": 50})
    assert answer.json()["previous"]["canary_percent"] == 20
    assert answer.json()["current"]["canary_percent"] == 50
    assert _send(client, dep.router.url, 20)["canary"] == 10


@pytest.mark.parametrize(("action", "state"), [("rollback", "retired"), ("isolate", "isolated")])
def test_rollback_and_isolate_send_everything_to_stable(
    client: httpx.Client, shared: Deployment, action: str, state: str
) -> None:
    dep = _reset(client, shared, 50)
    client.post(f"{dep.router.url}/-/router/{action}").raise_for_status()
    again = client.post(f"{dep.router.url}/-/router/{action}").json()  # idempotent
    assert again["previous"] == again["current"]
    view = client.get(f"{dep.router.url}/-/router").json()
    assert (view["canary_percent"], view["canary_state"]) == (0, state)
    assert _send(client, dep.router.url, 20) == Counter({"stable": 20})


def test_scale_is_recorded(client: httpx.Client, shared: Deployment) -> None:
    dep = _reset(client, shared, 20)
    client.post(f"{dep.router.url}/-/router/scale", json={"factor": 2}).raise_for_status()
    assert client.get(f"{dep.router.url}/-/router").json()["stable_scale"] == 2.0


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("weight", {"canary_percent": 120}, "between 0 and 100"),
        ("weight", {"canary_percent": 12.5}, "whole number"),
        ("weight", {"percent": 10}, "canary_percent"),
        ("scale", {"factor": 0}, "factor must be > 0"),
    ],
)
def test_bad_admin_calls_are_refused_and_change_nothing(
    client: httpx.Client, shared: Deployment, path: str, body: dict[str, object], message: str
) -> None:
    dep = _reset(client, shared, 20)
    method = "PUT" if path == "weight" else "POST"
    answer = client.request(method, f"{dep.router.url}/-/router/{path}", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["error"]
    view = client.get(f"{dep.router.url}/-/router").json()
    assert (view["canary_percent"], view["stable_scale"]) == (20, 1.0)


def test_a_dead_upstream_is_a_counted_bad_gateway(client: httpx.Client) -> None:
    with service_in_thread("v1", role="stable") as stable:
        dead = f"http://127.0.0.1:{free_port()}"
        front = serve_in_thread(router.create_app(stable.url, dead, canary_percent=50))
        try:
            statuses = Counter(client.get(f"{front.url}/api/x").status_code for _ in range(10))
            assert statuses == Counter({200: 5, 502: 5})
            counts = client.get(f"{front.url}/-/router").json()["requests"]
            assert counts["canary"] == {"502": 5}
        finally:
            front.stop()


def test_service_status_reports_the_routers_rollback(client: httpx.Client) -> None:
    with deployment() as dep, service_in_thread("v2", router_url=dep.router.url) as canary:
        assert client.get(f"{canary.url}/rollback/status").json()["rolled_back"] is False
        client.post(f"{dep.router.url}/-/router/rollback").raise_for_status()
        status = client.get(f"{canary.url}/deployment/status").json()
        assert (status["rolled_back"], status["canary_state"]) == (True, "retired")
