"""Kubernetes API failures that the real control plane cannot be made to produce on demand.

A 500 or 503 from kube-apiserver comes from a stand-in server (``servers/kube_api.py``)
that answers with the ``Status`` body the real one writes; an unreachable API server is
a closed port. Every other Kubernetes behaviour is tested on the real cluster.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from kube_support import run
from rollguard.errors import ExecutorError
from rollguard.executors.kubernetes import KubernetesExecutor
from rollguard.policy.model import KubernetesExecutorSpec
from servers.kube_api import failing_api
from support import free_port


def executor_at(url: str) -> KubernetesExecutor:
    configuration = k8s.Configuration()
    configuration.host = url
    spec = KubernetesExecutorSpec.model_validate({"deployment": "shop", "namespace": "shop"})
    return KubernetesExecutor(spec, api_client=k8s.ApiClient(configuration))


@pytest.mark.parametrize(
    ("code", "message"),
    [(500, "etcdserver: request timed out"), (503, "the server is currently unable to handle")],
)
def test_a_failing_api_server_is_reported_with_its_code_and_message(
    code: int, message: str
) -> None:
    with failing_api(code, message) as api, pytest.raises(ExecutorError) as caught:
        run(executor_at(api.url), "rollback")
    assert str(caught.value).startswith(
        f"Kubernetes answered {code} to get deployments/shop: {message}"
    )
    assert api.requests[0] == ("GET", "/apis/apps/v1/namespaces/shop/deployments/shop")
    assert all(method == "GET" for method, _ in api.requests)  # nothing was written


def test_an_unreachable_api_server_is_named() -> None:
    with pytest.raises(
        ExecutorError, match="cannot reach the Kubernetes API to get deployments/shop"
    ):
        run(executor_at(f"http://127.0.0.1:{free_port()}"), "status")
