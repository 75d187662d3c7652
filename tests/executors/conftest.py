"""Fixtures for the executor tests on the real Kubernetes control plane."""

from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML

from servers.kube_cluster import KubeCluster

#: The router CRDs, from the modules tools/kubernetes/build.sh took them from.
GATEWAY_HTTPROUTE = "gateway-api/gateway.networking.k8s.io_httproutes.yaml"
ISTIO = "istio.yaml"


@pytest.fixture(scope="session")
def router_crds(kube_cluster: KubeCluster) -> list[str]:
    """The Gateway API's HTTPRoute and Istio's VirtualService CRDs, installed and Established,
    so the API server checks every router write against their real schemas."""
    crds, yaml = kube_cluster.dist / "crds", YAML(typ="safe")
    httproute = yaml.load(crds / GATEWAY_HTTPROUTE)
    virtualservice = next(
        doc
        for doc in yaml.load_all(crds / ISTIO)
        if doc and doc["spec"]["names"]["kind"] == "VirtualService"
    )
    names = []
    for crd in (httproute, virtualservice):
        # create, not apply: apply's last-applied annotation would exceed the size limit.
        kube_cluster.kubectl("create", "-f", "-", stdin=json.dumps(crd))
        names.append(crd["metadata"]["name"])
    kube_cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )
    return names
