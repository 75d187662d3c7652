"""Fencing: a replica acts on a policy only while it still owns the policy's shard.

Every action goes through :class:`FencedExecutor`, which asks the ownership
check right before each executor call (not once per decision): a replica that
was paused or cut off past its Lease's end finds its shard gone when it wakes
and the call is refused, recorded as a failed step. Reading the target's state
is refused the same way: a refused action ends at once, without waiting on an
API server the replica may be cut off from, so its watch ends and gives the
deployment's lock back to the new owner. The per-deployment lock in the audit
store (:mod:`rollguard.audit.locks`) is the second fence: two replicas never
hold a deployment's watch at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, Executor, TargetStatus

Owns = Callable[[], bool]
#: Told of every action's result (the controller's ``/metrics`` counts them).
Acted = Callable[[str, ActionResult], None]
#: Told right before an action the fence let through runs (recovery's included).
Passing = Callable[[], None]


class FencedExecutor:
    """An executor whose actions are refused once ``owns()`` is false."""

    def __init__(
        self,
        inner: Executor,
        owns: Owns,
        *,
        what: str,
        acted: Acted | None = None,
        passing: Passing | None = None,
    ) -> None:
        self._inner = inner
        self._owns = owns
        self._what = what
        self._acted = acted
        self._passing = passing

    def _refusal(self) -> str:
        return (
            f"refused: this replica no longer owns {self._what} (its shard's Lease "
            "moved to another replica)"
        )

    def _refused(self) -> ActionResult | None:
        if self._owns():
            return None
        return ActionResult(ok=False, detail=self._refusal(), output={"fenced": True})

    async def _act(self, action: str, call: Callable[[], Awaitable[ActionResult]]) -> ActionResult:
        result = self._refused()
        if result is None:
            if self._passing is not None:
                self._passing()
            result = await call()
        if self._acted is not None:
            self._acted(action, result)
        return result

    async def rollback(self) -> ActionResult:
        return await self._act("rollback", self._inner.rollback)

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        return await self._act(
            "set_canary_weight", lambda: self._inner.set_canary_weight(percent=percent)
        )

    async def scale(self, *, factor: float) -> ActionResult:
        return await self._act("scale", lambda: self._inner.scale(factor=factor))

    async def isolate(self) -> ActionResult:
        return await self._act("isolate", self._inner.isolate)

    async def status(self) -> TargetStatus:
        """The target's state, read only while owned (ExecutorError once the shard moved)."""
        if not self._owns():
            raise ExecutorError(self._refusal())
        return await self._inner.status()

    async def aclose(self) -> None:
        await self._inner.aclose()
