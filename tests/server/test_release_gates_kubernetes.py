"""Manual gates on a progressive release through the real test Kubernetes cluster.

``rollguard release pause|resume|abort|retry|promote`` against a real ``serve``
whose executor steps two real Deployments by replica counts (no router): each
gate is checked by the pods the API server holds for the canary and stable
Deployments, and by the audit trail (who asked, for whom, why). The release is
healthy, so left alone it would step on; ``confirm_step`` lets a step go only
once the test has written ``go-<weight>`` (progressive_serve.py).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from progressive_serve import (
    gates_recorded,
    live,
    ops_auth,
    ops_gate,
    wait_held_with_evidence,
    write_folder,
)
from serve_harness import start_serve

from kube_support import SPLIT_PODS, SPLIT_STABLE, replicas, split_pair
from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from servers.kube_cluster import KubeCluster
from support import wait_until

pytestmark = pytest.mark.real_server

OPS_TOKEN = "ops-token-0123456789abcdef"


def _executor(cluster: KubeCluster, namespace: str) -> str:
    spec = {
        "type": "kubernetes",
        "deployment": "shop",
        "stable_deployment": SPLIT_STABLE,
        "namespace": namespace,
        "kubeconfig": str(cluster.kubeconfig),
        "poll_interval": 0.2,
        "rollout_timeout": 90,
    }
    return json.dumps(spec)


@pytest.fixture
def two_deployments(kube_cluster: KubeCluster, kube_namespace: str) -> str:
    """Stable with all the pods; the canary Deployment created at none."""
    return split_pair(kube_cluster, kube_namespace)


def test_pause_resume_abort_retry_promote_on_kubernetes_by_replica_counts(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    two_deployments: str,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    kube_namespace = two_deployments
    folder = write_folder(
        tmp_path, _executor(kube_cluster, kube_namespace), hook="{command: [/bin/true]}"
    )
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    auth = ops_auth()

    def gate(*args: str) -> dict[str, Any]:
        return ops_gate(rollguard_cmd, cli_env, served, *args)

    def pods() -> tuple[int, ...]:
        """(canary wanted, ready, stable wanted, ready) as the API server has them."""
        return replicas(kube_cluster, kube_namespace, "shop", SPLIT_STABLE)

    def split(canary: int) -> tuple[int, ...]:
        return canary, canary, SPLIT_PODS - canary, SPLIT_PODS - canary

    def at_first_step() -> bool:
        """One canary pod, and serve shows the release at its first step (the pods are
        ready before the watch publishes the step it took)."""
        shown = served.detail("shop").get("promotion")
        return pods() == split(1) and isinstance(shown, dict) and shown["step"] == 1

    try:
        with start_serve(folder, store=store, auth=auth, factory=live) as served:
            wait_until(at_first_step, timeout=60, what="the first step, 1 pod")
            # Pause: held at one pod across intervals in which the evidence would move it on.
            paused = gate("pause", "shop", "--reason", "hold for the load test", "--as", "alice")
            # serve reads the share back from the cluster: 1 of 8 ready pods, 12.5 % -> 13.
            assert (paused["status"], paused["canary_weight"]) == ("paused", 13)
            assert paused["promotion"]["canary_weight"] == 10  # the step's share
            (tmp_path / "go-10").touch()  # only the pause holds it now
            wait_held_with_evidence(served)
            assert pods() == split(1)
            # Resume: on to 25 % (two pods), where confirm_step holds it.
            assert gate("resume", "shop")["status"] == "watching"
            wait_until(lambda: pods() == split(2), timeout=60, what="a step after resume")
            assert gate("pause", "shop")["canary_weight"] == 25
            # Abort: every pod back on stable before the answer comes.
            aborted = gate("abort", "shop", "--reason", "bad release notes", "--as", "bob")
            assert aborted["status"] == "aborted"
            assert pods() == split(0)
            # Retry: the first step again (where confirm_step holds it this time).
            (tmp_path / "go-10").unlink()
            assert gate("retry", "shop", "--reason", "notes fixed")["status"] == "watching"
            wait_until(at_first_step, timeout=60, what="the first step again")
            # Promote: through confirm_promotion, every pod to the canary.
            promoted = gate("promote", "shop", "--reason", "go", "--as", "carol")
            assert (promoted["status"], promoted["canary_weight"]) == ("promoted", 100)
            assert pods() == split(SPLIT_PODS)
    finally:
        entries = [entry.record for entry in store.list(deployment="shop")]
        store.close()
    _recorded(entries)


def _recorded(entries: list[AuditRecord]) -> None:
    """The gates as on HAProxy; whom each named; the promote as an action; the shares achieved."""
    commands = gates_recorded(entries)
    me = getpass.getuser()  # whom the CLI names without --as
    assert [c.evidence.get("on_behalf_of") for c in commands] == [
        "alice",
        me,
        me,
        "bob",
        me,
        "carol",
    ]
    results = [r for r in entries if r.kind == "action_result" and r.trigger == "operator"]
    assert [(r.reason, r.outcome) for r in results] == [
        ("abort by ops for bob: bad release notes", "success"),
        ("promote by ops for carol: go", "success"),
    ]
    steps = [r.executor_output for r in entries if r.kind == "promotion_step"]
    assert [(s["achieved_weight"], s["replicas"]["canary"]) for s in steps] == [
        (12.5, 1),
        (25.0, 2),
        (12.5, 1),
    ]
