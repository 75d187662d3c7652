"""A progressive release on the real control plane: each step is the HTTPRoute's stored weight
or, without a router, the two Deployments' replica counts; every release hook is called,
each seeing the cluster as it stands, and a failing one rolls the release back."""

from __future__ import annotations

import json

import pytest

from audit_records import hook_calls
from kube_support import (
    ROUTERS,
    create,
    deployment,
    executor,
    get,
    image,
    replicas,
    roll_out,
    wait_rolled_out,
)
from rollguard.audit.base import AuditRecord, MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider, RecordingExecutor
from servers.kube_cluster import KubeCluster
from support import wait_until

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


def _watcher(
    cluster: KubeCluster, namespace: str, hooks: str = "", **spec: object
) -> tuple[Watcher, list[object], MemoryAuditSink]:
    """A watch of a healthy canary through the real executor; after each weight it sets,
    what the API server holds (the route's weights, or the two Deployments' replicas)."""
    seen: list[object] = []
    real = executor(cluster, namespace, **(spec or {"router": {"kind": KIND, **ROUTERS[KIND][2]}}))

    def stored(label: str) -> None:
        if label.startswith("set canary weight"):
            seen.append(_pods(cluster, namespace) if spec else _weights(cluster, namespace)[1])

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
    audit = MemoryAuditSink()
    watcher = Watcher(
        parse_policy(POLICY + hooks),
        provider=provider,
        executor=observed,
        notifier=LogNotifier(),
        audit=audit,
        clock=SimulatedClock(1_000.0),
    )
    return watcher, seen, audit


@pytest.fixture
def routed(kube_cluster: KubeCluster, kube_namespace: str, router_crds: list[str]) -> str:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    create(kube_cluster, kube_namespace, ROUTERS[KIND][1]())
    return kube_namespace


async def test_a_healthy_release_is_stepped_through_the_router(
    kube_cluster: KubeCluster, routed: str
) -> None:
    watcher, seen, _ = _watcher(kube_cluster, routed)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    assert seen == [10, 50, 100]
    assert _weights(kube_cluster, routed) == (0, 100)
    assert image(kube_cluster, routed) == "shop:2.0"


async def test_a_failing_confirm_step_hook_rolls_the_deployment_back(
    kube_cluster: KubeCluster, routed: str
) -> None:
    hooks = "  hooks: {confirm_step: {command: [/bin/sh, -c, 'exit 4']}}\n"
    watcher, seen, _ = _watcher(kube_cluster, routed, hooks)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert "hook confirm_step failed: exit code 4" in result.reason
    assert seen == [10]
    assert _weights(kube_cluster, routed) == (100, 0)
    assert image(kube_cluster, routed) == "shop:1.0"


# --- without a router: the canary's share is its part of the two Deployments' pods ------

STABLE = "shop-stable"
TOTAL = "rollguard.dev/replica-total"


def _pods(cluster: KubeCluster, namespace: str) -> tuple[int, ...]:
    """(canary wanted, canary ready, stable wanted, stable ready), read with kubectl once each
    Deployment's ready pods have reached its wanted count: the executor waits for the side that
    grows, not for the old pods of the side that shrinks to go."""

    def settled() -> tuple[int, ...] | None:
        pods = replicas(cluster, namespace, "shop", STABLE)
        return pods if pods[0] == pods[1] and pods[2] == pods[3] else None

    return wait_until(settled, what="both Deployments' ready pods at their wanted counts")


def _cluster_hook(cluster: KubeCluster, namespace: str, *, fails: bool = False) -> str:
    """A command hook that prints both Deployments' wanted/ready pods as the cluster has them
    when it is called (its output lands in the hook's audit entry); ``fails``: exits 5 after."""
    command = [
        str(cluster.bin / "kubectl"),
        f"--kubeconfig={cluster.kubeconfig}",
        "get", "deployments", "-n", namespace, "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}/{.status.readyReplicas} {end}",
    ]  # fmt: skip
    if fails:
        command = ["/bin/sh", "-c", '"$@"; exit 5', "hook", *command]
    return json.dumps({"command": command, "timeout": "30s"})


def _hooks(cluster: KubeCluster, namespace: str, *, failing: str = "") -> str:
    names = ("pre_rollout", "confirm_step", "confirm_promotion", "post_rollout", "on_rollback")
    lines = [
        f"    {name}: {_cluster_hook(cluster, namespace, fails=name == failing)}\n"
        for name in names
    ]
    return "  hooks:\n" + "".join(lines)


def _steps(audit: MemoryAuditSink) -> list[AuditRecord]:
    return [r for r in audit.records if r.kind == "promotion_step"]


@pytest.fixture
def two_deployments(kube_cluster: KubeCluster, kube_namespace: str) -> str:
    """Stable at 4 pods; the canary Deployment created at 0, so no pod of it serves before
    the first step (both behind one Service in a real cluster; no traffic flows here)."""
    create(kube_cluster, kube_namespace, deployment("shop:1.0", name=STABLE, replicas=4))
    create(kube_cluster, kube_namespace, deployment("shop:2.0", replicas=0))
    wait_rolled_out(kube_cluster, kube_namespace, STABLE)
    wait_rolled_out(kube_cluster, kube_namespace)
    return kube_namespace


async def test_without_a_router_each_step_sets_replica_counts_and_every_hook_sees_them(
    kube_cluster: KubeCluster, two_deployments: str
) -> None:
    namespace = two_deployments
    hooks = _hooks(kube_cluster, namespace)
    watcher, seen, audit = _watcher(kube_cluster, namespace, hooks, stable_deployment=STABLE)
    result = await watcher.run(duration_seconds=3600)

    assert result.outcome is Outcome.PROMOTED, result.reason
    # 10 % of 4 pods is 0.4: one pod; 50 % two; 100 % all four, none left on stable.
    assert seen == [(1, 1, 3, 3), (2, 2, 2, 2), (4, 4, 0, 0)]
    steps = _steps(audit)
    assert [s.executor_output["canary_weight"] for s in steps] == [10, 50, 100]
    assert [s.executor_output["achieved_weight"] for s in steps] == [25.0, 50.0, 100.0]
    assert [s.executor_output["replicas"] for s in steps] == [
        {"canary": 1, "stable": 3, "total": 4},
        {"canary": 2, "stable": 2, "total": 4},
        {"canary": 4, "stable": 0, "total": 4},
    ]
    assert hook_calls(audit.records) == [
        ("pre_rollout", "success", "shop=0/ shop-stable=4/4"),  # no canary pod yet
        ("confirm_step", "success", "shop=1/1 shop-stable=3/3"),  # before 10 -> 50 %
        ("confirm_promotion", "success", "shop=2/2 shop-stable=2/2"),  # before 50 -> 100 %
        ("post_rollout", "success", "shop=4/4 shop-stable=0/"),
    ]
    status = await _read_status(kube_cluster, namespace)
    assert (status.canary_weight, status.canary_state) == (100, "serving")
    assert TOTAL not in _annotations(kube_cluster, namespace)  # the release is over


@pytest.mark.parametrize(
    ("failing", "steps", "seen_by_failing"),
    [
        ("confirm_promotion", [(1, 1, 3, 3), (2, 2, 2, 2)], "shop=2/2 shop-stable=2/2"),
        ("pre_rollout", [], "shop=0/ shop-stable=4/4"),  # the canary never gets a pod
    ],
)
async def test_without_a_router_a_failing_hook_returns_every_pod_to_stable(
    kube_cluster: KubeCluster,
    two_deployments: str,
    failing: str,
    steps: list[tuple[int, ...]],
    seen_by_failing: str,
) -> None:
    namespace = two_deployments
    hooks = _hooks(kube_cluster, namespace, failing=failing)
    watcher, seen, audit = _watcher(kube_cluster, namespace, hooks, stable_deployment=STABLE)
    result = await watcher.run(duration_seconds=3600)

    assert result.outcome is Outcome.ROLLED_BACK
    assert f"hook {failing} failed: exit code 5" in result.reason
    assert seen == steps
    assert _pods(kube_cluster, namespace) == (0, 0, 4, 4)
    calls = hook_calls(audit.records)
    assert (failing, "failure", seen_by_failing) in calls
    assert calls[-1] == ("on_rollback", "success", "shop=0/ shop-stable=4/4")  # after it
    rollback = next(r for r in audit.records if r.kind == "action_result")
    assert rollback.outcome == "success"
    status = await _read_status(kube_cluster, namespace)
    assert (status.canary_weight, status.canary_state) == (0, "retired")
    assert TOTAL not in _annotations(kube_cluster, namespace)


async def test_without_a_router_one_pod_in_all_cannot_be_split(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    create(kube_cluster, kube_namespace, deployment("shop:1.0", name=STABLE, replicas=1))
    create(kube_cluster, kube_namespace, deployment("shop:2.0", replicas=0))
    wait_rolled_out(kube_cluster, kube_namespace, STABLE)
    refused = await _split_once(kube_cluster, kube_namespace, 50)
    assert not refused.ok
    assert "needs at least 2 pods in all" in refused.detail
    assert _pods(kube_cluster, kube_namespace) == (0, 0, 1, 1)


async def _read_status(cluster: KubeCluster, namespace: str) -> TargetStatus:
    reader = executor(cluster, namespace, stable_deployment=STABLE)
    try:
        return await reader.status()
    finally:
        await reader.aclose()


async def test_without_a_router_a_later_executor_divides_the_pods_counted_first(
    kube_cluster: KubeCluster, two_deployments: str
) -> None:
    """A watch taken up after a crash (a new executor) splits the same number of pods, read
    from the canary's annotation, even when stable's count changed in between."""
    namespace = two_deployments
    first = await _split_once(kube_cluster, namespace, 50)
    assert first.output["replicas"] == {"canary": 2, "stable": 2, "total": 4}
    kube_cluster.kubectl("scale", f"deployment/{STABLE}", "--replicas=6", "-n", namespace)
    again = await _split_once(kube_cluster, namespace, 50)
    assert again.ok, again.detail
    assert again.output["replicas"] == {"canary": 2, "stable": 2, "total": 4}
    assert _pods(kube_cluster, namespace) == (2, 2, 2, 2)
    assert _annotations(kube_cluster, namespace)[TOTAL] == "4"


@pytest.mark.parametrize("end", [0, 100])
async def test_without_a_router_the_next_release_divides_the_pods_it_finds(
    kube_cluster: KubeCluster, two_deployments: str, end: int
) -> None:
    """Once a release ends (rolled back at 0 %, promoted at 100 %) its total is forgotten: the
    next release of the same canary Deployment counts the pods again, here after stable was
    scaled from 4 to 6. Dividing the old 4, its first step would shrink stable to 3."""
    namespace = two_deployments
    first = await _split_once(kube_cluster, namespace, 50)
    assert first.output["replicas"] == {"canary": 2, "stable": 2, "total": 4}
    assert _annotations(kube_cluster, namespace)[TOTAL] == "4"
    ended = await _split_once(kube_cluster, namespace, end)
    assert ended.ok, ended.detail
    assert TOTAL not in _annotations(kube_cluster, namespace)
    kube_cluster.kubectl("scale", "deployment/shop", "--replicas=0", "-n", namespace)
    kube_cluster.kubectl("scale", f"deployment/{STABLE}", "--replicas=6", "-n", namespace)
    assert _pods(kube_cluster, namespace) == (0, 0, 6, 6)
    second = await _split_once(kube_cluster, namespace, 10)
    assert second.ok, second.detail
    assert second.output["replicas"] == {"canary": 1, "stable": 5, "total": 6}
    assert _pods(kube_cluster, namespace) == (1, 1, 5, 5)
    assert _annotations(kube_cluster, namespace)[TOTAL] == "6"


def _annotations(cluster: KubeCluster, namespace: str) -> dict[str, str]:
    annotations: dict[str, str] = get(cluster, namespace, "deployment", "shop")["metadata"].get(
        "annotations", {}
    )
    return annotations


async def _split_once(cluster: KubeCluster, namespace: str, percent: int) -> ActionResult:
    split = executor(cluster, namespace, stable_deployment=STABLE)
    try:
        return await split.set_canary_weight(percent=percent)
    finally:
        await split.aclose()
