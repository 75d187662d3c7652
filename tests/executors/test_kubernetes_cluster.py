"""The real control plane the Kubernetes tests run on: built at the pinned release, and
rolling Deployments out and back as ``kubectl rollout`` expects.

These check the test cluster itself (``tests/servers/kube_cluster.py``): kwok's
fake nodes run pods to Ready, the deployment controller makes a ReplicaSet per
revision, and the built ``kubectl rollout undo`` brings an old one back.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from kube_support import deployment
from servers.kube_cluster import KubeCluster, versions
from support import wait_until

pytestmark = pytest.mark.real_server

REVISION = "deployment.kubernetes.io/revision"


def rolled_out(apps: k8s.AppsV1Api, namespace: str, name: str) -> bool:
    """All replicas updated and available, and the controller has seen the latest spec."""
    current = apps.read_namespaced_deployment(name, namespace)
    status = current.status
    conditions = {c.type: c.status for c in status.conditions or []}
    return bool(
        (status.observed_generation or 0) >= current.metadata.generation
        and status.updated_replicas == current.spec.replicas
        and status.available_replicas == current.spec.replicas
        and status.replicas == current.spec.replicas
        and conditions.get("Available") == "True"
    )


def running_images(core: k8s.CoreV1Api, namespace: str, name: str) -> list[str]:
    """The image of each pod that is Running and Ready on a node (terminating ones left out)."""
    images = []
    for pod in core.list_namespaced_pod(namespace, label_selector=f"app={name}").items:
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running" and ready:
            assert pod.spec.node_name, "a Running pod was placed on a node"
            images.append(pod.spec.containers[0].image)
    return sorted(images)


def revisions(apps: k8s.AppsV1Api, namespace: str, name: str) -> dict[str, tuple[str, int]]:
    """ReplicaSets owned by the Deployment: revision -> (image, replicas)."""
    owner = apps.read_namespaced_deployment(name, namespace).metadata.uid
    found = {}
    for rs in apps.list_namespaced_replica_set(namespace, label_selector=f"app={name}").items:
        if any(ref.uid == owner and ref.controller for ref in rs.metadata.owner_references or []):
            image = rs.spec.template.spec.containers[0].image
            found[rs.metadata.annotations[REVISION]] = (image, rs.spec.replicas)
    return found


def test_the_api_server_reports_the_release_it_was_built_from(
    kube_cluster: KubeCluster, kube_admin: k8s.ApiClient
) -> None:
    wanted = versions()["KUBERNETES_VERSION"]
    info = k8s.VersionApi(kube_admin).get_code()
    assert (info.git_version, info.major, info.minor) == (wanted, "1", wanted.split(".")[1])
    client = kube_cluster.kubectl("version", "--client", "-o", "json").stdout
    assert f'"gitVersion": "{wanted}"' in client


def test_a_deployment_rolls_out_a_new_revision_and_kubectl_undoes_it(
    kube_cluster: KubeCluster, kube_admin: k8s.ApiClient, kube_namespace: str
) -> None:
    apps, core, ns = k8s.AppsV1Api(kube_admin), k8s.CoreV1Api(kube_admin), kube_namespace
    apps.create_namespaced_deployment(ns, deployment("shop:1.0", name="web", replicas=3))
    wait_until(lambda: rolled_out(apps, ns, "web"), timeout=60, what="web available")
    wait_until(
        lambda: running_images(core, ns, "web") == ["shop:1.0"] * 3,
        timeout=60,
        what="three pods Running and Ready",
    )
    assert revisions(apps, ns, "web") == {"1": ("shop:1.0", 3)}

    kube_cluster.kubectl("set", "image", "deployment/web", "app=shop:1.1", "-n", ns)
    status = kube_cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s")
    assert "successfully rolled out" in status.stdout
    assert apps.read_namespaced_deployment("web", ns).metadata.annotations[REVISION] == "2"
    assert revisions(apps, ns, "web") == {"1": ("shop:1.0", 0), "2": ("shop:1.1", 3)}
    wait_until(
        lambda: running_images(core, ns, "web") == ["shop:1.1"] * 3,
        timeout=60,
        what="the new pods Running and Ready",
    )

    undo = kube_cluster.kubectl("rollout", "undo", "deployment/web", "-n", ns)
    assert "rolled back" in undo.stdout
    kube_cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s")
    rolled_back = apps.read_namespaced_deployment("web", ns)
    assert rolled_back.spec.template.spec.containers[0].image == "shop:1.0"
    assert rolled_back.metadata.annotations[REVISION] == "3"
    # The first ReplicaSet is reused under the next revision number; none is created.
    assert revisions(apps, ns, "web") == {"3": ("shop:1.0", 3), "2": ("shop:1.1", 0)}
    wait_until(
        lambda: running_images(core, ns, "web") == ["shop:1.0"] * 3,
        timeout=60,
        what="the first version's pods back",
    )
