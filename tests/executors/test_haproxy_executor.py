"""The HAProxy executor against a real HAProxy in front of two real HTTP servers.

Traffic is counted by sending requests through HAProxy and reading which
version answered. With ``balance roundrobin`` HAProxy spreads requests in
proportion to the weights; the stated tolerance is 5 percentage points over
200 requests.
"""

from __future__ import annotations

import asyncio

import pytest

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.executors.haproxy import HaproxyExecutor
from rollguard.policy.model import HaproxyExecutorSpec
from servers.haproxy import BACKEND, HaproxyServer

pytestmark = pytest.mark.real_server
REQUESTS = 200
TOLERANCE_POINTS = 5


def _executor(canary_haproxy: HaproxyServer, **changes: str) -> HaproxyExecutor:
    spec = {"socket": str(canary_haproxy.socket_path), "backend": BACKEND, **changes}
    return HaproxyExecutor(HaproxyExecutorSpec.model_validate(spec))


def _run(executor: HaproxyExecutor, call: str, **kwargs: int) -> ActionResult:
    async def go() -> ActionResult:
        result: ActionResult = await getattr(executor, call)(**kwargs)
        return result

    return asyncio.run(go())


def _status(executor: HaproxyExecutor) -> TargetStatus:
    return asyncio.run(executor.status())


def _canary_share(canary_haproxy: HaproxyServer) -> float:
    answered = canary_haproxy.count_answers(REQUESTS)
    assert set(answered) <= {"stable", "canary"}, answered
    return 100 * answered["canary"] / REQUESTS


def test_status_reads_the_configured_split(canary_haproxy: HaproxyServer) -> None:
    status = _status(_executor(canary_haproxy))
    assert (status.canary_weight, status.canary_state) == (20, "serving")
    assert _canary_share(canary_haproxy) == pytest.approx(20, abs=TOLERANCE_POINTS)


@pytest.mark.parametrize("percent", [0, 25, 50, 75, 100])
def test_shifting_moves_real_traffic(canary_haproxy: HaproxyServer, percent: int) -> None:
    executor = _executor(canary_haproxy)
    result = _run(executor, "set_canary_weight", percent=percent)
    assert result.ok, result.detail
    assert _status(executor).canary_weight == percent
    assert _canary_share(canary_haproxy) == pytest.approx(percent, abs=TOLERANCE_POINTS)


def test_rollback_sends_everything_to_stable_and_is_idempotent(
    canary_haproxy: HaproxyServer,
) -> None:
    executor = _executor(canary_haproxy)
    _run(executor, "set_canary_weight", percent=60)
    first = _run(executor, "rollback")
    second = _run(executor, "rollback")
    assert first.ok, first.detail
    assert second.ok, second.detail
    status = _status(executor)
    assert (status.canary_weight, status.canary_state, status.rolled_back) == (0, "retired", True)
    assert canary_haproxy.count_answers(REQUESTS) == {"stable": REQUESTS}
    assert "canary 127.0.0.1" in canary_haproxy.command(f"show servers state {BACKEND}")


def test_isolation_takes_the_canary_out_at_once(canary_haproxy: HaproxyServer) -> None:
    executor = _executor(canary_haproxy)
    result = _run(executor, "isolate")
    assert result.ok, result.detail
    status = _status(executor)
    assert (status.canary_weight, status.canary_state) == (0, "isolated")
    assert canary_haproxy.count_answers(REQUESTS) == {"stable": REQUESTS}


def test_gradual_steps_back_to_stable(canary_haproxy: HaproxyServer) -> None:
    executor = _executor(canary_haproxy)
    _run(executor, "set_canary_weight", percent=100)
    shares = []
    for back_on_stable in (25, 50, 75, 100):
        assert _run(executor, "set_canary_weight", percent=100 - back_on_stable).ok
        shares.append(_canary_share(canary_haproxy))
    assert shares == pytest.approx([75, 50, 25, 0], abs=TOLERANCE_POINTS)


def test_shifting_after_rollback_brings_the_canary_back(canary_haproxy: HaproxyServer) -> None:
    executor = _executor(canary_haproxy)
    _run(executor, "rollback")
    assert _run(executor, "set_canary_weight", percent=50).ok
    assert _status(executor).canary_state == "serving"
    assert _canary_share(canary_haproxy) == pytest.approx(50, abs=TOLERANCE_POINTS)


def test_scale_is_reported_as_skipped(canary_haproxy: HaproxyServer) -> None:
    result = asyncio.run(_executor(canary_haproxy).scale(factor=2))
    assert result.ok
    assert result.output == {"skipped": True}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"backend": "shop"}, "no backend 'shop'"),
        ({"canary_server": "green"}, "no server 'green'"),
        (
            {"stable_server": "blue"},
            "no server 'blue' (target.executor.stable_server); it has: canary, stable",
        ),
    ],
)
def test_unknown_names_are_named(
    canary_haproxy: HaproxyServer, changes: dict[str, str], named: str
) -> None:
    executor = _executor(canary_haproxy, **changes)
    with pytest.raises(ExecutorError) as caught:
        _run(executor, "rollback")
    assert named in str(caught.value)
    assert _status(_executor(canary_haproxy)).canary_weight == 20  # nothing was changed


def test_socket_gone_is_a_clear_error(canary_haproxy: HaproxyServer) -> None:
    executor = _executor(canary_haproxy)
    canary_haproxy.stop()
    canary_haproxy.socket_path.unlink(missing_ok=True)
    with pytest.raises(ExecutorError, match=r"stats socket .* does not exist"):
        _run(executor, "rollback")


def test_dead_haproxy_is_a_clear_error(canary_haproxy: HaproxyServer) -> None:
    executor = _executor(canary_haproxy)
    canary_haproxy.stop()
    with pytest.raises(ExecutorError, match="HAProxy stats socket"):
        _status(executor)


def test_weight_out_of_range_is_refused(canary_haproxy: HaproxyServer) -> None:
    result = _run(_executor(canary_haproxy), "set_canary_weight", percent=120)
    assert not result.ok
    assert "0-100" in result.detail
    assert _status(_executor(canary_haproxy)).canary_weight == 20
