"""One contract, every executor: the same rollback / shift / isolate / status expectations.

Each backend runs against a real counterpart: the demo router (local), a real
HAProxy (haproxy), the real Kubernetes control plane with a Gateway API
HTTPRoute (kubernetes), and a real state-keeping deploy tool (command). Every
case starts from the canary serving 20 % of traffic.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import pytest

from demo_servers import deployment
from kube_support import ROUTERS, create, executor, httproute, roll_out
from rollguard.executors.base import Executor, TargetStatus
from rollguard.executors.command import CommandExecutor
from rollguard.executors.haproxy import HaproxyExecutor
from rollguard.executors.local import LocalExecutor
from rollguard.executors.recording import RecordingExecutor
from rollguard.policy.model import (
    CommandExecutorSpec,
    HaproxyExecutorSpec,
)
from servers.haproxy import BACKEND, running_haproxy
from servers.kube_cluster import KubeCluster, new_namespace
from servers.version_http import running_version_servers

T = TypeVar("T")
Factory = Callable[[], Executor]
BACKENDS = ["local", "haproxy", "kubernetes", "command", "recording", "recording-local"]
TOOL = str(Path(__file__).resolve().parents[1] / "servers" / "weights_cli.py")


def _local(stack: ExitStack, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    running = stack.enter_context(deployment(canary_percent=20))
    return lambda: LocalExecutor(running.router.url)


def _haproxy(stack: ExitStack, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    versions = stack.enter_context(running_version_servers("stable", "canary"))
    server = stack.enter_context(
        running_haproxy(
            tmp_path / "haproxy",
            stable=versions["stable"].address,
            canary=versions["canary"].address,
            canary_weight=20,
        )
    )
    spec = HaproxyExecutorSpec(socket=str(server.socket_path), backend=BACKEND)
    return lambda: HaproxyExecutor(spec)


def _kubernetes(stack: ExitStack, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    """A Deployment rolled out to revision 2 behind a Gateway API HTTPRoute on its real CRD."""
    cluster: KubeCluster = request.getfixturevalue("kube_cluster")
    request.getfixturevalue("router_crds")
    namespace = stack.enter_context(new_namespace(cluster, request.getfixturevalue("kube_admin")))
    roll_out(cluster, namespace, "shop:1.0", "shop:2.0")
    create(cluster, namespace, httproute())
    router = ROUTERS["gateway-httproute"][2]
    return lambda: executor(cluster, namespace, router={"kind": "gateway-httproute", **router})


def _command(stack: ExitStack, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    base = [sys.executable, TOOL, str(tmp_path / "state.json")]
    spec = CommandExecutorSpec.model_validate(
        {
            "rollback": [*base, "rollback"],
            "set_weight": [*base, "set", "{percent}"],
            "scale": [*base, "scale", "{factor}"],
            "isolate": [*base, "isolate"],
            "status": [*base, "status"],
        }
    )
    return lambda: CommandExecutor(spec, deployment="shop")


def _recording(stack: ExitStack, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    """The stand-in keeps its state in memory: every call goes to the same one."""
    recording = RecordingExecutor(canary_weight=20)
    return lambda: recording


def _recording_local(stack: ExitStack, tmp_path: Path, request: pytest.FixtureRequest) -> Factory:
    """Wrapping a real executor, the recorder changes nothing about what it does."""
    local = _local(stack, tmp_path, request)
    return lambda: RecordingExecutor(local())


SETUPS = {
    "local": _local,
    "haproxy": _haproxy,
    "kubernetes": _kubernetes,
    "command": _command,
    "recording": _recording,
    "recording-local": _recording_local,
}


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    with ExitStack() as stack:
        yield SETUPS[request.param](stack, tmp_path, request)


def act(make: Factory, call: Callable[[Executor], Awaitable[T]]) -> T:
    """Run ``call`` on a fresh executor (as a restarted controller would), then close it."""

    async def go() -> T:
        executor = make()
        try:
            return await call(executor)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def status(make: Factory) -> TargetStatus:
    return act(make, lambda e: e.status())


def test_starts_serving_twenty_percent(make: Factory) -> None:
    read = status(make)
    assert (read.canary_weight, read.canary_state) == (20, "serving")
    assert not read.rolled_back


def test_rollback_puts_all_traffic_on_stable_idempotently(make: Factory) -> None:
    first = act(make, lambda e: e.rollback())
    second = act(make, lambda e: e.rollback())
    assert first.ok, first.detail
    assert second.ok, second.detail
    read = status(make)
    assert (read.canary_weight, read.canary_state, read.rolled_back) == (0, "retired", True)


@pytest.mark.parametrize("percent", [75, 50, 25])
def test_shift_sets_the_canary_share(make: Factory, percent: int) -> None:
    result = act(make, lambda e: e.set_canary_weight(percent=percent))
    assert result.ok, result.detail
    read = status(make)
    assert (read.canary_weight, read.canary_state) == (percent, "serving")


def test_shift_to_zero_drains(make: Factory) -> None:
    assert act(make, lambda e: e.set_canary_weight(percent=0)).ok
    read = status(make)
    assert (read.canary_weight, read.canary_state) == (0, "drained")


def test_isolate_takes_the_canary_out(make: Factory) -> None:
    result = act(make, lambda e: e.isolate())
    assert result.ok, result.detail
    read = status(make)
    assert (read.canary_weight, read.canary_state) == (0, "isolated")


def test_out_of_range_weight_is_a_failed_result_that_changes_nothing(make: Factory) -> None:
    result = act(make, lambda e: e.set_canary_weight(percent=101))
    assert not result.ok
    assert "0-100" in result.detail
    assert status(make).canary_weight == 20


def test_scale_succeeds_or_says_it_was_skipped(make: Factory) -> None:
    result = act(make, lambda e: e.scale(factor=2.0))
    assert result.ok, result.detail
    assert status(make).canary_weight == 20  # scaling stable moves no traffic
