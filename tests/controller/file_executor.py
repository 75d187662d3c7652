"""An executor whose deployment state lives in a JSON file, so it survives a SIGKILL.

``crash_after=("set_canary_weight", 2)`` makes the process SIGKILL itself right
after the second such call has changed the state — the worst moment: the
deployment moved, the audit trail does not know yet.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from rollguard.executors.base import ActionResult, TargetStatus


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically and durably."""
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(path.read_text())
    return state


class FileExecutor:
    """Idempotent actions on the state file; every weight it sets is kept in ``history``."""

    def __init__(self, path: Path, *, crash_after: tuple[str, int] | None = None) -> None:
        self.path = path
        self.crash_after = crash_after
        self.calls: dict[str, int] = {}

    def _change(self, method: str, **values: Any) -> None:
        state = read_state(self.path)
        state.update(values)
        state["history"].append([method, state["canary_weight"]])
        write_state(self.path, state)
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.crash_after == (method, self.calls[method]):
            os.kill(os.getpid(), signal.SIGKILL)

    async def rollback(self) -> ActionResult:
        self._change("rollback", canary_weight=0, canary_state="retired")
        return ActionResult(ok=True, detail="canary retired")

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        self._change("set_canary_weight", canary_weight=percent, canary_state="serving")
        return ActionResult(ok=True, detail=f"canary weight {percent}%")

    async def scale(self, *, factor: float) -> ActionResult:
        self._change("scale")
        return ActionResult(ok=True, detail=f"stable scaled x{factor:g}")

    async def isolate(self) -> ActionResult:
        self._change("isolate", canary_weight=0, canary_state="isolated")
        return ActionResult(ok=True, detail="canary isolated")

    async def status(self) -> TargetStatus:
        state = read_state(self.path)
        return TargetStatus(
            canary_weight=int(state["canary_weight"]), canary_state=str(state["canary_state"])
        )

    async def aclose(self) -> None:
        return None
