"""An executor that changes nothing: decisions are recorded, never acted on."""

from __future__ import annotations

from rollguard.executors.base import ActionResult, TargetStatus


class NoopExecutor:
    """Remembers the weight it was asked for, so status stays truthful."""

    def __init__(self, *, canary_weight: int = 0) -> None:
        self._canary_weight = canary_weight
        self._state = "serving" if canary_weight else "unknown"

    async def rollback(self) -> ActionResult:
        self._canary_weight, self._state = 0, "retired"
        return ActionResult(ok=True, detail="noop: nothing changed (policy-wide dry run)")

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        self._canary_weight = percent
        return ActionResult(ok=True, detail=f"noop: canary weight {percent}% not applied")

    async def scale(self, *, factor: float) -> ActionResult:
        return ActionResult(ok=True, detail=f"noop: scale x{factor} not applied")

    async def isolate(self) -> ActionResult:
        self._canary_weight, self._state = 0, "isolated"
        return ActionResult(ok=True, detail="noop: isolation not applied")

    async def status(self) -> TargetStatus:
        return TargetStatus(canary_weight=self._canary_weight, canary_state=self._state)

    async def aclose(self) -> None:
        return None
