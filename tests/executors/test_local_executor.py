"""The local executor changes a real router, idempotently, and says so when it cannot."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from demo_servers import Deployment, deployment
from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.demo.router import UPSTREAM_HEADER
from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.executors.factory import make_executor
from rollguard.executors.local import LocalExecutor
from rollguard.executors.recording import RecordingExecutor
from rollguard.notifiers.log import LogNotifier
from rollguard.policy.model import Policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider
from support import free_port

T = TypeVar("T")


@pytest.fixture(scope="module")
def dep() -> Iterator[Deployment]:
    with deployment(canary_percent=20) as running:
        yield running


@pytest.fixture(autouse=True)
def _back_to_twenty(dep: Deployment) -> None:
    httpx.put(f"{dep.router.url}/-/router/weight", json={"canary_percent": 20}).raise_for_status()


def _with_executor(router: str, act: Callable[[LocalExecutor], Awaitable[T]]) -> T:
    async def scenario() -> T:
        executor = LocalExecutor(router)
        try:
            return await act(executor)
        finally:
            await executor.aclose()

    return asyncio.run(scenario())


def _split(router: str, count: int = 20) -> Counter[str]:
    with httpx.Client() as client:
        return Counter(client.get(f"{router}/api/x").headers[UPSTREAM_HEADER] for _ in range(count))


def test_rollback_retires_the_canary_and_is_idempotent(dep: Deployment) -> None:
    async def act(executor: LocalExecutor) -> tuple[ActionResult, ActionResult, TargetStatus]:
        return await executor.rollback(), await executor.rollback(), await executor.status()

    first, second, status = _with_executor(dep.router.url, act)
    assert first.ok
    assert second.ok
    assert "20% serving -> 0% retired" in first.detail
    assert "0% retired -> 0% retired" in second.detail
    assert (status.canary_weight, status.canary_state, status.rolled_back) == (0, "retired", True)
    assert _split(dep.router.url) == Counter({"stable": 20})


def test_set_weight_moves_real_traffic(dep: Deployment) -> None:
    async def act(executor: LocalExecutor) -> TargetStatus:
        assert (await executor.set_canary_weight(percent=50)).ok
        return await executor.status()

    status = _with_executor(dep.router.url, act)
    assert (status.canary_weight, status.canary_state) == (50, "serving")
    assert _split(dep.router.url) == Counter({"stable": 10, "canary": 10})


def test_isolate_takes_the_canary_out(dep: Deployment) -> None:
    async def act(executor: LocalExecutor) -> TargetStatus:
        assert (await executor.isolate()).ok
        return await executor.status()

    status = _with_executor(dep.router.url, act)
    assert (status.canary_weight, status.canary_state) == (0, "isolated")
    assert _split(dep.router.url)["canary"] == 0


def test_scale_is_recorded_by_the_router(dep: Deployment) -> None:
    async def act(executor: LocalExecutor) -> TargetStatus:
        result = await executor.scale(factor=3)
        assert result.ok
        assert "x3" in result.detail
        return await executor.status()

    assert _with_executor(dep.router.url, act).detail["stable_scale"] == 3.0


def test_out_of_range_weight_is_a_failed_result(dep: Deployment) -> None:
    async def act(executor: LocalExecutor) -> ActionResult:
        return await executor.set_canary_weight(percent=101)

    result = _with_executor(dep.router.url, act)
    assert not result.ok
    assert "0-100" in result.detail


def test_an_unreachable_router_is_a_failed_result_naming_it() -> None:
    router = f"http://127.0.0.1:{free_port()}"

    async def act(executor: LocalExecutor) -> list[ActionResult]:
        return [
            await executor.rollback(),
            await executor.set_canary_weight(percent=0),
            await executor.isolate(),
            await executor.scale(factor=2),
        ]

    results = _with_executor(router, act)
    assert all(not result.ok and router in result.detail for result in results)


def test_status_of_an_unreachable_router_never_reads_as_rolled_back() -> None:
    router = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ExecutorError, match=router.replace(".", r"\.")):
        _with_executor(router, lambda executor: executor.status())


def test_an_injected_client_is_used_and_left_open(dep: Deployment) -> None:
    async def scenario() -> bool:
        async with httpx.AsyncClient() as client:
            executor = LocalExecutor(dep.router.url, client=client)
            assert (await executor.rollback()).ok
            await executor.aclose()
            return client.is_closed

    assert asyncio.run(scenario()) is False


@pytest.mark.parametrize("router", ["ftp://127.0.0.1:1", "not a url", "http://"])
def test_a_bad_router_url_is_refused_at_construction(router: str) -> None:
    with pytest.raises(ExecutorError, match="router must be an http"):
        LocalExecutor(router)


def _policy(executor: dict[str, object]) -> Policy:
    return Policy.model_validate(
        {
            "target": {"deployment": "demo", "executor": executor},
            "metrics": {"provider": "replay", "file": "x.csv"},
            "error_rate_trigger": {"threshold": "5%"},
        }
    )


def test_factory_builds_the_local_executor(dep: Deployment) -> None:
    async def scenario() -> TargetStatus:
        executor = make_executor(_policy({"type": "local", "router": dep.router.url}))
        assert isinstance(executor, LocalExecutor)
        try:
            return await executor.status()
        finally:
            await executor.aclose()

    assert asyncio.run(scenario()).canary_weight == 20


def test_factory_builds_the_noop_executor_at_the_policys_weight() -> None:
    executor = make_executor(_policy({"type": "noop"}))
    assert isinstance(executor, RecordingExecutor)
    assert executor.inner is None  # records, changes nothing
    assert asyncio.run(executor.status()).canary_weight == 20


async def test_a_watch_whose_router_is_gone_fails_and_says_where() -> None:
    router = f"http://127.0.0.1:{free_port()}"
    policy = Policy.model_validate(
        {
            "target": {"deployment": "demo", "executor": {"type": "local", "router": router}},
            "metrics": {"provider": "replay", "file": "x.csv"},
            "error_rate_trigger": {"threshold": "5%", "window": "1m"},
        }
    )
    provider = InMemoryProvider({(Signal.ERROR_RATE_PERCENT, Version.CANARY): 50.0})
    audit = MemoryAuditSink()
    executor = make_executor(policy)
    watcher = Watcher(
        policy,
        provider=provider,
        executor=executor,
        notifier=LogNotifier(),
        audit=audit,
        clock=SimulatedClock(),
    )
    try:
        result = await watcher.run(duration_seconds=60)
    finally:
        await executor.aclose()
    assert result.outcome is Outcome.FAILED
    assert result.outcome.exit_code == 5
    recorded = audit.records[-2]
    assert (recorded.kind, recorded.outcome) == ("action_result", "failure")
    assert router in json.dumps(recorded.executor_output)
