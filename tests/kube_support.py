"""Deployments and routers on the real test cluster, and KubernetesExecutors pointed at them.

Set-up and oracles go through the built ``kubectl`` (``kubectl create``,
``set image``, ``rollout status``, ``get -o json``), never through rollguard's
own code, so a test compares what rollguard did with what the cluster says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from ruamel.yaml import YAML

from rollguard.executors.kubernetes import KubernetesExecutor
from rollguard.executors.kubernetes_api import api_client_for
from rollguard.policy.model import KubernetesExecutorSpec
from servers.kube_cluster import KubeCluster
from support import wait_until

RBAC = Path(__file__).resolve().parents[1] / "deploy" / "rbac.yaml"
REVISION = "deployment.kubernetes.io/revision"
HISTORY = "deployment.kubernetes.io/revision-history"
NAME = "shop"


def executor(
    cluster: KubeCluster,
    namespace: str,
    *,
    kubeconfig: Path | None = None,
    api_client: k8s.ApiClient | None = None,
    **spec: Any,
) -> KubernetesExecutor:
    """An executor for Deployment ``shop`` in ``namespace``, from a kubeconfig as a user has
    (or through ``api_client``)."""
    model = KubernetesExecutorSpec.model_validate(
        {
            "deployment": NAME,
            "namespace": namespace,
            "kubeconfig": str(kubeconfig or cluster.kubeconfig),
            "poll_interval": 0.2,
            "rollout_timeout": 90,
            **spec,
        }
    )
    return KubernetesExecutor(model, api_client=api_client or api_client_for(model))


class ConcurrentWriter(k8s.ApiClient):
    """A client that records each response, and calls ``write`` right after each of the
    first ``times`` reads of an object whose path ends with ``path`` - as another writer
    changing it between rollguard's read and its patch would."""

    def __init__(
        self,
        kubeconfig: Path,
        path: str = "",
        *,
        times: int = 0,
        write: Callable[[], object] = lambda: None,
    ) -> None:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        super().__init__(configuration)
        self.path, self.times, self.write = path, times, write
        self.responses: list[tuple[str, str, int]] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = super().call_api(method, url, *args, **kwargs)
        path = url.partition("?")[0]
        self.responses.append((method, path, response.status))
        if method == "GET" and path.endswith(self.path) and self.times:
            self.times -= 1
            self.write()
        return response

    def statuses(self, method: str) -> list[int]:
        """The HTTP status of each ``method`` request, in order."""
        return [status for verb, _, status in self.responses if verb == method]


def run(executor: KubernetesExecutor, call: str, **kwargs: Any) -> Any:
    """Call one executor method to completion, then close the executor."""

    async def go() -> Any:
        try:
            return await getattr(executor, call)(**kwargs)
        finally:
            await executor.aclose()

    return asyncio.run(go())


def deployment(image: str, *, name: str = NAME, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    """A Deployment manifest with one container, ``app``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **spec,
        },
    }


def roll_out(
    cluster: KubeCluster, namespace: str, *images: str, name: str = NAME, **spec: Any
) -> None:
    """Create the Deployment at ``images[0]``, then roll each next image out completely."""
    create(cluster, namespace, deployment(images[0], name=name, **spec))
    wait_rolled_out(cluster, namespace, name)
    for image in images[1:]:
        cluster.kubectl("set", "image", f"deployment/{name}", f"app={image}", "-n", namespace)
        wait_rolled_out(cluster, namespace, name)


def create(cluster: KubeCluster, namespace: str, manifest: dict[str, Any]) -> None:
    """``kubectl create``, as a user would (no last-applied annotation, unlike ``apply``)."""
    cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))


def wait_rolled_out(cluster: KubeCluster, namespace: str, name: str = NAME) -> None:
    """``kubectl rollout status``: the cluster's own word that a rollout completed."""
    cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=90s")


#: The stable Deployment of a replica-count split, and its pods: 10 % is 0.8 of a
#: pod, so one (12.5 %); 25 % two; 50 % four; 100 % all eight.
SPLIT_STABLE = "shop-stable"
SPLIT_PODS = 8


def split_pair(cluster: KubeCluster, namespace: str) -> str:
    """Stable with all the pods, the canary Deployment created at none."""
    create(cluster, namespace, deployment("shop:1.0", name=SPLIT_STABLE, replicas=SPLIT_PODS))
    create(cluster, namespace, deployment("shop:2.0", replicas=0))
    wait_rolled_out(cluster, namespace, SPLIT_STABLE)
    return namespace


def get(cluster: KubeCluster, namespace: str, kind: str, name: str = NAME) -> dict[str, Any]:
    """An object as the API server stores it."""
    found: dict[str, Any] = json.loads(
        cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    )
    return found


def image(cluster: KubeCluster, namespace: str, name: str = NAME) -> str:
    """The image of the Deployment's pod template."""
    template = get(cluster, namespace, "deployment", name)["spec"]["template"]
    return str(template["spec"]["containers"][0]["image"])


def replicas(cluster: KubeCluster, namespace: str, *names: str) -> tuple[int, ...]:
    """Each named Deployment's wanted and ready pods, in turn, as the API server has them."""
    counts: list[int] = []
    for name in names:
        found = get(cluster, namespace, "deployment", name)
        counts += [found["spec"]["replicas"], (found.get("status") or {}).get("readyReplicas", 0)]
    return tuple(counts)


def history(cluster: KubeCluster, namespace: str, name: str = NAME) -> dict[int, tuple[str, int]]:
    """The Deployment's own ReplicaSets: revision -> (image, replicas)."""
    owner = get(cluster, namespace, "deployment", name)["metadata"]["uid"]
    listed = json.loads(
        cluster.kubectl(
            "get", "replicasets", "-n", namespace, "-l", f"app={name}", "-o", "json"
        ).stdout
    )
    found = {}
    for rs in listed["items"]:
        if any(ref["uid"] == owner for ref in rs["metadata"].get("ownerReferences", [])):
            container = rs["spec"]["template"]["spec"]["containers"][0]
            found[int(rs["metadata"]["annotations"][REVISION])] = (
                container["image"],
                rs["spec"]["replicas"],
            )
    return found


def snapshot(cluster: KubeCluster, namespace: str, name: str = NAME) -> dict[str, Any]:
    """What ``kubectl rollout undo`` decides, to compare two Deployments field for field:
    the pod template, the annotations (rollguard's own left out) and every ReplicaSet's
    revision, revision history, template and replicas."""
    found = get(cluster, namespace, "deployment", name)
    owner = found["metadata"]["uid"]
    listed = json.loads(
        cluster.kubectl(
            "get", "replicasets", "-n", namespace, "-l", f"app={name}", "-o", "json"
        ).stdout
    )
    replicasets = sorted(
        (
            rs["metadata"]["name"],
            rs["metadata"]["annotations"].get(REVISION),
            rs["metadata"]["annotations"].get(HISTORY),
            json.dumps(rs["spec"]["template"], sort_keys=True),
            rs["spec"]["replicas"],
        )
        for rs in listed["items"]
        if any(ref["uid"] == owner for ref in rs["metadata"].get("ownerReferences", []))
    )
    annotations = {
        key: value
        for key, value in (found["metadata"].get("annotations") or {}).items()
        if not key.startswith("rollguard.dev/")
    }
    return {
        "template": found["spec"]["template"],
        "annotations": annotations,
        "replicasets": replicasets,
    }


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
        "httproute",
        httproute,
        {"name": "shop", "stable_backend": "shop-stable", "canary_backend": "shop-canary"},
    ),
    "istio-virtualservice": (
        "virtualservice",
        virtualservice,
        {"name": "shop", "stable_backend": "stable", "canary_backend": "canary"},
    ),
    "nginx-ingress": ("ingress", canary_ingress, {"name": "shop-canary"}),
}


def weights(cluster: KubeCluster, namespace: str, kind: str) -> tuple[int, int]:
    """(stable, canary) as the API server stores them, read with kubectl."""
    resource, _, router = ROUTERS[kind]
    obj = get(cluster, namespace, resource, router["name"])
    if kind == "gateway-httproute":
        refs = {r["name"]: r["weight"] for r in obj["spec"]["rules"][0]["backendRefs"]}
        return refs["shop-stable"], refs["shop-canary"]
    if kind == "istio-virtualservice":
        routes = {r["destination"]["subset"]: r["weight"] for r in obj["spec"]["http"][0]["route"]}
        return routes["stable"], routes["canary"]
    canary = int(obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"])
    return 100 - canary, canary


def rbac_manifests() -> list[dict[str, Any]]:
    """The ServiceAccount, Role and RoleBinding of deploy/rbac.yaml, as written."""
    return [doc for doc in YAML(typ="safe").load_all(RBAC) if doc]


def can(
    cluster: KubeCluster, namespace: str, verb: str, resource: str, *, account: str = "rollguard"
) -> bool:
    """The authorizer's answer for the ServiceAccount (its cache follows Role edits shortly)."""
    answer = cluster.kubectl(
        "auth", "can-i", verb, resource, "-n", namespace,
        f"--as=system:serviceaccount:{namespace}:{account}", check=False,
    )  # fmt: skip
    return answer.stdout.strip() == "yes"


def grant_rbac(cluster: KubeCluster, namespace: str, kubeconfig: Path) -> Path:
    """Apply deploy/rbac.yaml in ``namespace`` and write ``kubeconfig`` for its ServiceAccount,
    with a token from the TokenRequest API, as a CI job would hold one."""
    for manifest in rbac_manifests():
        create(cluster, namespace, manifest)
    wait_until(
        lambda: can(cluster, namespace, "patch", "deployments"),
        timeout=30,
        what="the Role bound to the ServiceAccount",
    )
    return token_kubeconfig(cluster, namespace, "rollguard", kubeconfig)


def token_kubeconfig(cluster: KubeCluster, namespace: str, account: str, path: Path) -> Path:
    """Write ``path``: a kubeconfig that authenticates as ServiceAccount ``account`` with a
    token from the TokenRequest API (``kubectl create token``), as a CI job or a pod holds one."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    config = json.loads(cluster.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path
