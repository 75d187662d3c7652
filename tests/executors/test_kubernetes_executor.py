"""The Kubernetes executor against an in-process API server speaking real HTTP and JSON.

No kube-apiserver can run here; see tests/servers/kube_api.py for what the fake
cluster implements (and docs/kubernetes.md: not run against a live cluster).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kube_support import image, make_executor, run

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from servers.kube_api import HASH, REVISION, FakeCluster, Scenario, running_cluster


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with running_cluster() as fake:
        fake.add_deployment("shop", images=["shop:1.0", "shop:1.1", "shop:2.0"])
        yield fake


def test_rollback_restores_the_previous_revision(cluster: FakeCluster) -> None:
    result: ActionResult = run(make_executor(cluster), "rollback")
    assert result.ok, result.detail
    assert "rolled back to revision 2" in result.detail
    assert "successfully rolled out" in result.detail
    deployment = cluster.get("deployments", "shop")
    assert image(cluster) == "shop:1.1"
    assert HASH not in deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["metadata"]["annotations"][REVISION] == "4"  # the old ReplicaSet, re-numbered
    patches = [r for r in cluster.requests if r[0] == "PATCH"]
    assert patches == [
        (
            "PATCH",
            "/apis/apps/v1/namespaces/default/deployments/shop",
            "application/json-patch+json",
        )
    ]
    lists = [r[1] for r in cluster.requests if r[1].endswith("/replicasets")]
    assert lists, "ReplicaSets were listed"


def test_rollback_twice_does_not_flip_back(cluster: FakeCluster) -> None:
    first: ActionResult = run(make_executor(cluster), "rollback")
    second: ActionResult = run(make_executor(cluster), "rollback")
    assert first.ok
    assert second.ok, second.detail
    assert "already rolled back" in second.detail
    assert image(cluster) == "shop:1.1"
    status: TargetStatus = run(make_executor(cluster), "status")
    assert (status.canary_weight, status.canary_state) == (0, "retired")


def test_status_before_rollback_is_serving(cluster: FakeCluster) -> None:
    status: TargetStatus = run(make_executor(cluster), "status")
    assert (status.canary_weight, status.canary_state) == (100, "serving")
    assert status.detail["revision"] == "3"


def test_to_revision(cluster: FakeCluster) -> None:
    result: ActionResult = run(make_executor(cluster, to_revision=1), "rollback")
    assert result.ok, result.detail
    assert image(cluster) == "shop:1.0"


def test_unknown_revision_is_refused_with_the_known_ones(cluster: FakeCluster) -> None:
    result: ActionResult = run(make_executor(cluster, to_revision=9), "rollback")
    assert not result.ok
    assert "revision 9 of deployment/shop not found" in result.detail
    assert "revisions: 1, 2, 3" in result.detail
    assert image(cluster) == "shop:2.0"


def test_no_previous_revision_is_refused() -> None:
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:1.0"])
        result: ActionResult = run(make_executor(cluster), "rollback")
    assert not result.ok
    assert "no previous revision" in result.detail


def test_paused_deployment_is_refused() -> None:
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"], paused=True)
        result: ActionResult = run(make_executor(cluster), "rollback")
        assert image(cluster) == "shop:2.0"
    assert not result.ok
    assert "is paused; resume it first (kubectl rollout resume deployment/shop)" in result.detail


def test_replicasets_of_other_owners_are_ignored(cluster: FakeCluster) -> None:
    stranger = dict(
        cluster.get("replicasets", next(n for (p, _, n) in cluster.objects if p == "replicasets"))
    )
    stranger = {
        **stranger,
        "metadata": {
            **stranger["metadata"],
            "name": "impostor",
            "annotations": {REVISION: "2"},
            "ownerReferences": [
                {"uid": "someone-else", "controller": True, "kind": "Deployment", "name": "x"}
            ],
        },
    }
    stranger["spec"] = {
        **stranger["spec"],
        "template": {
            "metadata": {"labels": {"app": "shop"}},
            "spec": {"containers": [{"name": "app", "image": "evil:1"}]},
        },
    }
    cluster.put("replicasets", stranger)
    assert run(make_executor(cluster), "rollback").ok
    assert image(cluster) == "shop:1.1"


def test_conflicts_are_re_read_and_retried() -> None:
    with running_cluster(Scenario(conflicts=2)) as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        result: ActionResult = run(make_executor(cluster), "rollback")
        assert image(cluster) == "shop:1.0"
        patches = [r for r in cluster.requests if r[0] == "PATCH"]
    assert result.ok, result.detail
    assert len(patches) == 3  # two 409s, then the write


def test_endless_conflicts_give_up_with_the_reason() -> None:
    with running_cluster(Scenario(conflicts=100)) as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        with pytest.raises(ExecutorError, match=r"gave up after 3 conflicting writes \(409\)"):
            run(make_executor(cluster, conflict_retries=2), "rollback")


def test_forbidden_is_named_with_rbac_hint() -> None:
    with running_cluster(Scenario(forbidden={("patch", "deployments")})) as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        with pytest.raises(ExecutorError) as caught:
            run(make_executor(cluster), "rollback")
    message = str(caught.value)
    assert "forbids patch on deployments/shop in namespace 'default' (403)" in message
    assert "deploy/rbac.yaml" in message


def test_missing_deployment_is_named(cluster: FakeCluster) -> None:
    with pytest.raises(
        ExecutorError,
        match=r"Deployment 'cart' not found in namespace 'default' \(target.executor.deployment\)",
    ):
        run(make_executor(cluster, deployment="cart"), "rollback")


def test_progress_deadline_exceeded_is_a_failure() -> None:
    with running_cluster(Scenario(deadline_exceeded=True)) as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        result: ActionResult = run(make_executor(cluster), "rollback")
    assert not result.ok
    assert "exceeded its progress deadline" in result.detail


def test_rollout_that_never_completes_times_out() -> None:
    with running_cluster(Scenario(stall=True)) as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        result: ActionResult = run(make_executor(cluster, rollout_timeout="30s"), "rollback")
    assert not result.ok
    assert (
        "timed out after 30s waiting for deployment/shop: 1 of 3 new replicas updated"
        in result.detail
    )


def test_scale_is_idempotent_and_waits(cluster: FakeCluster) -> None:
    first: ActionResult = run(make_executor(cluster), "scale", factor=2.0)
    second: ActionResult = run(make_executor(cluster), "scale", factor=2.0)
    assert first.ok, first.detail
    assert second.ok, second.detail
    deployment = cluster.get("deployments", "shop")
    assert deployment["spec"]["replicas"] == 6
    assert deployment["status"]["availableReplicas"] == 6
    assert first.output["replicas"] == 6


def test_without_router_shifting_and_isolation_fail_clearly(cluster: FakeCluster) -> None:
    shifted: ActionResult = run(make_executor(cluster), "set_canary_weight", percent=50)
    isolated: ActionResult = run(make_executor(cluster), "isolate")
    assert not shifted.ok
    assert not isolated.ok
    assert "target.executor.router" in shifted.detail
