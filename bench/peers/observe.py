"""What each tool did, read from the API server: decided, traffic and release back on
stable, or promoted.

One poller lists every Rollout, Canary, Deployment, ReplicaSet and Ingress of
the benchmark's namespaces at a time (five requests however many runs), and each
run reads its own namespace's objects from that snapshot:

- Argo Rollouts decided when its Rollout says ``status.abort``; its traffic is on
  stable once no other ReplicaSet than the stable one (``status.stableRS``) has a
  replica left (without a traffic router, Argo splits traffic by replicas); it is
  back on stable when, besides, the stable ReplicaSet has every replica
  available; it promoted when it is Healthy and its stable ReplicaSet runs the
  new image.
- Flagger decided when its Canary's ``status.phase`` is ``Failed``; its traffic is
  on stable once the canary Deployment has no replica left (the kubernetes
  provider routes by Deployment); it is back on stable when, besides, the
  primary has all of its replicas available.
- rollguard decided when its canary Ingress's weight leaves 20% or its
  Deployment's pod template is the first image again (the executor's undo); its
  traffic is on stable once the canary's weight is 0 (a gradual rollback gets
  there in steps); it is back on stable when, besides, the first image is rolled
  out: generation observed, every replica updated and available, none left over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from bench.peers.manifests import ARGO, CANARY_WEIGHT, FLAGGER, IMAGES, ROLLGUARD

Objects = dict[str, list[dict[str, Any]]]  # kind -> the namespace's objects
PREFIX = "peers-"


@dataclass
class State:
    """What one tool's objects say at one poll."""

    decided: bool = False
    drained: bool = False  # the canary takes no traffic
    recovered: bool = False  # and the release is undone
    promoted: bool = False


def _named(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["metadata"]["name"] == name), None)


def _image(template: dict[str, Any]) -> str:
    return str(template["spec"]["containers"][0]["image"])


def _available(deployment: dict[str, Any] | None) -> bool:
    if deployment is None:
        return False
    spec, status = deployment["spec"], deployment.get("status") or {}
    want = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == want
        and status.get("availableReplicas", 0) == want
        and status.get("replicas", 0) == want
    )


def argo_state(objects: Objects) -> State:
    rollout = _named(objects.get("rollouts", []), "argo")
    if rollout is None:
        return State()
    status = rollout.get("status") or {}
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    replicasets = [
        rs
        for rs in objects.get("replicasets", [])
        if rs["metadata"].get("labels", {}).get("app") == "argo"
    ]

    def hash_of(rs: dict[str, Any]) -> str | None:
        labels: dict[str, str] = rs["metadata"].get("labels", {})
        return labels.get("rollouts-pod-template-hash")

    stable_ready = any(
        hash_of(rs) == stable
        and (rs.get("status") or {}).get("availableReplicas", 0) == rollout["spec"]["replicas"]
        for rs in replicasets
    )
    others_gone = all(
        (rs.get("status") or {}).get("replicas", 0) == 0
        for rs in replicasets
        if hash_of(rs) != stable
    )
    # The stable ReplicaSet runs the new image: right after the release the status still
    # says Healthy with the old stable, until the controller has seen the change.
    promoted_rs = any(
        hash_of(rs) == stable and _image(rs["spec"]["template"]) == IMAGES[1] for rs in replicasets
    )
    aborted = bool(status.get("abort"))
    drained = aborted and others_gone
    return State(
        decided=aborted,
        drained=drained,
        recovered=drained and stable_ready,
        promoted=promoted_rs
        and status.get("phase") == "Healthy"
        and stable == current
        and not status.get("abort"),
    )


def flagger_state(objects: Objects) -> State:
    canary = _named(objects.get("canaries", []), "flagger")
    if canary is None:
        return State()
    phase = (canary.get("status") or {}).get("phase")
    deployments = objects.get("deployments", [])
    target = _named(deployments, "flagger")
    scaled_down = target is not None and (target.get("status") or {}).get("replicas", 0) == 0
    failed = phase == "Failed"
    drained = failed and scaled_down
    return State(
        decided=failed,
        drained=drained,
        recovered=drained and _available(_named(deployments, "flagger-primary")),
        promoted=phase == "Succeeded",
    )


def rollguard_state(objects: Objects) -> State:
    deployment = _named(objects.get("deployments", []), "rollguard")
    ingress = _named(objects.get("ingresses", []), "rollguard-canary")
    if deployment is None or ingress is None:
        return State()
    undone = _image(deployment["spec"]["template"]) == IMAGES[0] and (
        deployment["metadata"].get("generation", 1) > 2  # created, released, undone
    )
    weight = ingress["metadata"].get("annotations", {}).get(CANARY_WEIGHT)
    drained = weight == "0"
    return State(
        decided=undone or weight != "20",
        drained=drained,
        recovered=drained and undone and _available(deployment),
    )


STATES: dict[str, Callable[[Objects], State]] = {
    ARGO: argo_state,
    FLAGGER: flagger_state,
    ROLLGUARD: rollguard_state,
}


@dataclass
class Snapshot:
    """Every benchmark namespace's objects at one time (monotonic seconds)."""

    at: float
    namespaces: dict[str, Objects] = field(default_factory=dict)


class Poller:
    """Lists the four kinds across namespaces every ``period`` seconds in a thread."""

    def __init__(self, api: k8s.ApiClient, period: float = 0.5) -> None:
        self.period = period
        self._apps = k8s.AppsV1Api(api)
        self._custom = k8s.CustomObjectsApi(api)
        self._networking = k8s.NetworkingV1Api(api)
        self._api = api
        self._latest = Snapshot(0.0)
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.errors = 0

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Snapshot], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _list(self) -> Snapshot:
        at = time.monotonic()
        snapshot = Snapshot(at)
        sanitize = self._api.sanitize_for_serialization
        kinds: dict[str, list[dict[str, Any]]] = {
            "deployments": sanitize(self._apps.list_deployment_for_all_namespaces().items),
            "replicasets": sanitize(self._apps.list_replica_set_for_all_namespaces().items),
            "ingresses": sanitize(self._networking.list_ingress_for_all_namespaces().items),
            "rollouts": self._custom.list_cluster_custom_object(
                "argoproj.io", "v1alpha1", "rollouts"
            )["items"],
            "canaries": self._custom.list_cluster_custom_object(
                "flagger.app", "v1beta1", "canaries"
            )["items"],
        }
        for kind, items in kinds.items():
            for item in items:
                namespace = item["metadata"]["namespace"]
                if namespace.startswith(PREFIX):
                    snapshot.namespaces.setdefault(namespace, {}).setdefault(kind, []).append(item)
        return snapshot

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                snapshot = self._list()
            except Exception:  # an API hiccup under load: the next poll tries again
                self.errors += 1
            else:
                with self._lock:
                    self._latest = snapshot
                    listeners = list(self._listeners)
                for listener in listeners:
                    listener(snapshot)
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
