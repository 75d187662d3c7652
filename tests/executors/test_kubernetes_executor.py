"""The Kubernetes executor on a real control plane (Kubernetes v1.36, kwok nodes).

Deployments really roll out: the deployment controller makes a ReplicaSet per
revision and kwok runs their pods to Ready. Where ``kubectl rollout undo`` is
the reference, the same Deployment is built twice, in two namespaces, and
rollguard's result is compared with the built ``kubectl``'s field for field.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from kube_support import (
    ConcurrentWriter,
    create,
    deployment,
    executor,
    get,
    history,
    image,
    roll_out,
    run,
    snapshot,
    wait_rolled_out,
)
from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.executors.kubernetes import KubernetesExecutor
from servers.kube_cluster import KubeCluster, new_namespace
from support import wait_until

pytestmark = pytest.mark.real_server

IMAGES = ("shop:1.0", "shop:1.1", "shop:2.0")


@pytest.fixture
def twin_namespace(kube_cluster: KubeCluster, kube_admin: k8s.ApiClient) -> Iterator[str]:
    """A second namespace, where the built kubectl acts on an identical Deployment."""
    with new_namespace(kube_cluster, kube_admin) as name:
        yield name


def kubectl_undo(
    cluster: KubeCluster, namespace: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "rollout", "undo", "deployment/shop", "-n", namespace, *flags, check=False
    )


def test_rollback_does_what_kubectl_rollout_undo_does(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    for namespace in (kube_namespace, twin_namespace):
        roll_out(kube_cluster, namespace, *IMAGES)

    result: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    assert kubectl_undo(kube_cluster, twin_namespace).returncode == 0
    wait_rolled_out(kube_cluster, twin_namespace)

    assert result.ok, result.detail
    assert "rolled back to revision 2" in result.detail
    assert "deployment/shop successfully rolled out" in result.detail
    assert image(kube_cluster, kube_namespace) == "shop:1.1"
    assert snapshot(kube_cluster, kube_namespace) == snapshot(kube_cluster, twin_namespace)
    # The revision-2 ReplicaSet is reused as revision 4; no new one is made.
    assert history(kube_cluster, kube_namespace) == {
        1: ("shop:1.0", 0),
        3: ("shop:2.0", 0),
        4: ("shop:1.1", 2),
    }


def test_to_revision_does_what_kubectl_does(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    for namespace in (kube_namespace, twin_namespace):
        roll_out(kube_cluster, namespace, *IMAGES)

    result: ActionResult = run(executor(kube_cluster, kube_namespace, to_revision=1), "rollback")
    assert kubectl_undo(kube_cluster, twin_namespace, "--to-revision=1").returncode == 0
    wait_rolled_out(kube_cluster, twin_namespace)

    assert result.ok, result.detail
    assert image(kube_cluster, kube_namespace) == "shop:1.0"
    assert snapshot(kube_cluster, kube_namespace) == snapshot(kube_cluster, twin_namespace)


def test_rolling_back_twice_is_a_no_op_where_kubectl_flips_back(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    for namespace in (kube_namespace, twin_namespace):
        roll_out(kube_cluster, namespace, *IMAGES)

    first: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    second: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    for _ in range(2):
        assert kubectl_undo(kube_cluster, twin_namespace).returncode == 0
        wait_rolled_out(kube_cluster, twin_namespace)

    assert first.ok, first.detail
    assert second.ok, second.detail
    assert "already rolled back" in second.detail
    assert image(kube_cluster, kube_namespace) == "shop:1.1"
    assert image(kube_cluster, twin_namespace) == "shop:2.0"  # kubectl undid its own undo
    status: TargetStatus = run(executor(kube_cluster, kube_namespace), "status")
    assert (status.canary_weight, status.canary_state) == (0, "retired")


def test_status_before_rollback_is_serving(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    roll_out(kube_cluster, kube_namespace, *IMAGES)
    status: TargetStatus = run(executor(kube_cluster, kube_namespace), "status")
    assert (status.canary_weight, status.canary_state) == (100, "serving")
    assert status.detail["revision"] == "3"


def test_an_unknown_revision_is_refused_like_kubectl(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    for namespace in (kube_namespace, twin_namespace):
        roll_out(kube_cluster, namespace, *IMAGES)

    result: ActionResult = run(executor(kube_cluster, kube_namespace, to_revision=9), "rollback")
    refused = kubectl_undo(kube_cluster, twin_namespace, "--to-revision=9")

    assert not result.ok
    assert "revision 9 of deployment/shop not found" in result.detail
    assert "revisions: 1, 2, 3" in result.detail
    assert refused.returncode == 1
    assert "unable to find specified revision 9" in refused.stderr
    assert image(kube_cluster, kube_namespace) == image(kube_cluster, twin_namespace) == "shop:2.0"


def test_no_previous_revision_is_refused_like_kubectl(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    for namespace in (kube_namespace, twin_namespace):
        roll_out(kube_cluster, namespace, "shop:1.0")

    result: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    refused = kubectl_undo(kube_cluster, twin_namespace)

    assert not result.ok
    assert "no previous revision" in result.detail
    assert refused.returncode == 1
    assert "no rollout history found" in refused.stderr


def test_a_paused_deployment_is_refused_like_kubectl(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    for namespace in (kube_namespace, twin_namespace):
        roll_out(kube_cluster, namespace, "shop:1.0", "shop:2.0")
        kube_cluster.kubectl("rollout", "pause", "deployment/shop", "-n", namespace)

    result: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    refused = kubectl_undo(kube_cluster, twin_namespace)

    assert not result.ok
    assert "is paused; resume it first (kubectl rollout resume deployment/shop)" in result.detail
    assert refused.returncode == 1
    assert "cannot rollback a paused deployment" in refused.stderr
    assert image(kube_cluster, kube_namespace) == "shop:2.0"


def test_replicasets_of_another_deployment_are_ignored(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    # Its ReplicaSets carry app=shop too, and a higher revision than shop's previous one.
    labels = {"app": "shop", "impostor": "yes"}
    roll_out(
        kube_cluster,
        kube_namespace,
        "evil:1",
        "evil:2",
        name="impostor",
        selector={"matchLabels": labels},
        template={
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "evil:1"}]},
        },
    )
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    result: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    assert result.ok, result.detail
    assert image(kube_cluster, kube_namespace) == "shop:1.0"


def editing_executor(
    cluster: KubeCluster, namespace: str, *, edits: int, **spec: Any
) -> tuple[KubernetesExecutor, ConcurrentWriter]:
    """An executor whose every read of the Deployment (the first ``edits``) is followed by
    someone else's ``kubectl annotate``, so its patch carries a stale resourceVersion."""
    counter = iter(range(edits - 1, -1, -1))

    def annotate() -> None:
        cluster.kubectl(
            "annotate", "deployment/shop", "-n", namespace,
            f"example.com/edited-by-someone-else={next(counter)}", "--overwrite",
        )  # fmt: skip

    api = ConcurrentWriter(cluster.kubeconfig, "/deployments/shop", times=edits, write=annotate)
    return executor(cluster, namespace, api_client=api, **spec), api


def test_a_concurrent_edit_is_a_real_409_and_the_rollback_reads_again(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    rollback, api = editing_executor(kube_cluster, kube_namespace, edits=2)
    result: ActionResult = run(rollback, "rollback")
    assert result.ok, result.detail
    assert api.statuses("PATCH") == [409, 409, 200]
    assert image(kube_cluster, kube_namespace) == "shop:1.0"
    annotations = get(kube_cluster, kube_namespace, "deployment")["metadata"]["annotations"]
    assert annotations["example.com/edited-by-someone-else"] == "0"  # the other write is kept


def test_endless_conflicts_give_up_with_the_reason(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    rollback, api = editing_executor(kube_cluster, kube_namespace, edits=100, conflict_retries=2)
    with pytest.raises(ExecutorError, match=r"gave up after 3 conflicting writes \(409\)"):
        run(rollback, "rollback")
    assert api.statuses("PATCH") == [409] * 3
    assert image(kube_cluster, kube_namespace) == "shop:2.0"


def test_a_missing_deployment_is_named(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    with pytest.raises(
        ExecutorError,
        match=r"Deployment 'cart' not found in namespace 'test-\w+' \(target.executor.deployment\)",
    ):
        run(executor(kube_cluster, kube_namespace, deployment="cart"), "rollback")


def pending_first_revision(cluster: KubeCluster, namespace: str, *, deadline_seconds: int) -> None:
    """Revision 1 asks for a node pool that no longer exists; revision 2 runs anywhere.
    Rolling back to revision 1 makes pods that stay Pending."""
    manifest = deployment("shop:1.0", progressDeadlineSeconds=deadline_seconds)
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"example.com/pool": "retired"}
    create(cluster, namespace, manifest)
    anywhere = [
        {"op": "remove", "path": "/spec/template/spec/nodeSelector"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "shop:2.0"},
    ]
    cluster.kubectl(
        "patch", "deployment/shop", "-n", namespace, "--type=json", "-p", json.dumps(anywhere)
    )
    wait_rolled_out(cluster, namespace)


@pytest.mark.timeout(300)  # two 60 s waits when the controller stays silent
def test_a_rollback_that_cannot_progress_is_a_failed_action(
    kube_cluster: KubeCluster, kube_namespace: str, twin_namespace: str
) -> None:
    """The controller marks such a rollout ProgressDeadlineExceeded a few seconds after its
    deadline - usually. It measures progress against the last status it wrote, and its
    checks are requeued with exponential backoff: on a loaded machine it was seen to say
    nothing for more than 90 s, and ``kubectl rollout status`` then waits for its own
    ``--timeout``. rollguard fails the action on whichever comes first: the condition, or
    its ``rollout_timeout``."""
    for namespace in (kube_namespace, twin_namespace):
        pending_first_revision(kube_cluster, namespace, deadline_seconds=3)

    result: ActionResult = run(
        executor(kube_cluster, kube_namespace, rollout_timeout="60s"), "rollback"
    )
    assert kubectl_undo(kube_cluster, twin_namespace).returncode == 0
    status = kube_cluster.kubectl(
        "rollout", "status", "deployment/shop", "-n", twin_namespace, "--timeout=60s", check=False
    )

    assert not result.ok
    assert "rolled back to revision 1" in result.detail
    deadline = "deployment/shop exceeded its progress deadline"
    timeout = "timed out after 60s waiting for deployment/shop: 1 of 2 new replicas updated"
    assert deadline in result.detail or timeout in result.detail, result.detail
    assert status.returncode == 1  # kubectl rollout status fails the twin too
    conditions = get(kube_cluster, kube_namespace, "deployment")["status"]["conditions"]
    [progressing] = [c["reason"] for c in conditions if c["type"] == "Progressing"]
    if deadline in result.detail:
        assert progressing == "ProgressDeadlineExceeded"


def test_rolling_back_a_canary_stuck_at_its_deadline_succeeds(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    """The canary never schedules, so its rollout ends ProgressDeadlineExceeded (nearly
    always within kubectl's 20 s). That condition belongs to the canary's rollout: the
    rollback to revision 1, whose pods are still running, completes and is not failed."""
    roll_out(kube_cluster, kube_namespace, "shop:1.0", progressDeadlineSeconds=3)
    nowhere = [
        {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": {"pool": "retired"}},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "shop:2.0"},
    ]
    kube_cluster.kubectl(
        "patch", "deployment/shop", "-n", kube_namespace, "--type=json", "-p", json.dumps(nowhere)
    )
    stuck = kube_cluster.kubectl(
        "rollout", "status", "deployment/shop", "-n", kube_namespace, "--timeout=20s", check=False
    )
    assert stuck.returncode == 1

    result: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    assert result.ok, result.detail
    assert "deployment/shop successfully rolled out" in result.detail
    assert image(kube_cluster, kube_namespace) == "shop:1.0"


def test_a_rollout_that_never_completes_times_out(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    pending_first_revision(kube_cluster, kube_namespace, deadline_seconds=600)
    result: ActionResult = run(
        executor(kube_cluster, kube_namespace, rollout_timeout="3s"), "rollback"
    )
    assert not result.ok
    assert (
        "timed out after 3s waiting for deployment/shop: 1 of 2 new replicas updated"
        in result.detail
    )


def running_pods(cluster: KubeCluster, namespace: str) -> list[str]:
    """Images of the pods that are Running and Ready (terminating ones left out)."""
    listed = json.loads(
        cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=shop", "-o", "json").stdout
    )
    return sorted(
        pod["spec"]["containers"][0]["image"]
        for pod in listed["items"]
        if "deletionTimestamp" not in pod["metadata"]
        and pod["status"].get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])
    )


def test_scale_then_rollback_makes_real_pods_and_scale_is_idempotent(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    first: ActionResult = run(executor(kube_cluster, kube_namespace), "scale", factor=2.0)
    second: ActionResult = run(executor(kube_cluster, kube_namespace), "scale", factor=2.0)

    assert first.ok, first.detail
    assert second.ok, second.detail
    assert first.output["replicas"] == second.output["replicas"] == 4
    status = get(kube_cluster, kube_namespace, "deployment")["status"]
    assert (status["replicas"], status["availableReplicas"]) == (4, 4)
    wait_until(
        lambda: running_pods(kube_cluster, kube_namespace) == ["shop:2.0"] * 4,
        timeout=60,
        what="four pods Running and Ready",
    )

    rolled_back: ActionResult = run(executor(kube_cluster, kube_namespace), "rollback")
    assert rolled_back.ok, rolled_back.detail
    wait_until(
        lambda: running_pods(kube_cluster, kube_namespace) == ["shop:1.0"] * 4,
        timeout=60,
        what="four pods of the previous version Running and Ready",
    )


def test_without_router_shifting_and_isolation_fail_clearly(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    shifted: ActionResult = run(
        executor(kube_cluster, kube_namespace), "set_canary_weight", percent=50
    )
    isolated: ActionResult = run(executor(kube_cluster, kube_namespace), "isolate")
    assert not shifted.ok
    assert not isolated.ok
    assert "target.executor.router" in shifted.detail
    assert image(kube_cluster, kube_namespace) == "shop:2.0"
