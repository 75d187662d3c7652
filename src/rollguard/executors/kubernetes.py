"""Kubernetes Deployments: ``kubectl rollout undo`` and ``rollout status`` semantics.

Rollback, as ``kubectl rollout undo deployment/NAME [--to-revision=N]``:
the ReplicaSets *owned* by the Deployment are listed, the one with the
previous ``deployment.kubernetes.io/revision`` (or revision N) is chosen, and
its pod template, minus the ``pod-template-hash`` label, replaces the
Deployment's, with its annotations. A paused Deployment, or one without a
previous revision, is refused with the reason. Then the rollout is watched as
``kubectl rollout status --timeout`` does: the new generation observed, all
replicas updated and available; ``ProgressDeadlineExceeded`` is a failure.

Unlike ``kubectl rollout undo``, rolling back twice is a no-op: the patch
records the template hash it rolled back to (``rollguard.dev/rolled-back-to``),
and a Deployment already running that template is not undone again (a second
``undo`` would flip back to the bad version). Patches carry the
``resourceVersion`` they were computed from; a 409 Conflict is re-read and retried.

With a router (HTTPRoute, VirtualService, NGINX canary Ingress), traffic moves
first: rollback sets the canary's share to 0 before undoing, gradual steps
and isolation only move traffic. Without a router but with a
``stable_deployment`` behind the same Service, the canary's share is its part
of the two Deployments' pods (:mod:`rollguard.executors.replica_split`): steps
and rollback set replica counts, the Deployment that grows first so the pods
in all never drop. Without either, the Deployment *is* the canary: before
rollback it serves 100 %, after it 0 %.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from kubernetes import client as k8s

from rollguard.errors import ExecutorError
from rollguard.executors import kubernetes_rollout as rollout
from rollguard.executors import replica_split
from rollguard.executors.base import ActionResult, TargetStatus, refused_weight
from rollguard.executors.kubernetes_api import (
    DEPLOYMENT,
    JSON_PATCH,
    REPLICASET,
    Conflict,
    KubeApi,
    Obj,
)
from rollguard.executors.kubernetes_routers import Router, make_router
from rollguard.policy.model import KubernetesExecutorSpec
from rollguard.retry import SETTINGS, call_with_retries

T = TypeVar("T")


class KubernetesExecutor:
    """Acts on one Deployment (and optionally its traffic router) through an injected client."""

    def __init__(
        self,
        spec: KubernetesExecutorSpec,
        *,
        api_client: k8s.ApiClient,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._api_client = api_client
        self._api = KubeApi(api_client, namespace=spec.namespace)
        self._router: Router | None = make_router(spec.router, self._api) if spec.router else None
        self._sleep = sleep
        self._clock = clock

    # --- the Executor interface --------------------------------------------------

    async def rollback(self) -> ActionResult:
        if self._stable_by_replicas is not None:
            return await self._split(0)
        steps: list[str] = []
        if self._router is not None:
            await self._retry(lambda: self._router_weight(0))
            steps.append("router: canary at 0%")
        undone, detail = await self._retry(self._undo)
        steps.append(detail)
        if not undone:
            return ActionResult(ok=False, detail=detail, output={"steps": steps})
        ok, waited = await self.wait_for_rollout(self._spec.deployment)
        steps.append(waited)
        return ActionResult(ok=ok, detail="; ".join(steps), output={"steps": steps})

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        if (refused := refused_weight(percent)) is not None:
            return refused
        if self._stable_by_replicas is not None:
            return await self._split(percent)
        if self._router is None:
            return _needs_router(
                "shift traffic", " or target.executor.stable_deployment (by replica counts)"
            )
        await self._retry(lambda: self._router_weight(percent))
        if percent > 0:
            await self._retry(
                lambda: self._update(self._spec.deployment, annotations={rollout.ISOLATED: None})
            )
        return ActionResult(ok=True, detail=f"router: canary at {percent}%")

    async def scale(self, *, factor: float) -> ActionResult:
        name = self._spec.stable_deployment or self._spec.deployment
        replicas = await self._retry(lambda: self._scale(name, factor))
        ok, waited = await self.wait_for_rollout(name)
        return ActionResult(
            ok=ok,
            detail=f"deployment/{name} scaled to {replicas} replicas; {waited}",
            output={"deployment": name, "replicas": replicas},
        )

    async def isolate(self) -> ActionResult:
        if self._router is None:
            return _needs_router("isolate the canary")
        await self._retry(lambda: self._router_weight(0))
        await self._retry(
            lambda: self._update(self._spec.deployment, annotations={rollout.ISOLATED: "true"})
        )
        return ActionResult(ok=True, detail="router: canary isolated at 0%")

    async def status(self) -> TargetStatus:
        if self._stable_by_replicas is not None:
            return await self._split_status(self._stable_by_replicas)
        deployment = await self._api.get(DEPLOYMENT, self._spec.deployment)
        owned = await self._owned_replicasets(deployment)
        rolled_back = rollout.rolled_back(deployment, owned)
        annotations = deployment["metadata"].get("annotations") or {}
        detail: dict[str, object] = {
            "deployment": self._spec.deployment,
            "revision": annotations.get(rollout.REVISION),
            "rolled_back": rolled_back,
        }
        if self._router is None:
            weight = 0 if rolled_back else 100
            return TargetStatus(weight, "retired" if rolled_back else "serving", detail)
        weight = await self._router.canary_weight()
        if weight > 0:
            state = "serving"
        elif rolled_back:
            state = "retired"
        elif annotations.get(rollout.ISOLATED) == "true":
            state = "isolated"
        else:
            state = "drained"
        return TargetStatus(weight, state, detail)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._api_client.close)

    # --- rollout status ------------------------------------------------------------

    async def wait_for_rollout(self, name: str) -> tuple[bool, str]:
        """Poll like ``kubectl rollout status --timeout``: (done, what was seen last)."""
        deadline = self._clock() + self._spec.rollout_timeout
        while True:
            deployment = await self._api.get(DEPLOYMENT, name)
            done, message, failed = rollout.rollout_progress(deployment)
            if done or failed:
                return done, message
            if self._clock() >= deadline:
                return False, (
                    f"timed out after {self._spec.rollout_timeout:g}s waiting for "
                    f"deployment/{name}: {message}"
                )
            await self._sleep(self._spec.poll_interval)

    # --- steps ---------------------------------------------------------------------

    async def _undo(self) -> tuple[bool, str]:
        """One attempt at ``rollout undo``: (applied or already done, detail)."""
        name = self._spec.deployment
        deployment = await self._api.get(DEPLOYMENT, name)
        if deployment["spec"].get("paused"):
            return False, (
                f"deployment/{name} is paused; resume it first "
                f"(kubectl rollout resume deployment/{name}), then roll back"
            )
        owned = await self._owned_replicasets(deployment)
        if rollout.rolled_back(deployment, owned) and self._spec.to_revision is None:
            return True, f"deployment/{name} is already rolled back"
        target, problem = rollout.pick_revision(deployment, owned, self._spec.to_revision)
        if target is None:
            return False, problem
        revision = target["metadata"]["annotations"][rollout.REVISION]
        if rollout.same_template(target["spec"]["template"], deployment["spec"]["template"]):
            return True, f"deployment/{name} already runs revision {revision}; nothing to undo"
        template, annotations = rollout.undo_changes(deployment, target)
        await self._patch(
            deployment, {"/spec/template": template, "/metadata/annotations": annotations}
        )
        return True, f"deployment/{name} rolled back to revision {revision}"

    async def _scale(self, name: str, factor: float) -> int:
        """Replicas = the count before rollguard first scaled it x ``factor`` (idempotent)."""
        deployment = await self._api.get(DEPLOYMENT, name)
        annotations = dict(deployment["metadata"].get("annotations") or {})
        before = int(
            annotations.get(rollout.REPLICAS_BEFORE_SCALE, deployment["spec"].get("replicas", 1))
        )
        replicas = max(1, math.ceil(before * factor))
        annotations[rollout.REPLICAS_BEFORE_SCALE] = str(before)
        await self._patch(
            deployment, {"/spec/replicas": replicas, "/metadata/annotations": annotations}
        )
        return replicas

    async def _update(
        self,
        name: str,
        *,
        replicas: int | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        """Set the replicas and annotations (None removes one) that differ, in one patch."""
        deployment = await self._api.get(DEPLOYMENT, name)
        values: dict[str, Any] = {}
        if replicas is not None and deployment["spec"].get("replicas", 1) != replicas:
            values["/spec/replicas"] = replicas
        current = dict(deployment["metadata"].get("annotations") or {})
        updated = {k: v for k, v in {**current, **(annotations or {})}.items() if v is not None}
        if updated != current:
            values["/metadata/annotations"] = updated
        if values:
            await self._patch(deployment, values)

    async def _patch(self, deployment: Obj, values: dict[str, Any]) -> None:
        """Set each path of ``values`` on the Deployment, only if it is still the version read."""
        await self._api.patch(
            DEPLOYMENT,
            deployment["metadata"]["name"],
            [
                _precondition(deployment),
                *({"op": "add", "path": path, "value": value} for path, value in values.items()),
            ],
            content_type=JSON_PATCH,
        )

    # --- traffic by replica counts (no router, a stable Deployment) --------------------

    @property
    def _stable_by_replicas(self) -> str | None:
        """The stable Deployment whose pods share the Service with the canary's, if any."""
        return self._spec.stable_by_replicas

    async def _split(self, percent: int) -> ActionResult:
        """Give the canary ``percent`` of the pods; the Deployment that grows goes first."""
        stable = self._stable_by_replicas
        assert stable is not None  # noqa: S101 only called when splitting by replicas
        canary = self._spec.deployment
        total = await self._retry(lambda: self._replica_total(stable))
        plan = replica_split.split(total, percent)
        if isinstance(plan, str):
            return ActionResult(ok=False, detail=plan)
        if percent == 0:  # never fewer stable pods than now (a scale before the rollback)
            kept = await self._replicas(stable)
            plan = replica_split.Split(canary=0, stable=max(plan.stable, kept))
        order = [(canary, plan.canary), (stable, plan.stable)]
        if plan.canary < await self._replicas(canary):
            order.reverse()
        output: dict[str, object] = {
            "achieved_weight": plan.achieved_weight,
            "replicas": plan.as_dict(),
        }
        # At 0 % or 100 % the release ends once both have rolled out: the total is
        # forgotten, in the canary's patch when that comes last, so the next release counts anew.
        forget = {rollout.REPLICA_TOTAL: None} if percent in (0, 100) else {}
        canary_last = order[-1][0] == canary
        steps: list[str] = []
        for name, replicas in order:
            last = forget if name == canary and canary_last else {}
            await self._retry(
                functools.partial(self._update, name, replicas=replicas, annotations=last)
            )
            ok, waited = await self.wait_for_rollout(name)
            steps.append(waited)
            if not ok:
                return ActionResult(ok=False, detail="; ".join(steps), output=output)
        if forget and not canary_last:
            await self._retry(functools.partial(self._update, canary, annotations=forget))
        detail = (
            f"replicas: deployment/{canary} {plan.canary}, deployment/{stable} {plan.stable}: "
            f"canary at {plan.achieved_weight:g}% of the pods ({percent}% asked)"
        )
        return ActionResult(ok=True, detail=detail, output={**output, "steps": steps})

    async def _replica_total(self, stable: str) -> int:
        """The pods to divide: the two Deployments' replicas at the first split, kept on the
        canary (``rollguard.dev/replica-total``) until the release ends, so every later step,
        and a watch taken up after a crash, divides the same number."""
        deployment = await self._api.get(DEPLOYMENT, self._spec.deployment)
        recorded = (deployment["metadata"].get("annotations") or {}).get(rollout.REPLICA_TOTAL)
        if recorded is not None and recorded.isdigit():
            return int(recorded)
        total = int(deployment["spec"].get("replicas", 1)) + await self._replicas(stable)
        await self._update(self._spec.deployment, annotations={rollout.REPLICA_TOTAL: str(total)})
        return total

    async def _replicas(self, name: str) -> int:
        return int((await self._api.get(DEPLOYMENT, name))["spec"].get("replicas", 1))

    async def _split_status(self, stable: str) -> TargetStatus:
        """The canary's share of the two Deployments' ready pods, read back."""
        ready = {}
        for version, name in (("canary", self._spec.deployment), ("stable", stable)):
            found = await self._api.get(DEPLOYMENT, name)
            ready[version] = int((found.get("status") or {}).get("readyReplicas", 0))
        pods = ready["canary"] + ready["stable"]
        weight = math.floor(100 * ready["canary"] / pods + 0.5) if pods else 0  # half up
        detail: dict[str, object] = {
            "deployment": self._spec.deployment,
            "stable_deployment": stable,
            "ready_replicas": ready,
        }
        return TargetStatus(weight, "serving" if weight else "retired", detail)

    async def _router_weight(self, percent: int) -> None:
        assert self._router is not None  # noqa: S101 only called when a router is configured
        await self._router.set_canary_weight(percent)

    async def _owned_replicasets(self, deployment: Obj) -> list[Obj]:
        """ReplicaSets whose controller is this Deployment (by uid, as kubectl checks)."""
        labels = deployment["spec"].get("selector", {}).get("matchLabels") or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        uid = deployment["metadata"].get("uid")
        return [
            rs
            for rs in await self._api.list(REPLICASET, label_selector=selector)
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in rs["metadata"].get("ownerReferences") or []
            )
        ]

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt``; on a 409 Conflict read again and retry, up to the policy's limit."""
        settings = SETTINGS["kubernetes_conflict"].with_retries(self._spec.conflict_retries)
        try:
            return await call_with_retries(
                attempt,
                settings=settings,
                retry_on=lambda exc: isinstance(exc, Conflict),
                sleep=self._sleep,
            )
        except Conflict as conflict:
            raise ExecutorError(
                f"gave up after {settings.retries + 1} conflicting writes (409): {conflict}"
            ) from conflict


def _precondition(obj: Obj) -> dict[str, Any]:
    """A patch op that makes the write apply only to the version that was read (else 409)."""
    return {
        "op": "replace",
        "path": "/metadata/resourceVersion",
        "value": obj["metadata"]["resourceVersion"],
    }


def _needs_router(what: str, otherwise: str = "") -> ActionResult:
    return ActionResult(
        ok=False,
        detail=(
            f"cannot {what} without a traffic router: set target.executor.router "
            f"(gateway-httproute, istio-virtualservice or nginx-ingress){otherwise}"
        ),
    )
