"""Traffic routers (Gateway API HTTPRoute, Istio VirtualService, NGINX canary Ingress)
against the in-process API server, with the resources' real JSON shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kube_support import image, make_executor, run

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus
from servers.kube_api import FakeCluster, running_cluster


def httproute() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop"},
        "spec": {
            "parentRefs": [{"name": "public-gateway"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": "shop-stable", "port": 8080, "weight": 80},
                        {"name": "shop-canary", "port": 8080, "weight": 20},
                    ],
                }
            ],
        },
    }


def virtualservice() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "shop"},
        "spec": {
            "hosts": ["shop"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "shop", "subset": "stable"}, "weight": 80},
                        {"destination": {"host": "shop", "subset": "canary"}, "weight": 20},
                    ]
                }
            ],
        },
    }


def canary_ingress() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "shop-canary",
            "annotations": {
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": "20",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "shop-canary", "port": {"number": 8080}}
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }


ROUTERS = {
    "gateway-httproute": (
        "httproutes",
        httproute,
        {"name": "shop", "stable_backend": "shop-stable", "canary_backend": "shop-canary"},
    ),
    "istio-virtualservice": (
        "virtualservices",
        virtualservice,
        {"name": "shop", "stable_backend": "stable", "canary_backend": "canary"},
    ),
    "nginx-ingress": ("ingresses", canary_ingress, {"name": "shop-canary"}),
}


def weights(cluster: FakeCluster, kind: str) -> tuple[int, int]:
    """(stable, canary) as stored in the cluster, read without rollguard's code."""
    plural, _, router = ROUTERS[kind]
    obj = cluster.get(plural, router["name"])
    if kind == "gateway-httproute":
        refs = {r["name"]: r["weight"] for r in obj["spec"]["rules"][0]["backendRefs"]}
        return refs["shop-stable"], refs["shop-canary"]
    if kind == "istio-virtualservice":
        routes = {r["destination"]["subset"]: r["weight"] for r in obj["spec"]["http"][0]["route"]}
        return routes["stable"], routes["canary"]
    canary = int(obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"])
    return 100 - canary, canary


@pytest.fixture(params=sorted(ROUTERS))
def routed(request: pytest.FixtureRequest) -> Iterator[tuple[FakeCluster, str]]:
    kind: str = request.param
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        plural, make, _ = ROUTERS[kind]
        cluster.put(plural, make())
        yield cluster, kind


def executor_for(cluster: FakeCluster, kind: str, **router: Any) -> Any:
    return make_executor(cluster, router={"kind": kind, **ROUTERS[kind][2], **router})


@pytest.mark.parametrize("percent", [0, 35, 100])
def test_set_weight_writes_and_reads_back(routed: tuple[FakeCluster, str], percent: int) -> None:
    cluster, kind = routed
    result: ActionResult = run(executor_for(cluster, kind), "set_canary_weight", percent=percent)
    assert result.ok, result.detail
    assert weights(cluster, kind) == (100 - percent, percent)
    status: TargetStatus = run(executor_for(cluster, kind), "status")
    assert status.canary_weight == percent


def test_status_reads_the_existing_split(routed: tuple[FakeCluster, str]) -> None:
    cluster, kind = routed
    status: TargetStatus = run(executor_for(cluster, kind), "status")
    assert (status.canary_weight, status.canary_state) == (20, "serving")


def test_isolate_moves_traffic_only(routed: tuple[FakeCluster, str]) -> None:
    cluster, kind = routed
    result: ActionResult = run(executor_for(cluster, kind), "isolate")
    assert result.ok
    assert weights(cluster, kind) == (100, 0)
    assert image(cluster) == "shop:2.0"  # kept for forensics
    status: TargetStatus = run(executor_for(cluster, kind), "status")
    assert (status.canary_weight, status.canary_state) == (0, "isolated")


def test_rollback_moves_traffic_then_undoes(routed: tuple[FakeCluster, str]) -> None:
    cluster, kind = routed
    result: ActionResult = run(executor_for(cluster, kind), "rollback")
    assert result.ok, result.detail
    assert result.output["steps"][0] == "router: canary at 0%"
    assert weights(cluster, kind) == (100, 0)
    assert image(cluster) == "shop:1.0"
    status: TargetStatus = run(executor_for(cluster, kind), "status")
    assert (status.canary_weight, status.canary_state) == (0, "retired")
    paths = [path for method, path, _ in cluster.requests if method == "PATCH"]
    assert paths[0].endswith(f"/{ROUTERS[kind][0]}/{ROUTERS[kind][2]['name']}")  # traffic first


def test_router_conflict_is_retried(routed: tuple[FakeCluster, str]) -> None:
    cluster, kind = routed
    cluster.scenario.conflicts = 1
    result: ActionResult = run(executor_for(cluster, kind), "set_canary_weight", percent=50)
    assert result.ok
    assert weights(cluster, kind) == (50, 50)


@pytest.mark.parametrize("kind", ["gateway-httproute", "istio-virtualservice"])
def test_unknown_backend_is_named(kind: str) -> None:
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        plural, make, _ = ROUTERS[kind]
        cluster.put(plural, make())
        before = weights(cluster, kind)
        with pytest.raises(ExecutorError, match="no canary backend 'green'"):
            run(
                executor_for(cluster, kind, canary_backend="green"), "set_canary_weight", percent=50
            )
        assert weights(cluster, kind) == before


def test_an_ingress_that_is_not_a_canary_is_refused() -> None:
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        plain = canary_ingress()
        plain["metadata"]["annotations"] = {}
        cluster.put("ingresses", plain)
        with pytest.raises(ExecutorError, match="not an NGINX canary"):
            run(executor_for(cluster, "nginx-ingress"), "set_canary_weight", percent=10)


def test_missing_router_object_is_named() -> None:
    with running_cluster() as cluster:
        cluster.add_deployment("shop", images=["shop:1.0", "shop:2.0"])
        with pytest.raises(ExecutorError, match=r"HTTPRoute 'shop' not found .*router.name"):
            run(executor_for(cluster, "gateway-httproute"), "status")
