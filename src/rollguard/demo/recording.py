"""An executor wrapper that notes when traffic was fully back on stable.

The demo's "recovered at" is the moment an executor call that leaves the
canary with no traffic (rollback, isolation, or a weight of 0) succeeded, as
seen from outside the controller, without changing what the controller does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rollguard.executors.base import ActionResult, Executor, TargetStatus


class RecoveryRecorder:
    """Passes every call through to ``inner``; records the first call that drains the canary."""

    def __init__(self, inner: Executor, *, on_call: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.recovered_at: float | None = None
        self.calls: list[tuple[str, ActionResult]] = []
        self._on_call = on_call

    async def rollback(self) -> ActionResult:
        return self._note("rollback", await self.inner.rollback(), drained=True)

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        result = await self.inner.set_canary_weight(percent=percent)
        return self._note(f"set canary weight {percent}%", result, drained=percent == 0)

    async def scale(self, *, factor: float) -> ActionResult:
        result = await self.inner.scale(factor=factor)
        return self._note(f"scale x{factor:g}", result, drained=False)

    async def isolate(self) -> ActionResult:
        return self._note("isolate", await self.inner.isolate(), drained=True)

    async def status(self) -> TargetStatus:
        return await self.inner.status()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _note(self, name: str, result: ActionResult, *, drained: bool) -> ActionResult:
        self.calls.append((name, result))
        if result.ok and drained and self.recovered_at is None:
            self.recovered_at = time.time()
        if self._on_call is not None:
            self._on_call(f"{name}: {'ok' if result.ok else 'FAILED'}, {result.detail}")
        return result
