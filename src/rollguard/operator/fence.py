"""Fencing: a replica acts on a policy only while it still owns the policy's shard.

Every action goes through :class:`FencedExecutor`, which asks the ownership
check right before each executor call (not once per decision): a replica that
was paused or cut off past its Lease's end finds its shard gone when it wakes
and the call is refused, recorded as a failed step. The per-deployment lock in
the audit store (:mod:`rollguard.audit.locks`) is the second fence: two
replicas never hold a deployment's watch at once.
"""

from __future__ import annotations

from collections.abc import Callable

from rollguard.executors.base import ActionResult, Executor, TargetStatus

Owns = Callable[[], bool]


class FencedExecutor:
    """An executor whose actions are refused once ``owns()`` is false."""

    def __init__(self, inner: Executor, owns: Owns, *, what: str) -> None:
        self._inner = inner
        self._owns = owns
        self._what = what

    def _refused(self) -> ActionResult | None:
        if self._owns():
            return None
        return ActionResult(
            ok=False,
            detail=f"refused: this replica no longer owns {self._what} (its shard's Lease "
            "moved to another replica)",
            output={"fenced": True},
        )

    async def rollback(self) -> ActionResult:
        return self._refused() or await self._inner.rollback()

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        return self._refused() or await self._inner.set_canary_weight(percent=percent)

    async def scale(self, *, factor: float) -> ActionResult:
        return self._refused() or await self._inner.scale(factor=factor)

    async def isolate(self) -> ActionResult:
        return self._refused() or await self._inner.isolate()

    async def status(self) -> TargetStatus:
        return await self._inner.status()

    async def aclose(self) -> None:
        await self._inner.aclose()
