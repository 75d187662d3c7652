"""A watch stopped by a signal stops, and its progressive release stays where it is.

A progressive release outlives the process that steps it. SIGINT (Ctrl-C) or
SIGTERM (a CI runner cancelling its job, a pod replaced) stops the *watch*: it
records its ``deployment_end`` (outcome ``interrupted``) with ``stopped_by``
(the signal) and where the release stands, leaves the canary at its share, and
the next watch takes the release up at that step, exactly as after a SIGKILL
(:func:`rollguard.controller.recovery.crashed_step`). Starting over from the
first step would step the canary back down (50 % → 5 %) and undo the progress
without anyone deciding so.

A watch whose time (``watch --for``) runs out before its release ends stops the
same way (``stopped_by``: :data:`~rollguard.controller.recovery.RAN_OUT`): its
outcome is still its own (healthy when nothing was wrong), and the release stays
at its step for the next watch.

Where the release stands is read back from the trail once this watch's last
entry has landed, not from memory: a step whose entry was handed to the store
lands even when the signal comes while it is written, and the trail is what the
next watch reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rollguard.audit.base import AuditStore
from rollguard.controller import recovery
from rollguard.controller.recovery import RAN_OUT, STOPPED_BY
from rollguard.policy.model import Policy


class Left(StrEnum):
    """What a watch stopped by a signal left in the trail."""

    RECORDED = "recorded"  # its deployment_end, with the signal and the release's step
    ACTING = "acting"  # an action under way, left open: the next watch finishes it
    UNRECORDED = "unrecorded"  # the store did not answer in time: the next watch closes it
    NOT_BEGUN = "not_begun"  # stopped before the watch began (the lock, recovery)


@dataclass(frozen=True)
class StopNote:
    """How a watch stopped by a signal, or by its time running out, left its deployment;
    what the CLI says of it."""

    #: The signal's name, or :data:`~rollguard.controller.recovery.RAN_OUT`.
    signal: str
    #: The policy steps the canary forward (``promotion:``).
    progressive: bool
    #: Where the release stands in the trail (None: no step taken yet).
    at: recovery.CrashedStep | None = None
    steps: int = 0
    #: What the watch left in the trail.
    left: Left = Left.RECORDED

    @property
    def reason(self) -> str:
        """The ``deployment_end`` reason: what stopped the watch, where the release stays."""
        stopped = "watch time ran out" if self.signal == RAN_OUT else f"stopped by {self.signal}"
        if not self.progressive:
            return f"{stopped} before a verdict"
        if self.at is None:
            return f"{stopped} before the release's first step: the next watch starts it"
        return (
            f"{stopped} at step {self.at.index + 1} of {self.steps} "
            f"({self.at.canary_weight}%): the canary stays at {self.at.canary_weight}%, "
            "the next watch resumes the release at this step"
        )

    def release(self) -> dict[str, Any] | None:
        """Where a progressive release stays (step, of, canary_weight), None when nowhere."""
        if self.at is None:
            return None
        return {
            "step": self.at.index + 1,
            "of": self.steps,
            "canary_weight": self.at.canary_weight,
            "resumable": True,
        }

    def evidence(self) -> dict[str, Any]:
        """What the ``deployment_end`` keeps: the signal, and the release's step."""
        facts: dict[str, Any] = {STOPPED_BY: self.signal}
        if self.progressive:
            facts["release"] = self.release()
        return facts

    def as_dict(self) -> dict[str, Any]:
        """The facts ``watch --output json`` adds to its ``interrupted`` object (which names
        the signal): what the watch left, and where a progressive release stays."""
        facts: dict[str, Any] = {"left": self.left.value}
        if self.progressive:
            facts["release"] = self.release()
        return facts

    def sentence(self) -> str:
        """What people read on the terminal."""
        if self.left is Left.ACTING:
            return "an action was under way: the next watch finishes it"
        if self.left is Left.NOT_BEGUN:
            return "the watch had not begun: nothing was recorded"
        told = "deployment_end recorded (outcome interrupted)"
        if self.left is Left.UNRECORDED:
            told = "the audit store did not answer in time: the next watch closes this one"
        if not self.progressive:
            return f"{told}; nothing was decided"
        if self.at is None and self.left is Left.UNRECORDED:
            return f"{told}; the next watch resumes the release at its last recorded step"
        return f"{told}; {self.resumable()}"

    def resumable(self) -> str:
        """Where the release stays and what the next watch does (a step was taken)."""
        if self.at is None:
            return "no step was taken: the next watch starts the release"
        weight = self.at.canary_weight
        return (
            f"the release stays at step {self.at.index + 1} of {self.steps}, "
            f"canary at {weight}%: the next `rollguard watch` resumes it there "
            "(`--restart` starts it over at its first step)"
        )


async def note(signal: str, *, policy: Policy, audit: object, namespace: str | None) -> StopNote:
    """Where the release of ``policy``'s deployment stands, read back from the trail."""
    plan = policy.promotion
    if plan is None:
        return StopNote(signal, progressive=False)
    at = None
    if isinstance(audit, AuditStore):
        at = await recovery.crashed_step(audit, policy, namespace=namespace)
    return StopNote(signal, progressive=True, at=at, steps=len(plan.steps))
