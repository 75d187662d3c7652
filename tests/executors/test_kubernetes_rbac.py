"""deploy/rbac.yaml under the real RBAC authorizer: enough for every action, and no rule to spare.

rollguard runs as the ServiceAccount the file creates, with a token from the
TokenRequest API (``kubectl create token``). With the whole Role every action
works on a Deployment and all three routers; with any one verb of any one rule
removed, the action that needs it fails with an error naming that verb and
resource.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from kube_support import (
    ROUTERS,
    can,
    create,
    executor,
    grant_rbac,
    rbac_manifests,
    replicas,
    roll_out,
    run,
)
from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from servers.kube_cluster import KubeCluster, new_namespace
from support import wait_until

pytestmark = pytest.mark.real_server

#: Which router kind uses each router resource the Role names.
ROUTER_OF = {"httproutes": "gateway-httproute", "virtualservices": "istio-virtualservice"}
ROUTER_OF["ingresses"] = "nginx-ingress"


def role() -> dict[str, Any]:
    return next(doc for doc in rbac_manifests() if doc["kind"] == "Role")


def permissions() -> list[tuple[int, str, str]]:
    """(rule index, resource, verb) for every verb the Role grants."""
    return [
        (index, resource, verb)
        for index, rule in enumerate(role()["rules"])
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def set_up(cluster: KubeCluster, namespace: str, directory: Path) -> Path:
    """The Role from deploy/rbac.yaml, a Deployment at revision 2 and all three routers."""
    kubeconfig = grant_rbac(cluster, namespace, directory / "rollguard.kubeconfig")
    roll_out(cluster, namespace, "shop:1.0", "shop:2.0")
    for _, make, _ in ROUTERS.values():
        create(cluster, namespace, make())
    return kubeconfig


def test_the_role_is_enough_for_every_action(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    router_crds: list[str],
    tmp_path: Path,
) -> None:
    kubeconfig = set_up(kube_cluster, kube_namespace, tmp_path)
    for kind, (_, _, router) in ROUTERS.items():

        def act(call: str, kind: str = kind, router: dict[str, Any] = router, **kw: Any) -> Any:
            return run(
                executor(
                    kube_cluster, kube_namespace, kubeconfig=kubeconfig,
                    router={"kind": kind, **router},
                ),
                call,
                **kw,
            )  # fmt: skip

        status: TargetStatus = act("status")
        assert status.canary_weight == 20
        for result in (act("set_canary_weight", percent=40), act("isolate")):
            assert result.ok, result.detail
    scaled: ActionResult = run(
        executor(kube_cluster, kube_namespace, kubeconfig=kubeconfig), "scale", factor=2.0
    )
    rolled_back: ActionResult = run(
        executor(kube_cluster, kube_namespace, kubeconfig=kubeconfig), "rollback"
    )
    assert scaled.ok, scaled.detail
    assert rolled_back.ok, rolled_back.detail
    assert "rolled back to revision 1" in rolled_back.detail


def test_the_role_is_enough_to_scale_stable_and_split_by_replica_counts(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    """scaling_and_rollback scales the stable Deployment and a promotion without a router
    steps both Deployments' replica counts: each patches spec.replicas on the Deployment
    itself (no deployments/scale rule), which the Role's get and patch cover."""
    kubeconfig = grant_rbac(kube_cluster, kube_namespace, tmp_path / "rollguard.kubeconfig")
    roll_out(kube_cluster, kube_namespace, "shop:1.0")
    roll_out(kube_cluster, kube_namespace, "shop:0.9", name="shop-stable")

    def act(call: str, **arguments: Any) -> ActionResult:
        made = executor(
            kube_cluster, kube_namespace, kubeconfig=kubeconfig, stable_deployment="shop-stable"
        )
        result: ActionResult = run(made, call, **arguments)
        assert result.ok, f"{call}: {result.detail}"
        return result

    act("scale", factor=2.0)
    assert replicas(kube_cluster, kube_namespace, "shop-stable") == (4, 4)
    act("set_canary_weight", percent=50)  # 2 + 4 pods: 3 each
    assert replicas(kube_cluster, kube_namespace, "shop", "shop-stable") == (3, 3, 3, 3)
    act("rollback")  # without a router: the canary to 0, stable to the total
    assert replicas(kube_cluster, kube_namespace, "shop", "shop-stable") == (0, 0, 6, 6)


@pytest.fixture(scope="module")
def granted(
    kube_cluster: KubeCluster,
    kube_admin: k8s.ApiClient,
    router_crds: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path]]:
    """One namespace set up for all the removal cases: (namespace, the SA's kubeconfig)."""
    with new_namespace(kube_cluster, kube_admin) as namespace:
        yield namespace, set_up(kube_cluster, namespace, tmp_path_factory.mktemp("rbac"))


def action_needing(resource: str, verb: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(executor spec, method, arguments) whose first call of ``verb`` on ``resource``
    cannot be skipped, whatever earlier cases did to the objects."""
    if resource in ROUTER_OF:
        kind = ROUTER_OF[resource]
        spec = {"router": {"kind": kind, **ROUTERS[kind][2]}}
        return (spec, "set_canary_weight", {"percent": 40}) if verb == "patch" else (
            spec, "status", {}
        )  # fmt: skip
    if (resource, verb) == ("deployments", "patch"):
        return {}, "scale", {"factor": 1.0}  # scale always writes; a rollback may be a no-op
    return {}, "status", {}  # reads the Deployment, then lists its ReplicaSets


@pytest.mark.parametrize(
    ("rule", "resource", "verb"), permissions(), ids=[f"{r}-{v}" for _, r, v in permissions()]
)
def test_without_one_permission_its_action_fails_naming_it(
    kube_cluster: KubeCluster, granted: tuple[str, Path], rule: int, resource: str, verb: str
) -> None:
    namespace, kubeconfig = granted
    trimmed = copy.deepcopy(role())
    trimmed["rules"][rule]["verbs"].remove(verb)
    if not trimmed["rules"][rule]["verbs"]:
        del trimmed["rules"][rule]
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(trimmed))
    try:
        wait_until(
            lambda: not can(kube_cluster, namespace, verb, resource),
            timeout=30,
            what=f"{verb} {resource} revoked",
        )
        spec, call, arguments = action_needing(resource, verb)
        with pytest.raises(ExecutorError) as caught:
            run(executor(kube_cluster, namespace, kubeconfig=kubeconfig, **spec), call, **arguments)
        message = str(caught.value)
        assert f"Kubernetes forbids {verb} on {resource}" in message
        assert f"in namespace {namespace!r} (403)" in message
        assert "deploy/rbac.yaml" in message
    finally:
        kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(role()))
        wait_until(
            lambda: can(kube_cluster, namespace, verb, resource),
            timeout=30,
            what=f"{verb} {resource} granted again",
        )
