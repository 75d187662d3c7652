"""The executor interface: the few things rollguard does to a deployment.

Every method is idempotent (rolling back twice leaves the same state as once)
so a controller that crashed mid-action can simply do it again. Methods return
an :class:`ActionResult`; a failure to act is an ``ok=False`` result with the
reason, so it is recorded, while :class:`~rollguard.errors.ExecutorError` is
for an executor that cannot be used at all (socket missing, bad credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ActionResult:
    """What one executor call did, for the decision record."""

    ok: bool
    detail: str
    output: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetStatus:
    """The deployment's real state, as the executor reads it back."""

    canary_weight: int  # percent of traffic on the canary, 0-100
    canary_state: str  # "serving", "drained", "isolated", "retired", "unknown"
    detail: Mapping[str, object] = field(default_factory=dict)
    #: Why the weight is only what the executor was last told, not read from the target
    #: ("" when it was read back): shown instead of a split nobody measured.
    assumed: str = ""

    @property
    def rolled_back(self) -> bool:
        """All traffic is on stable."""
        return self.canary_weight == 0


def refused_weight(percent: int) -> ActionResult | None:
    """The failed result every executor gives a canary weight outside 0-100, else None."""
    if 0 <= percent <= 100:
        return None
    return ActionResult(ok=False, detail=f"canary weight must be 0-100, got {percent}")


class Executor(Protocol):
    """Acts on one deployment. Keyword-only options, idempotent calls."""

    async def rollback(self) -> ActionResult:
        """All traffic to stable, canary retired (``kubectl rollout undo`` semantics)."""

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        """Send ``percent`` of traffic to the canary, the rest to stable."""

    async def scale(self, *, factor: float) -> ActionResult:
        """Scale the stable version up by ``factor`` before shifting traffic to it."""

    async def isolate(self) -> ActionResult:
        """Take the canary out of traffic at once, keeping it for forensics."""

    async def status(self) -> TargetStatus:
        """Read the real state back."""

    async def aclose(self) -> None:
        """Release sockets and clients."""
