"""An in-process HTTP server speaking the slice of the Kubernetes API rollguard uses.

No real API server can run here (no kind, k3s or kube-apiserver), so this one
serves real HTTP on loopback with the real JSON shapes: apps/v1 Deployments and
ReplicaSets (GET, PATCH, list with label selectors), Gateway API HTTPRoutes,
Istio VirtualServices and networking/v1 Ingresses. PATCH understands JSON patch,
merge patch and strategic merge patch (as a merge patch, enough for the fields
used). A patch that sets ``metadata.resourceVersion`` is a precondition: a
stale one is answered 409 Conflict, as the real server does.

A small deployment controller runs on reads: after a template change the next
``settle_reads`` GETs show the rollout in progress, then it completes (or stalls,
or reports ProgressDeadlineExceeded, as a scenario asks). Rollback reuses the
ReplicaSet whose template matches and gives it the next revision, as the real
controller does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"

_ROUTES = {
    "deployments": ("apis/apps/v1", "deployments"),
    "replicasets": ("apis/apps/v1", "replicasets"),
    "httproutes": ("apis/gateway.networking.k8s.io/v1", "httproutes"),
    "virtualservices": ("apis/networking.istio.io/v1beta1", "virtualservices"),
    "ingresses": ("apis/networking.k8s.io/v1", "ingresses"),
}
_PATH = re.compile(r"^/(apis/[^/]+/[^/]+|apis/[^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?$")


@dataclass
class Scenario:
    """How the fake cluster misbehaves."""

    settle_reads: int = 1  # GETs of a changed Deployment before its rollout completes
    stall: bool = False  # the rollout never completes
    deadline_exceeded: bool = False  # Progressing=False, reason ProgressDeadlineExceeded
    conflicts: int = 0  # the next N patches meet a concurrent writer (409)
    forbidden: set[tuple[str, str]] = field(default_factory=set)  # (verb, plural) answered 403


@dataclass
class FakeCluster:
    """Objects by (plural, namespace, name); every request is logged."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    scenario: Scenario = field(default_factory=Scenario)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, type
    url: str = ""
    _version: int = 100
    _pending: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def put(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault(
            "uid",
            hashlib.sha1(f"{plural}/{meta['name']}".encode(), usedforsecurity=False).hexdigest(),
        )
        meta["resourceVersion"] = self.next_version()
        meta.setdefault("generation", 1)
        self.objects[(plural, meta["namespace"], meta["name"])] = obj
        return obj

    def get(self, plural: str, name: str, namespace: str = "default") -> dict[str, Any]:
        return self.objects[(plural, namespace, name)]

    # --- the deployment controller -----------------------------------------------

    def add_deployment(
        self, name: str, *, images: list[str], replicas: int = 3, paused: bool = False
    ) -> None:
        """A Deployment that went through one revision per image; the last is current."""
        labels = {"app": name}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "annotations": {}, "labels": labels},
            "spec": {
                "replicas": replicas,
                "paused": paused,
                "selector": {"matchLabels": labels},
                "template": _template(labels, images[0]),
            },
            "status": {},
        }
        self.put("deployments", deployment)
        for image in images:
            deployment["spec"]["template"] = _template(labels, image)
            self._reconcile(deployment)
        self._pending.pop(name, None)
        self._finish(deployment)

    def _reconcile(self, deployment: dict[str, Any]) -> None:
        """Give the current template a ReplicaSet and the next revision."""
        meta = deployment["metadata"]
        template = deployment["spec"]["template"]
        digest = _hash(template)
        owned = self.owned_replicasets(deployment)
        top = max((int(rs["metadata"]["annotations"][REVISION]) for rs in owned), default=0)
        match = next((rs for rs in owned if rs["metadata"]["labels"][HASH] == digest), None)
        if match is None:
            match = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{meta['name']}-{digest}",
                    "namespace": meta["namespace"],
                    "labels": {**template["metadata"]["labels"], HASH: digest},
                    "annotations": {},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": 0,
                    "selector": {
                        "matchLabels": {
                            **deployment["spec"]["selector"]["matchLabels"],
                            HASH: digest,
                        }
                    },
                    "template": _with_hash(template, digest),
                },
            }
            self.put("replicasets", match)
        if match["metadata"]["annotations"].get(REVISION) != str(top) or top == 0:
            match["metadata"]["annotations"][REVISION] = str(top + 1)
        meta.setdefault("annotations", {})[REVISION] = match["metadata"]["annotations"][REVISION]
        self._pending[meta["name"]] = self.scenario.settle_reads

    def owned_replicasets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        return [
            obj
            for (plural, _, _), obj in self.objects.items()
            if plural == "replicasets"
            and any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))
        ]

    def _finish(self, deployment: dict[str, Any]) -> None:
        replicas = deployment["spec"]["replicas"]
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }

    def on_read(self, deployment: dict[str, Any]) -> None:
        """Advance the rollout one step per read, as a controller would in time."""
        name = deployment["metadata"]["name"]
        if name not in self._pending:
            return
        replicas = deployment["spec"]["replicas"]
        status = deployment["status"]
        status["observedGeneration"] = deployment["metadata"]["generation"]
        if self.scenario.deadline_exceeded:
            status["updatedReplicas"] = 1
            status["conditions"] = [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{name}" has timed out progressing.',
                }
            ]
            return
        if self.scenario.stall or self._pending[name] > 0:
            self._pending[name] -= 1
            status.update(
                {"replicas": replicas + 1, "updatedReplicas": 1, "availableReplicas": replicas}
            )
            return
        del self._pending[name]
        self._finish(deployment)


def _template(labels: dict[str, str], image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(labels), "annotations": {"build": image}},
        "spec": {
            "containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]
        },
    }


def _hash(template: dict[str, Any]) -> str:
    clean = copy.deepcopy(template)
    clean["metadata"]["labels"].pop(HASH, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:10]


def _with_hash(template: dict[str, Any], digest: str) -> dict[str, Any]:
    out = copy.deepcopy(template)
    out["metadata"]["labels"][HASH] = digest
    return out


# --- patches ---------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add / replace / remove / test on objects and list indexes."""
    out = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        target: Any = out
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) and last != "-" else last
        if op["op"] == "test":
            if target[key] != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and (key not in target if isinstance(target, dict) else False):
                raise ValueError(f"replace of missing {op['path']}")
            if isinstance(target, list) and key == "-":
                target.append(op["value"])
            else:
                target[key] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del target[key]
        else:
            raise ValueError(f"unsupported op {op['op']}")
    return out


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _selected(obj: dict[str, Any], selector: str) -> bool:
    labels = obj["metadata"].get("labels", {})
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


# --- HTTP --------------------------------------------------------------------------


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def _handle(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            with cluster.lock:
                cluster.requests.append((method, url.path, content_type))
                code, answer = self._answer(
                    method, url.path, parse_qs(url.query), body, content_type
                )
            raw = json.dumps(answer).encode()
            # One write: headers and body written apart meet the client's delayed ACK.
            head = (
                f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + raw)

        def _answer(
            self,
            method: str,
            path: str,
            query: dict[str, list[str]],
            body: bytes,
            content_type: str,
        ) -> tuple[int, dict[str, Any]]:
            match = _PATH.match(path)
            if match is None:
                return 404, _status(404, "NotFound", f"the server could not find {path}")
            group, namespace, plural, name = match.groups()
            verb = {"GET": "list" if name is None else "get", "PATCH": "patch"}[method]
            if (verb, plural) in cluster.scenario.forbidden:
                return 403, _status(
                    403,
                    "Forbidden",
                    f'{plural} "{name}" is forbidden: User "system:serviceaccount:ci:rollguard" '
                    f'cannot {verb} resource "{plural}" in namespace "{namespace}"',
                )
            if plural not in _ROUTES or _ROUTES[plural][0] != group:
                return 404, _status(404, "NotFound", f"the server could not find {path}")
            if name is None:
                items = [
                    obj
                    for (p, ns, _), obj in cluster.objects.items()
                    if p == plural
                    and ns == namespace
                    and _selected(obj, query.get("labelSelector", [""])[0])
                ]
                return 200, {
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(cluster._version)},
                    "items": copy.deepcopy(items),
                }
            obj = cluster.objects.get((plural, namespace, name))
            if obj is None:
                return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
            if method == "GET":
                if plural == "deployments":
                    cluster.on_read(obj)
                return 200, copy.deepcopy(obj)
            return self._patch(plural, obj, body, content_type)

        def _patch(
            self, plural: str, obj: dict[str, Any], body: bytes, content_type: str
        ) -> tuple[int, dict[str, Any]]:
            if cluster.scenario.conflicts > 0:
                cluster.scenario.conflicts -= 1
                obj["metadata"]["resourceVersion"] = cluster.next_version()  # a concurrent writer
            patch = json.loads(body)
            try:
                if "json-patch" in content_type:
                    updated = json_patch(obj, patch)
                elif "merge-patch" in content_type:
                    updated = merge_patch(obj, patch)
                else:
                    return 415, _status(
                        415, "UnsupportedMediaType", f"unsupported patch type {content_type}"
                    )
            except (ValueError, KeyError, IndexError) as exc:
                return 422, _status(422, "Invalid", str(exc))
            wanted = updated["metadata"].get("resourceVersion")
            if wanted != obj["metadata"]["resourceVersion"]:
                return 409, _status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {plural} "{obj["metadata"]["name"]}": '
                    "the object has been modified; please apply your changes "
                    "to the latest version and try again",
                )
            old_generation = obj["metadata"].get("generation", 1)
            template_changed = (
                plural == "deployments" and updated["spec"]["template"] != obj["spec"]["template"]
            )
            if plural == "deployments" and updated["spec"] != obj["spec"]:
                updated["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            updated["metadata"]["resourceVersion"] = cluster.next_version()
            obj.clear()
            obj.update(updated)
            if template_changed:
                cluster._reconcile(obj)
            elif plural == "deployments" and updated["metadata"]["generation"] != old_generation:
                cluster._pending[obj["metadata"]["name"]] = cluster.scenario.settle_reads
            return 200, copy.deepcopy(obj)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def running_cluster(scenario: Scenario | None = None) -> Iterator[FakeCluster]:
    """Serve a fresh :class:`FakeCluster` on a free loopback port until the block ends."""
    cluster = FakeCluster(scenario=scenario or Scenario())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    server.daemon_threads = True
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield cluster
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
