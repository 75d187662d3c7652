"""The Kubernetes calls the controller makes: list policies and Deployments, write status.

Everything is plain JSON (``dict``), as in :mod:`rollguard.executors.kubernetes_api`;
the official client's calls are synchronous, so they run in a worker thread.
One LIST of RollbackPolicies and one of Deployments per resync, whatever the
number of policies: the API server's load grows with resyncs, not with policies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollguard.errors import ExecutorError, UsageError
from rollguard.operator.crd import GROUP, KIND, PLURAL, VERSION
from rollguard.operator.status import FINISHED, merge_conditions
from rollguard.timestamps import now_rfc3339

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


def api_client(
    *, kubeconfig: Path | None, context: str | None, in_cluster: bool, request_seconds: float
) -> k8s.ApiClient:
    """A client from the in-cluster service account, or a kubeconfig file and context, whose
    every call gives up after ``request_seconds`` (:class:`TimedApiClient`)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    configuration = k8s.Configuration()
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
            )
    except (ConfigException, OSError, ValueError) as exc:
        where = (
            "the in-cluster service account"
            if in_cluster
            else f"--kubeconfig {kubeconfig or '~/.kube/config'}"
        )
        raise UsageError(f"cannot load Kubernetes credentials from {where}: {exc}") from exc
    return TimedApiClient(configuration, request_seconds=request_seconds)


class TimedApiClient(k8s.ApiClient):
    """An API client whose calls end in an error after ``request_seconds``, never hang.

    Without a timeout a call behind a cut link waits until TCP gives up (many
    minutes): the resync or Lease tick stuck in it neither fails nor comes round.
    Every call without its own ``_request_timeout`` gets this one, and is not
    retried by urllib3 (a retry would multiply the bound): the loops retry at
    their own cadence.
    """

    def __init__(self, configuration: k8s.Configuration, *, request_seconds: float) -> None:
        configuration.retries = False
        super().__init__(configuration)
        self.request_seconds = request_seconds

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = self.request_seconds
        return super().call_api(*args, **kwargs)


class NotFound(ExecutorError):
    """404: the object is gone."""


class Conflict(ExecutorError):
    """409: the object changed since it was read."""


#: How often a status write whose object changed meanwhile is merged again.
CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class PolicyKey:
    """A RollbackPolicy's namespace and name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ControllerApi:
    """LIST RollbackPolicies and Deployments, PATCH a policy's status, POST Events."""

    def __init__(
        self,
        client: k8s.ApiClient,
        *,
        namespace: str | None,
        threads: ThreadPoolExecutor | None = None,
    ) -> None:
        self._custom = k8s.CustomObjectsApi(client)
        self._apps = k8s.AppsV1Api(client)
        self._core = k8s.CoreV1Api(client)
        self.namespace = namespace
        #: Where calls run (the LISTs excepted): None, the event loop's shared worker threads.
        self._threads = threads
        #: Requests made, by verb: the benchmark's API-server load figure.
        self.requests: dict[str, int] = {}
        # The resync's LISTs have a thread of their own: behind the status writes and
        # Events of a start of hundreds of analyses (on the shared worker threads) a
        # resync waited minutes, and the policies of newly taken shards did not start.
        self._lists = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resync-lists")

    def close(self) -> None:
        """Let the LIST thread (and the threads given) go."""
        self._lists.shutdown(wait=False)
        if self._threads is not None:
            self._threads.shutdown(wait=False)

    async def policies(self) -> list[Obj]:
        def call() -> Any:
            if self.namespace:
                return self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, _preload_content=False
                )
            return self._custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _preload_content=False
            )

        answer = await self._call("list", f"{PLURAL}.{GROUP}", call, threads=self._lists)
        items: list[Obj] = answer.get("items") or []
        return items

    async def deployments(self) -> dict[tuple[str, str], Obj]:
        """Every Deployment the controller may watch, by (namespace, name)."""

        def call() -> Any:
            if self.namespace:
                return self._apps.list_namespaced_deployment(self.namespace, _preload_content=False)
            return self._apps.list_deployment_for_all_namespaces(_preload_content=False)

        answer = await self._call("list", "deployments", call, threads=self._lists)
        return {
            (item["metadata"]["namespace"], item["metadata"]["name"]): item
            for item in answer.get("items") or []
        }

    async def deployment(self, namespace: str, name: str) -> Obj | None:
        """One Deployment, or None when it is gone."""

        def call() -> Any:
            return self._apps.read_namespaced_deployment(name, namespace, _preload_content=False)

        try:
            return await self._call("get", f"deployments/{name}", call)
        except NotFound:
            return None

    async def patch_status(self, key: PolicyKey, status: Obj, *, seen: Obj | None = None) -> None:
        """Merge ``status`` into the policy's status subresource.

        A JSON merge patch replaces lists whole, so ``conditions`` are merged here
        by type (:func:`~rollguard.operator.status.merge_conditions`) into the ones
        the API server holds, and the patch carries the ``resourceVersion`` they
        were read at: a write in between is a 409, and the merge is done again.
        ``seen``, the policy as a LIST returned it, saves the first read: when it is
        still current (no write since), the patch is the only request.
        """
        if "conditions" not in status:
            await self._patch_status(key, {"status": status})
            return
        await self._merge_status(key, status, lambda current: True, seen=seen)

    async def patch_verdict(self, key: PolicyKey, status: Obj, *, revision: str) -> bool:
        """Write an analysis's verdict on ``revision`` unless the status holds another
        revision's verdict by now; False then, and nothing is written.

        The analysis wrote ``Watching`` on its revision when it started, so a verdict on
        another one is newer: the shard's new owner's, on the revision this replica's
        rollback restored. The check and the write are one step: the write carries the
        ``resourceVersion`` the check read, and a write in between (409) is read and
        checked again.
        """
        return await self._merge_status(
            key, status, lambda current: not _verdict_on_another(current, revision)
        )

    async def _merge_status(
        self,
        key: PolicyKey,
        status: Obj,
        allowed: Callable[[Obj], bool],
        *,
        seen: Obj | None = None,
    ) -> bool:
        """Merge ``status`` (with conditions) at the resourceVersion read (or ``seen`` at
        first), if ``allowed``."""
        for attempt in range(CONFLICT_RETRIES + 1):
            current = seen if attempt == 0 and seen is not None else await self._status(key)
            if not allowed(current):
                return False
            held = (current.get("status") or {}).get("conditions") or []
            body = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "status": {**status, "conditions": merge_conditions(held, status["conditions"])},
            }
            try:
                await self._patch_status(key, body)
                return True
            except Conflict:
                if attempt == CONFLICT_RETRIES:
                    raise
        raise AssertionError("unreachable: the last conflict is raised")

    async def _status(self, key: PolicyKey) -> Obj:
        """The policy as stored, status included (``get`` on the resource, which the
        chart's RBAC grants; the ``/status`` subresource is only patched)."""

        def call() -> Any:
            return self._custom.get_namespaced_custom_object(
                GROUP, VERSION, key.namespace, PLURAL, key.name, _preload_content=False
            )

        return await self._call("get", f"{PLURAL}/{key}", call)

    async def _patch_status(self, key: PolicyKey, body: Obj) -> None:
        def call() -> Any:
            return self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                key.namespace,
                PLURAL,
                key.name,
                body,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )

        await self._call("patch", f"{PLURAL}/{key}", call)

    async def event(
        self, key: PolicyKey, *, involved: Obj, reason: str, message: str, warning: bool
    ) -> None:
        """A core/v1 Event about ``involved`` (``kind``, ``name``, ``apiVersion``, ``uid``)."""
        now = now_rfc3339()
        body: Any = {
            "metadata": {"generateName": f"{involved['name']}.", "namespace": key.namespace},
            "involvedObject": {**involved, "namespace": key.namespace},
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "rollguard-controller"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

        def call() -> Any:
            return self._core.create_namespaced_event(key.namespace, body, _preload_content=False)

        await self._call("create", f"events in {key.namespace}", call)

    async def _call(
        self, verb: str, what: str, call: Any, *, threads: ThreadPoolExecutor | None = None
    ) -> Obj:
        """``call`` on a worker thread (``threads``, else the loop's shared ones), its answer
        read and parsed there too: the body of an unpreloaded response is read from the
        socket when asked for, and a LIST of thousands of objects read on the event loop
        held up every evaluation for as long as the API server took to send it."""
        self.requests[verb] = self.requests.get(verb, 0) + 1

        def answered() -> Obj:
            answer: Obj = json.loads(call().data)
            return answer

        try:
            return await asyncio.get_running_loop().run_in_executor(
                threads or self._threads, answered
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{what} not found") from exc
            if exc.status == 409:
                raise Conflict(f"{what} changed meanwhile (409 Conflict to {verb})") from exc
            raise ExecutorError(f"Kubernetes answered {exc.status} to {verb} {what}") from exc
        except (HTTPError, OSError) as exc:
            raise ExecutorError(f"cannot reach the Kubernetes API to {verb} {what}: {exc}") from exc
        except ValueError as exc:
            raise ExecutorError(f"the Kubernetes API answered {verb} {what} with bad JSON") from exc


def _verdict_on_another(policy: Obj, revision: str) -> bool:
    status = policy.get("status") or {}
    return status.get("phase") in FINISHED and status.get("revision") != revision


def policy_reference(obj: Obj) -> Obj:
    """A RollbackPolicy as an Event's ``involvedObject``."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"].get("uid", ""),
    }


def deployment_reference(obj: Obj) -> Obj:
    """A Deployment as an Event's ``involvedObject``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"].get("uid", ""),
    }
