"""Traffic routers on the real control plane, on their real CRDs: Gateway API HTTPRoute
(sigs.k8s.io/gateway-api's standard channel), Istio VirtualService (istio.io/api) and a
networking/v1 Ingress with NGINX's canary annotations.

The API server validates every write against the CRD's schema. There is no data plane
behind these objects here: what is tested is what rollguard writes and reads back.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from kube_support import (
    ROUTERS,
    ConcurrentWriter,
    canary_ingress,
    create,
    deployment,
    executor,
    get,
    image,
    roll_out,
    run,
    weights,
)
from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.executors.kubernetes import KubernetesExecutor
from servers.kube_cluster import KubeCluster

pytestmark = pytest.mark.real_server


@pytest.fixture(params=sorted(ROUTERS))
def routed(
    request: pytest.FixtureRequest,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    router_crds: list[str],
) -> str:
    """Deployment ``shop`` rolled out from shop:1.0 to shop:2.0 behind the router ``kind``."""
    kind: str = request.param
    roll_out(kube_cluster, kube_namespace, "shop:1.0", "shop:2.0")
    create(kube_cluster, kube_namespace, ROUTERS[kind][1]())
    return kind


def routed_executor(
    cluster: KubeCluster,
    namespace: str,
    kind: str,
    *,
    api_client: k8s.ApiClient | None = None,
    **router: Any,
) -> KubernetesExecutor:
    return executor(
        cluster,
        namespace,
        api_client=api_client,
        router={"kind": kind, **ROUTERS[kind][2], **router},
    )


def test_weights_are_written_and_read_back(
    kube_cluster: KubeCluster, kube_namespace: str, routed: str
) -> None:
    for percent in (35, 100, 0):
        result: ActionResult = run(
            routed_executor(kube_cluster, kube_namespace, routed),
            "set_canary_weight",
            percent=percent,
        )
        assert result.ok, result.detail
        assert weights(kube_cluster, kube_namespace, routed) == (100 - percent, percent)
        status: TargetStatus = run(routed_executor(kube_cluster, kube_namespace, routed), "status")
        assert status.canary_weight == percent


def test_status_reads_the_existing_split(
    kube_cluster: KubeCluster, kube_namespace: str, routed: str
) -> None:
    status: TargetStatus = run(routed_executor(kube_cluster, kube_namespace, routed), "status")
    assert (status.canary_weight, status.canary_state) == (20, "serving")


def test_isolate_moves_traffic_only(
    kube_cluster: KubeCluster, kube_namespace: str, routed: str
) -> None:
    result: ActionResult = run(routed_executor(kube_cluster, kube_namespace, routed), "isolate")
    assert result.ok, result.detail
    assert weights(kube_cluster, kube_namespace, routed) == (100, 0)
    assert image(kube_cluster, kube_namespace) == "shop:2.0"  # kept for forensics
    status: TargetStatus = run(routed_executor(kube_cluster, kube_namespace, routed), "status")
    assert (status.canary_weight, status.canary_state) == (0, "isolated")


def test_rollback_moves_traffic_first_then_undoes(
    kube_cluster: KubeCluster, kube_namespace: str, routed: str
) -> None:
    recorder = ConcurrentWriter(kube_cluster.kubeconfig)
    rollback = routed_executor(kube_cluster, kube_namespace, routed, api_client=recorder)
    result: ActionResult = run(rollback, "rollback")

    assert result.ok, result.detail
    assert result.output["steps"][0] == "router: canary at 0%"
    assert weights(kube_cluster, kube_namespace, routed) == (100, 0)
    assert image(kube_cluster, kube_namespace) == "shop:1.0"
    patched = [path for method, path, _ in recorder.responses if method == "PATCH"]
    assert patched[0].endswith(f"/{ROUTERS[routed][2]['name']}")  # traffic moved first
    assert "/deployments/" in patched[-1]
    status: TargetStatus = run(routed_executor(kube_cluster, kube_namespace, routed), "status")
    assert (status.canary_weight, status.canary_state) == (0, "retired")


def test_a_concurrent_edit_of_the_router_is_a_real_409_and_retried(
    kube_cluster: KubeCluster, kube_namespace: str, routed: str
) -> None:
    resource, _, router = ROUTERS[routed]

    def label() -> None:
        kube_cluster.kubectl(
            "label", resource, router["name"], "-n", kube_namespace, "example.com/touched=yes"
        )

    writer = ConcurrentWriter(kube_cluster.kubeconfig, f"/{router['name']}", times=1, write=label)
    shift = routed_executor(kube_cluster, kube_namespace, routed, api_client=writer)
    result: ActionResult = run(shift, "set_canary_weight", percent=50)
    assert result.ok, result.detail
    assert writer.statuses("PATCH")[:2] == [409, 200]
    assert weights(kube_cluster, kube_namespace, routed) == (50, 50)
    touched = get(kube_cluster, kube_namespace, resource, router["name"])["metadata"]["labels"]
    assert touched["example.com/touched"] == "yes"  # the other write is kept


@pytest.mark.parametrize("kind", ["gateway-httproute", "istio-virtualservice"])
def test_an_unknown_backend_is_named(
    kube_cluster: KubeCluster, kube_namespace: str, router_crds: list[str], kind: str
) -> None:
    create(kube_cluster, kube_namespace, ROUTERS[kind][1]())
    before = weights(kube_cluster, kube_namespace, kind)
    with pytest.raises(ExecutorError, match="no canary backend 'green'"):
        run(
            routed_executor(kube_cluster, kube_namespace, kind, canary_backend="green"),
            "set_canary_weight",
            percent=50,
        )
    assert weights(kube_cluster, kube_namespace, kind) == before


def test_an_ingress_that_is_not_a_canary_is_refused(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    plain = canary_ingress()
    plain["metadata"]["annotations"] = {}
    create(kube_cluster, kube_namespace, plain)
    with pytest.raises(ExecutorError, match="not an NGINX canary"):
        run(
            routed_executor(kube_cluster, kube_namespace, "nginx-ingress"),
            "set_canary_weight",
            percent=10,
        )
    assert get(kube_cluster, kube_namespace, "ingress", "shop-canary")["metadata"].get(
        "annotations"
    ) in (None, {})


@pytest.mark.parametrize("kind", sorted(ROUTERS))
def test_a_missing_router_object_is_named(
    kube_cluster: KubeCluster, kube_namespace: str, router_crds: list[str], kind: str
) -> None:
    create(kube_cluster, kube_namespace, deployment("shop:1.0"))
    title = {"gateway-httproute": "HTTPRoute", "istio-virtualservice": "VirtualService"}
    with pytest.raises(
        ExecutorError, match=rf"{title.get(kind, 'Ingress')} '.+' not found .*router.name"
    ):
        run(routed_executor(kube_cluster, kube_namespace, kind), "status")
