"""A progressive release on the real control plane: each step is the HTTPRoute's stored weight,
and a failing release hook rolls the Deployment back."""

from __future__ import annotations

import pytest

from kube_support import ROUTERS, create, executor, get, image, roll_out
from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider, RecordingExecutor
from servers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_server
KIND = "gateway-httproute"
POLICY = """
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/metrics", canary: "http://127.0.0.1:2/metrics"}
analysis: {interval: 5s}
error_rate_trigger: {increase_percent: 200, compare_with: stable}
promotion:
  steps: [10, 50, 100]
  min_step_duration: 20s
"""


def _weights(cluster: KubeCluster, namespace: str) -> tuple[int, int]:
    """(stable, canary) as the API server stores them, read with kubectl."""
    route = get(cluster, namespace, "httproute", "shop")
    refs = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
    return refs["shop-stable"], refs["shop-canary"]


def _watcher(cluster: KubeCluster, namespace: str, hooks: str = "") -> tuple[Watcher, list[int]]:
    seen: list[int] = []
    real = executor(cluster, namespace, router={"kind": KIND, **ROUTERS[KIND][2]})

    def stored(label: str) -> None:  # after each call, what the API server now holds
        if label.startswith("set canary weight"):
            seen.append(_weights(cluster, namespace)[1])

    observed = RecordingExecutor(real, canary_weight=20, on_call=stored)
    provider = InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 1.0,
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 1.0,
            (Signal.REQUESTS, Version.CANARY): 200.0,
            (Signal.ERRORS, Version.CANARY): 1.0,
            (Signal.REQUESTS, Version.STABLE): 2000.0,
            (Signal.ERRORS, Version.STABLE): 20.0,
        }
    )
    watcher = Watcher(
        parse_policy(POLICY + hooks),
        provider=provider,
        executor=observed,
        notifier=LogNotifier(),
        audit=MemoryAuditSink(),
        clock=SimulatedClock(1_000.0),
    )
    return watcher, seen


@pytest.fixture
def routed(kube_cluster: KubeCluster, kube_namespace: str, router_crds: list[str]) -> str:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    create(kube_cluster, kube_namespace, ROUTERS[KIND][1]())
    return kube_namespace


async def test_a_healthy_release_is_stepped_through_the_router(
    kube_cluster: KubeCluster, routed: str
) -> None:
    watcher, seen = _watcher(kube_cluster, routed)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    assert seen == [10, 50, 100]
    assert _weights(kube_cluster, routed) == (0, 100)
    assert image(kube_cluster, routed) == "shop:2.0"


async def test_a_failing_confirm_step_hook_rolls_the_deployment_back(
    kube_cluster: KubeCluster, routed: str
) -> None:
    hooks = "  hooks: {confirm_step: {command: [/bin/sh, -c, 'exit 4']}}\n"
    watcher, seen = _watcher(kube_cluster, routed, hooks)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert "hook confirm_step failed: exit code 4" in result.reason
    assert seen == [10]
    assert _weights(kube_cluster, routed) == (100, 0)
    assert image(kube_cluster, routed) == "shop:1.0"
