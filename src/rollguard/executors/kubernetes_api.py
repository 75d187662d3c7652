"""The few Kubernetes API calls rollguard makes, on plain JSON, with errors translated once.

Objects are handled as the API's own JSON (``dict``), not the client's model
classes, so a rollback copies a pod template field for field, exactly as
``kubectl rollout undo`` does. The official client's calls are synchronous;
they run in a worker thread so the controller's loop stays responsive.

Errors are translated here, at the edge: 404 names the object and the policy
field, 403 names the verb, resource and the RBAC file, 409 is
:class:`Conflict` so callers re-read and retry.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollguard.errors import ExecutorError
from rollguard.policy.model import KubernetesExecutorSpec

JSON_PATCH = "application/json-patch+json"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """Where a resource lives in the API: ``group`` is empty for apps/networking built-ins."""

    plural: str
    group: str
    version: str
    field: str  # the policy field that names objects of this kind, for error messages
    title: str  # as in ``kind:``


_ROUTER = "target.executor.router.name"
DEPLOYMENT = Kind("deployments", "apps", "v1", "target.executor.deployment", "Deployment")
REPLICASET = Kind("replicasets", "apps", "v1", "target.executor.deployment", "ReplicaSet")
INGRESS = Kind("ingresses", "networking.k8s.io", "v1", _ROUTER, "Ingress")
HTTPROUTE = Kind("httproutes", "gateway.networking.k8s.io", "v1", _ROUTER, "HTTPRoute")
VIRTUALSERVICE = Kind(
    "virtualservices", "networking.istio.io", "v1beta1", _ROUTER, "VirtualService"
)


class Conflict(Exception):
    """409: the object changed since it was read; read it again and retry."""


class KubeApi:
    """GET, LIST and PATCH on one namespace through an injected ``ApiClient``."""

    def __init__(self, api_client: k8s.ApiClient, *, namespace: str) -> None:
        self._apps = k8s.AppsV1Api(api_client)
        self._networking = k8s.NetworkingV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self.namespace = namespace

    async def get(self, kind: Kind, name: str) -> Obj:
        return await self._call("get", kind, name, lambda: self._get(kind, name))

    async def list(self, kind: Kind, *, label_selector: str) -> list[Obj]:
        def call() -> Any:
            if kind is REPLICASET:
                return self._apps.list_namespaced_replica_set(
                    self.namespace, label_selector=label_selector, _preload_content=False
                )
            return self._custom.list_namespaced_custom_object(
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                label_selector=label_selector,
                _preload_content=False,
            )

        answer = await self._call("list", kind, "", call)
        items: list[Obj] = answer.get("items") or []
        return items

    async def patch(self, kind: Kind, name: str, body: Any, *, content_type: str) -> Obj:
        def call() -> Any:
            options: dict[str, Any] = {"_content_type": content_type, "_preload_content": False}
            if kind is DEPLOYMENT:
                return self._apps.patch_namespaced_deployment(name, self.namespace, body, **options)
            if kind is INGRESS:
                return self._networking.patch_namespaced_ingress(
                    name, self.namespace, body, **options
                )
            return self._custom.patch_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, name, body, **options
            )

        return await self._call("patch", kind, name, call)

    def _get(self, kind: Kind, name: str) -> Any:
        if kind is DEPLOYMENT:
            return self._apps.read_namespaced_deployment(
                name, self.namespace, _preload_content=False
            )
        if kind is INGRESS:
            return self._networking.read_namespaced_ingress(
                name, self.namespace, _preload_content=False
            )
        return self._custom.get_namespaced_custom_object(
            kind.group, kind.version, self.namespace, kind.plural, name, _preload_content=False
        )

    async def _call(self, verb: str, kind: Kind, name: str, call: Any) -> Obj:
        what = f"{kind.plural}/{name}" if name else kind.plural
        try:
            response = await asyncio.to_thread(call)
            answer: Obj = json.loads(response.data)
            return answer
        except ApiException as exc:
            raise _translate(
                exc, verb=verb, kind=kind, name=name, namespace=self.namespace
            ) from exc
        except (HTTPError, OSError) as exc:
            raise ExecutorError(f"cannot reach the Kubernetes API to {verb} {what}: {exc}") from exc
        except ValueError as exc:
            raise ExecutorError(f"the Kubernetes API answered {verb} {what} with bad JSON") from exc


def _translate(exc: ApiException, *, verb: str, kind: Kind, name: str, namespace: str) -> Exception:
    message = _message(exc)
    what = f"{kind.plural}/{name}" if name else kind.plural
    if exc.status == 409:
        return Conflict(message)
    if exc.status == 404:
        return ExecutorError(
            f"{kind.title} {name!r} not found in namespace "
            f"{namespace!r} ({kind.field}), or the cluster does not serve "
            f"{kind.group}/{kind.version} {kind.plural}"
        )
    if exc.status == 403:
        return ExecutorError(
            f"Kubernetes forbids {verb} on {what} in namespace {namespace!r} (403): {message}; "
            "grant it with the Role in deploy/rbac.yaml"
        )
    if exc.status == 401:
        return ExecutorError(f"Kubernetes rejected the credentials (401) to {verb} {what}")
    return ExecutorError(f"Kubernetes answered {exc.status} to {verb} {what}: {message}")


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason)
    return str(body.get("message") or exc.reason) if isinstance(body, dict) else str(exc.reason)


def api_client_for(spec: KubernetesExecutorSpec) -> k8s.ApiClient:
    """A client from the in-cluster service account, or a kubeconfig file and context."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        if spec.in_cluster:
            configuration = k8s.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return k8s.ApiClient(configuration)
        client: k8s.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=spec.kubeconfig, context=spec.context
        )
        return client
    except (ConfigException, OSError, ValueError) as exc:
        where = (
            "in-cluster service account"
            if spec.in_cluster
            else (
                f"kubeconfig {spec.kubeconfig or '~/.kube/config'}"
                + (f" context {spec.context!r}" if spec.context else "")
            )
        )
        raise ExecutorError(
            f"cannot load Kubernetes credentials from the {where} "
            f"(target.executor.in_cluster / kubeconfig / context): {exc}"
        ) from exc
