"""Kubernetes traffic routers: where the canary's share of traffic is set and read.

- Gateway API ``HTTPRoute``: ``spec.rules[].backendRefs[].weight`` of the stable
  and canary backends (by ``name``).
- Istio ``VirtualService``: ``spec.http[].route[].weight`` of the destinations
  whose ``subset`` (or, without subsets, ``host``) is the stable or canary backend.
- NGINX ingress: the canary Ingress's ``nginx.ingress.kubernetes.io/canary-weight``
  annotation (the stable Ingress is untouched, as the controller expects).

Weights are written as percentages (canary ``p``, stable ``100 - p``). Each
write is a JSON patch carrying the ``resourceVersion`` it was computed from,
so a concurrent change is answered 409 and the caller re-reads and retries.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from rollguard.errors import ExecutorError
from rollguard.executors.kubernetes_api import (
    HTTPROUTE,
    INGRESS,
    JSON_PATCH,
    VIRTUALSERVICE,
    Kind,
    KubeApi,
    Obj,
)
from rollguard.policy.model import KubernetesRouterSpec

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


class Router(Protocol):
    """Sets and reads the canary's share of traffic."""

    async def canary_weight(self) -> int:
        """The canary's current share, 0-100."""

    async def set_canary_weight(self, percent: int) -> None:
        """Write the share; raises ``Conflict`` on a concurrent change."""


def make_router(spec: KubernetesRouterSpec, api: KubeApi) -> Router:
    """The router for ``spec.kind``."""
    if spec.kind == "nginx-ingress":
        return NginxCanaryIngress(spec, api)
    if not spec.stable_backend or not spec.canary_backend:
        raise ExecutorError(
            f"a {spec.kind} router needs target.executor.router.stable_backend and canary_backend"
        )
    if spec.kind == "gateway-httproute":
        return HttpRouteRouter(spec, api)
    return VirtualServiceRouter(spec, api)


class HttpRouteRouter:
    """Gateway API HTTPRoute backendRef weights."""

    def __init__(self, spec: KubernetesRouterSpec, api: KubeApi) -> None:
        self._spec, self._api = spec, api

    async def canary_weight(self) -> int:
        route = await self._api.get(HTTPROUTE, self._spec.name)
        return _share(self._weights(route))

    async def set_canary_weight(self, percent: int) -> None:
        route = await self._api.get(HTTPROUTE, self._spec.name)
        rules = copy.deepcopy(route.get("spec", {}).get("rules", []))
        for rule in rules:
            for ref in rule.get("backendRefs", []):
                if ref.get("name") == self._spec.stable_backend:
                    ref["weight"] = 100 - percent
                elif ref.get("name") == self._spec.canary_backend:
                    ref["weight"] = percent
        self._weights({"spec": {"rules": rules}})  # both backends must be present
        await _replace(self._api, HTTPROUTE, route, "/spec/rules", rules)

    def _weights(self, route: Obj) -> tuple[int, int]:
        refs = [
            ref for rule in route["spec"].get("rules", []) for ref in rule.get("backendRefs", [])
        ]
        return _pair(
            refs,
            key=lambda ref: ref.get("name"),
            spec=self._spec,
            where=f"HTTPRoute {self._spec.name!r} backendRefs",
        )


class VirtualServiceRouter:
    """Istio VirtualService HTTP route weights."""

    def __init__(self, spec: KubernetesRouterSpec, api: KubeApi) -> None:
        self._spec, self._api = spec, api

    async def canary_weight(self) -> int:
        service = await self._api.get(VIRTUALSERVICE, self._spec.name)
        return _share(self._weights(service))

    async def set_canary_weight(self, percent: int) -> None:
        service = await self._api.get(VIRTUALSERVICE, self._spec.name)
        routes = copy.deepcopy(service.get("spec", {}).get("http", []))
        for http in routes:
            for destination in http.get("route", []):
                name = _destination(destination)
                if name == self._spec.stable_backend:
                    destination["weight"] = 100 - percent
                elif name == self._spec.canary_backend:
                    destination["weight"] = percent
        self._weights({"spec": {"http": routes}})
        await _replace(self._api, VIRTUALSERVICE, service, "/spec/http", routes)

    def _weights(self, service: Obj) -> tuple[int, int]:
        destinations = [
            d for http in service["spec"].get("http", []) for d in http.get("route", [])
        ]
        return _pair(
            destinations,
            key=_destination,
            spec=self._spec,
            where=f"VirtualService {self._spec.name!r} http routes",
        )


class NginxCanaryIngress:
    """The canary-weight annotation of an NGINX canary Ingress."""

    def __init__(self, spec: KubernetesRouterSpec, api: KubeApi) -> None:
        self._spec, self._api = spec, api

    async def canary_weight(self) -> int:
        ingress = await self._api.get(INGRESS, self._spec.name)
        annotations = ingress["metadata"].get("annotations") or {}
        if annotations.get(CANARY) != "true":
            raise ExecutorError(
                f"Ingress {self._spec.name!r} is not an NGINX canary "
                f"(annotation {CANARY}: 'true' missing; target.executor.router.name)"
            )
        try:
            return int(annotations.get(CANARY_WEIGHT, "0"))
        except ValueError as exc:
            raise ExecutorError(
                f"Ingress {self._spec.name!r} has a non-numeric canary-weight"
            ) from exc

    async def set_canary_weight(self, percent: int) -> None:
        ingress = await self._api.get(INGRESS, self._spec.name)
        await self.canary_weight()  # refuses a non-canary Ingress before writing
        annotations = dict(ingress["metadata"].get("annotations") or {})
        annotations[CANARY_WEIGHT] = str(percent)
        await _replace(self._api, INGRESS, ingress, "/metadata/annotations", annotations)


async def _replace(api: KubeApi, kind: Kind, obj: Obj, path: str, value: Any) -> None:
    """A JSON patch of ``path`` that only applies to the version that was read."""
    meta = obj["metadata"]
    ops = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        {"op": "add", "path": path, "value": value},
    ]
    await api.patch(kind, meta["name"], ops, content_type=JSON_PATCH)


def _destination(destination: Obj) -> str | None:
    target = destination.get("destination", {})
    subset = target.get("subset")
    return str(subset) if subset else target.get("host")


def _pair(items: list[Obj], *, key: Any, spec: KubernetesRouterSpec, where: str) -> tuple[int, int]:
    """(stable, canary) weights; a missing backend is named."""
    stable = [item for item in items if key(item) == spec.stable_backend]
    canary = [item for item in items if key(item) == spec.canary_backend]
    for found, name, role in (
        (stable, spec.stable_backend, "stable"),
        (canary, spec.canary_backend, "canary"),
    ):
        if not found:
            raise ExecutorError(
                f"{where} have no {role} backend {name!r} (target.executor.router.{role}_backend)"
            )
    # A backend without a weight gets 1 in the Gateway API and 100 % split evenly in Istio;
    # rollguard writes explicit weights, so defaulting to 1 only matters before its first write.
    return int(stable[0].get("weight", 1)), int(canary[0].get("weight", 1))


def _share(weights: tuple[int, int]) -> int:
    stable, canary = weights
    total = stable + canary
    return round(100 * canary / total) if total else 0
