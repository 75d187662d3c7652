"""A failed scale never keeps the bad release: the rollback still runs.

A command executor drives the test cluster with ``kubectl`` as the ServiceAccount
of deploy/rbac.yaml, which may patch Deployments (enough for ``rollout undo``)
but not their ``scale`` subresource, so ``kubectl scale`` is forbidden, as it is
for anyone who reuses that Role. The watch must still undo the Deployment,
record the scale as a failed step with its reason, and end rolled back with the
failed scale in its detail.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from breached import watch_breached

from kube_support import grant_rbac, image, replicas, roll_out
from rollguard.audit.base import MemoryAuditSink
from rollguard.controller.watch import Outcome
from rollguard.policy import Action
from servers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_server


def _policy(kube: KubeCluster, namespace: str, kubeconfig: Path) -> str:
    kubectl = [
        str(kube.bin / "kubectl"),
        f"--kubeconfig={kubeconfig}",
        f"--cache-dir={kube.directory / 'kubectl-cache'}",
        f"--namespace={namespace}",
    ]
    executor = {
        "type": "command",
        "rollback": [*kubectl, "rollout", "undo", "deployment/{deployment}"],
        "scale": [*kubectl, "scale", "deployment/{deployment}", "--replicas=4"],
    }
    return f"""\
target: {{deployment: shop, executor: {json.dumps(executor)}}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}}
analysis: {{interval: 5s, persistence: 1}}
error_rate_trigger: {{threshold: 5%, window: 30s, action: scaling_and_rollback}}
rollback: {{scale_factor: 2}}
"""


def test_the_release_is_rolled_back_when_scaling_fails(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    kubeconfig = grant_rbac(kube_cluster, kube_namespace, tmp_path / "rollguard.kubeconfig")
    audit = MemoryAuditSink()

    policy = _policy(kube_cluster, kube_namespace, kubeconfig)
    watched = asyncio.run(watch_breached(policy, audit, tmp_path))

    assert image(kube_cluster, kube_namespace) == "shop:1.0"  # undone on the API server
    assert replicas(kube_cluster, kube_namespace, "shop")[0] == 2  # the scale changed nothing
    assert (watched.action, watched.outcome) == (Action.SCALING_AND_ROLLBACK, Outcome.ROLLED_BACK)
    steps = [r.executor_output for r in audit.records if r.kind == "action_step"]
    assert [(s["step"], s["ok"]) for s in steps] == [("scale", False), ("rollback", True)]
    assert "forbidden" in str(steps[0]["detail"]).lower()
    [result] = [r for r in audit.records if r.kind == "action_result"]
    assert result.outcome == "success"
    assert str(result.executor_output["detail"]).startswith("rolled back, scale failed: ")
