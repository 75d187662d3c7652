"""A failed isolation never keeps the bad release: the rollback still runs.

On the test cluster a Kubernetes executor without a router cannot isolate
(``policy check`` refuses such a policy, but a router deleted or forbidden at the
moment of an incident fails the same step). The watch must still undo the
Deployment, record the isolation as a failed step with its reason, and end
rolled back with the failed isolation in its detail.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from breached import watch_breached

from kube_support import executor, image, roll_out
from rollguard.audit.base import MemoryAuditSink
from rollguard.controller.watch import Outcome, WatchResult
from rollguard.policy import Action
from servers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_server

# The executor is handed to the watch directly: no policy naming a router-less
# Kubernetes executor with this action passes the check any more.
POLICY = """\
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
analysis: {interval: 5s, persistence: 1}
error_rate_trigger: {threshold: 5%, window: 30s, action: traffic_isolation_and_rollback}
"""


def _watch(kube: KubeCluster, namespace: str, audit: MemoryAuditSink, base: Path) -> WatchResult:
    target = executor(kube, namespace)  # no router: isolate fails, as on a real cluster

    async def go() -> WatchResult:
        try:
            return await watch_breached(POLICY, audit, base, executor=target)
        finally:
            await target.aclose()

    return asyncio.run(go())


def test_the_release_is_rolled_back_when_isolation_fails(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    audit = MemoryAuditSink()

    watched = _watch(kube_cluster, kube_namespace, audit, tmp_path)

    assert image(kube_cluster, kube_namespace) == "shop:1.0"  # undone on the API server
    assert (watched.action, watched.outcome) == (
        Action.TRAFFIC_ISOLATION_AND_ROLLBACK,
        Outcome.ROLLED_BACK,
    )
    steps = [r.executor_output for r in audit.records if r.kind == "action_step"]
    assert [(s["step"], s["ok"]) for s in steps] == [("isolate", False), ("rollback", True)]
    assert "without a traffic router" in str(steps[0]["detail"])
    [result] = [r for r in audit.records if r.kind == "action_result"]
    assert result.outcome == "success"
    assert str(result.executor_output["detail"]).startswith("rolled back, isolate failed: ")
