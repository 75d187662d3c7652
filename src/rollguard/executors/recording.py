"""The one stand-in executor: records what it is asked, changes nothing by itself.

It serves every place that must decide and act without touching a real
target: the ``noop`` executor type (a policy-wide dry run), drills without
``--execute``, backtests, and users' tests (re-exported by
:mod:`rollguard.testing`). Its status stays truthful: a rollback leaves the
canary at 0 %, a weight change is remembered.

Wrapping a real executor (``inner``), it passes every call on and notes the
moment traffic was first fully back on stable (the demo's "recovered at"),
as seen from outside the controller.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from rollguard.executors.base import ActionResult, Executor, TargetStatus, refused_weight

Call = Callable[[Executor], Awaitable[ActionResult]]
#: Its status is what it was told: nothing is read back from a target.
ASSUMED = "the noop executor changes and reads nothing"


class RecordingExecutor:
    """Records every call as ``(name, argument)``; can be told to refuse some (``fail``)."""

    def __init__(
        self,
        inner: Executor | None = None,
        *,
        canary_weight: int = 20,
        fail: frozenset[str] = frozenset(),
        on_call: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.calls: list[tuple[str, object]] = []
        self.canary_weight = canary_weight
        self.canary_state = "serving" if canary_weight else "unknown"
        self.fail = fail
        self.recovered_at: float | None = None
        self._on_call = on_call
        self._clock = clock

    async def rollback(self) -> ActionResult:
        return await self._call(
            ("rollback", None), "rollback", lambda e: e.rollback(), weight=0, state="retired"
        )

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        if self.inner is None and (refused := refused_weight(percent)) is not None:
            self.calls.append(("set_canary_weight", percent))
            return refused
        return await self._call(
            ("set_canary_weight", percent),
            f"set canary weight {percent}%",
            lambda e: e.set_canary_weight(percent=percent),
            weight=percent,
        )

    async def scale(self, *, factor: float) -> ActionResult:
        return await self._call(
            ("scale", factor), f"scale x{factor:g}", lambda e: e.scale(factor=factor)
        )

    async def isolate(self) -> ActionResult:
        return await self._call(
            ("isolate", None), "isolate", lambda e: e.isolate(), weight=0, state="isolated"
        )

    async def status(self) -> TargetStatus:
        if self.inner is not None:
            return await self.inner.status()
        return TargetStatus(
            canary_weight=self.canary_weight,
            canary_state=self.canary_state,
            assumed=ASSUMED,
        )

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()

    async def _call(
        self,
        recorded: tuple[str, object],
        label: str,
        call: Call,
        *,
        weight: int | None = None,
        state: str | None = None,
    ) -> ActionResult:
        """Record, then act through ``inner`` (or only record); keep the status truthful."""
        self.calls.append(recorded)
        name = recorded[0]
        if name in self.fail:
            result = ActionResult(ok=False, detail=f"{name} refused (told to fail)")
        elif self.inner is not None:
            result = await call(self.inner)
        else:
            result = ActionResult(ok=True, detail=f"{label}: recorded, nothing changed")
        if result.ok and weight is not None:
            self.canary_weight = weight
            self.canary_state = state or ("serving" if weight else "drained")
            if weight == 0 and self.recovered_at is None:
                self.recovered_at = self._clock()
        if self._on_call is not None:
            verdict = "ok" if result.ok else "FAILED"
            self._on_call(f"{label}: {verdict}, {result.detail}")
        return result
