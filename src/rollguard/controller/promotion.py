"""A progressive release: step the canary's share forward on evidence, through hooks.

The watch loop (:mod:`rollguard.controller.watch`) judges the rollback
triggers first; when none fires it hands each interval's measurements to
:meth:`Progress.observe`, which feeds the promotion test
(:mod:`rollguard.engine.promotion`) and moves to the next step once the test
accepts and the step's minimum duration has passed. Each step's evidence is
its own: the test starts afresh at every change of share, so a fault that comes
with a step (or with its load) holds that step. An operator's hold
(``release pause``) keeps the step: the evidence is still fed and the
rollback triggers still act, but the share does not rise, and the time held
does not count towards ``max_step_duration``. A release's progress outlives
one run of the watch (a resume, a promote a hook held), so it continues at its
step; a new release, or a retry, starts a new one. Every traffic move is an
audit entry (``promotion_step``, with the evidence), every hook call one of kind
``hook``. :class:`Stop` tells the watch loop how the release ended: promoted,
held for an operator, or to be rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rollguard.audit.base import Kind
from rollguard.baseline import Baseline
from rollguard.controller import hooks
from rollguard.controller.actions import ActionKind, OperatorAction
from rollguard.engine import promotion as test
from rollguard.engine.decision import Evidence
from rollguard.errors import RollguardError
from rollguard.executors.base import ActionResult, Executor
from rollguard.policy.actions import Action, Severity
from rollguard.policy.model import Policy
from rollguard.policy.promotion import Hook, Promotion
from rollguard.signals import Measurement, Query

#: Writes one audit entry: (kind, reason, outcome, executor_output).
Record = Callable[[Kind, str, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Stop:
    """How a release's progress ends the watch (an :class:`~rollguard.controller.watch.Acting`).

    ``end`` is ``promoted`` (all traffic on the canary), ``held`` (left at its
    share for an operator) or ``rollback`` (the watch rolls back at once).
    """

    end: Literal["promoted", "held", "rollback"]
    reason: str
    canary_weight: int | None = None

    @property
    def holds_a_step(self) -> bool:
        """Left at a step's share for an operator (``on_max_duration: hold``)."""
        return self.end == "held" and self.canary_weight is not None

    @property
    def action(self) -> ActionKind:
        if self.end == "promoted":
            return OperatorAction.PROMOTE
        return Action.IMMEDIATE_ROLLBACK if self.end == "rollback" else Action.CONTINUE

    @property
    def trigger(self) -> str | None:
        return "promotion"

    @property
    def severity(self) -> Severity:
        return Severity.CRITICAL if self.end == "rollback" else Severity.INFO

    @property
    def notification(self) -> str | None:
        return None

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return ()


class Progress:
    """One release's steps: where it stands, since when, and what the evidence says."""

    def __init__(
        self,
        policy: Policy,
        *,
        executor: Executor,
        record: Record,
        baseline: Baseline | None = None,
    ) -> None:
        assert policy.promotion is not None  # noqa: S101 only built for a policy with promotion:
        self.policy = policy
        self.plan: Promotion = policy.promotion
        self.executor = executor
        self.record = record
        self.baseline = baseline
        self.index = 0
        self.step_since = 0.0
        self.state = test.start(policy)
        self.last: test.PromotionVerdict | None = None
        self.held_seconds = 0.0  # of this step, held by an operator (not counted to its maximum)
        self.last_at: float | None = None
        self.finished = False  # promoted, held at its maximum or rolled back: a new one is due

    @property
    def weight(self) -> int:
        return self.plan.steps[self.index]

    def queries(self) -> list[Query]:
        return test.queries(self.policy)

    async def begin(self, now: float) -> Stop | None:
        """``pre_rollout``, then the first step's share."""
        answer = await self._hook("pre_rollout", self.plan.hooks.pre_rollout)
        if isinstance(answer, Stop):
            return answer
        if not answer:
            return Stop("held", "hook pre_rollout held the release before any traffic")
        return await self._move(0, now, "first step")

    @property
    def next_weight(self) -> int | None:
        """The share of the next step, None at the last."""
        return self.plan.steps[self.index + 1] if self.index + 1 < len(self.plan.steps) else None

    def snapshot(self, *, held_by: str | None = None) -> dict[str, Any]:
        """Where the release stands, for ``serve``'s API and page: step, evidence, next step."""
        verdict = self.last
        return {
            "step": self.index + 1,
            "of": len(self.plan.steps),
            "canary_weight": self.weight,
            "next_weight": self.next_weight,
            "step_seconds": round(max((self.last_at or self.step_since) - self.step_since, 0.0), 3),
            "min_step_seconds": self.plan.min_step_duration,
            "max_step_seconds": self.plan.max_step_duration,
            "held_by": held_by,
            "accepted": verdict.accepted if verdict is not None else False,
            "reason": verdict.reason if verdict is not None else "no interval judged yet",
            "evidence": [dict(item) for item in verdict.evidence] if verdict is not None else [],
        }

    def carry_on(self, now: float) -> None:
        """A new run of the watch takes the release up at its step, whose clock starts again
        (a step an operator held past its maximum gets its full time once resumed)."""
        self.step_since, self.held_seconds, self.last_at = now, 0.0, None

    async def resume(self, index: int, now: float, *, after: str) -> Stop | None:
        """After a crash or a signal: back at the step the last watch recorded, without
        ``pre_rollout``; ``after`` says how that watch ended ("watch W was interrupted").

        The share is set again (idempotent); the evidence starts afresh, so the step
        holds until the promotion test accepts again. A release stopped at its last
        step was fully promoted: it ends so.
        """
        stop = await self._move(index, now, f"resumed at step {index + 1} after {after}")
        if stop is not None or self.weight < 100:
            return stop
        return Stop("promoted", f"promoted to 100% before {after}", 100)

    async def observe(
        self,
        measurements: Mapping[Query, Measurement],
        now: float,
        *,
        calm: bool = True,
        held: bool = False,
    ) -> Stop | None:
        """Feed one interval; move on, end, or stay (None).

        ``calm`` is false while a rollback trigger breaches (not yet firing): the
        evidence is still fed, but the share does not rise. ``held`` (an operator's
        pause) keeps the share too, and the interval does not count towards the step's
        maximum duration.
        """
        verdict = test.update(
            self.policy,
            measurements,
            baseline=self.baseline,
            state=self.state,
            now=now,
            final=self.next_weight == 100,
        )
        self.state, self.last = verdict.state, verdict
        if held and self.last_at is not None:
            self.held_seconds += now - max(self.last_at, self.step_since)
        self.last_at = now
        if held:
            return None
        held_for = now - self.step_since
        ready = verdict.accepted and calm
        if ready and held_for >= self.plan.min_step_duration:
            before = self.index
            stop = await self._next(now, f"no worse: {verdict.reason}")
            if stop is not None or self.index != before:
                return stop  # else a hook held the step: its maximum still counts
        if held_for - self.held_seconds < self.plan.max_step_duration:
            return None
        why = (
            f"step {self.weight}% reached max_step_duration "
            f"({self.plan.max_step_duration:g}s) without the evidence: {verdict.reason}"
        )
        if self.plan.on_max_duration == "promote":
            return await self._next(now, f"{why}; on_max_duration: promote")
        if self.plan.on_max_duration == "rollback":
            return Stop("rollback", f"{why}; on_max_duration: rollback", self.weight)
        return Stop("held", f"{why}; held at {self.weight}% for an operator", self.weight)

    async def rolled_back(self) -> None:
        """After a rollback of this release: ``on_rollback`` (recorded, changes nothing)."""
        self.finished = True
        if self.plan.hooks.on_rollback is not None:
            await self._call("on_rollback", self.plan.hooks.on_rollback)

    async def confirm_promotion(self) -> Stop | bool:
        """Before an operator's promote: ``confirm_promotion``; go on, hold (False), or stop."""
        return await self._hook("confirm_promotion", self.plan.hooks.confirm_promotion)

    async def promoted(self) -> None:
        """After an operator's promote: ``post_rollout`` (recorded, changes nothing)."""
        self.finished = True
        if self.plan.hooks.post_rollout is not None:
            await self._call("post_rollout", self.plan.hooks.post_rollout)

    async def _next(self, now: float, reason: str) -> Stop | None:
        last = self.index + 1 == len(self.plan.steps) - 1
        name = "confirm_promotion" if last else "confirm_step"
        answer = await self._hook(name, getattr(self.plan.hooks, name))
        if isinstance(answer, Stop):
            return answer
        if not answer:
            return None  # held: this share stays; the hook is asked again next interval
        moved = await self._move(self.index + 1, now, reason)
        if moved is not None or self.weight < 100:
            return moved
        if self.plan.hooks.post_rollout is not None:
            await self._call("post_rollout", self.plan.hooks.post_rollout)
        return Stop("promoted", f"promoted to 100% step by step: {reason}", 100)

    async def _move(self, index: int, now: float, reason: str) -> Stop | None:
        percent = self.plan.steps[index]
        try:
            result = await self.executor.set_canary_weight(percent=percent)
        except RollguardError as exc:
            result = ActionResult(ok=False, detail=str(exc))
        evidence = [dict(item) for item in self.last.evidence] if self.last else []
        output = {
            "step": index + 1,
            "of": len(self.plan.steps),
            "canary_weight": percent,
            "ok": result.ok,
            "detail": result.detail,
            "evidence": evidence,
        }
        if "achieved_weight" in result.output:  # replica counts only approximate the share
            output["achieved_weight"] = result.output["achieved_weight"]
            output["replicas"] = result.output.get("replicas")
        await self.record(
            "promotion_step", f"{percent}%: {reason}", "success" if result.ok else "failure", output
        )
        if not result.ok:
            return Stop("rollback", f"setting the canary to {percent}% failed: {result.detail}")
        self.index, self.step_since = index, now
        self.held_seconds = 0.0
        self.state = test.restart(self.state)  # each step shows its own evidence
        return None

    async def _hook(self, name: str, hook: Hook | None) -> Stop | bool:
        """Call a hook that can hold or fail the release: go on (True), hold (False), or stop."""
        if hook is None:
            return True
        result = await self._call(name, hook)
        if result.ok:
            return True
        if hook.on_failure == "fail":
            return Stop("rollback", f"hook {name} failed: {result.detail}", self.weight)
        return False

    async def _call(self, name: str, hook: Hook) -> hooks.HookResult:
        facts = {
            "deployment": self.policy.target.deployment,
            "canary_weight": str(self.weight),
            "step": str(self.index + 1),
            "steps": str(len(self.plan.steps)),
        }
        result = await hooks.call(name, hook, facts=facts)
        await self.record(
            "hook",
            f"{name}: {result.detail}",
            "success" if result.ok else "failure",
            result.as_dict(),
        )
        return result
