"""Carry out a decision's action through an executor.

Immediate rollback, gradual traffic shifting with re-measurement and early
stop, scale-then-rollback, isolate-then-rollback, and block; and the
operator's promote (all traffic to the canary), which no trigger can ask for.
Every executor call is recorded as a step, so the audit trail shows exactly
what was done, whoever asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rollguard.controller.clock import Clock
from rollguard.errors import RollguardError
from rollguard.executors.base import ActionResult, Executor
from rollguard.metrics.base import Provider
from rollguard.policy.actions import Action, gradual_canary_percent
from rollguard.policy.model import Policy
from rollguard.signals import Query, Signal, Version

StepHook = Callable[[dict[str, Any]], Awaitable[None] | None]


class OperatorAction(StrEnum):
    """Actions only an operator asks for (``serve``'s API), never a trigger."""

    PROMOTE = "promote"


#: Anything :func:`execute` carries out.
ActionKind = Action | OperatorAction


def action_kind(name: str) -> ActionKind:
    """The action an audit record names (ValueError for a name neither kind has)."""
    try:
        return Action(name)
    except ValueError:
        return OperatorAction(name)


@dataclass
class ActionOutcome:
    """What an action did: its steps, whether it completed, where traffic ended."""

    action: ActionKind
    ok: bool = True
    steps: list[dict[str, Any]] = field(default_factory=list)
    canary_weight: int | None = None
    recovered_early: bool = False
    detail: str = ""

    def add(self, name: str, result: ActionResult, *, required: bool = True, **extra: Any) -> None:
        """Record one executor call; only a failed ``required`` one fails the action."""
        self.steps.append(
            {"step": name, "ok": result.ok, "detail": result.detail, **extra, **result.output}
        )
        if result.ok:
            return
        failed = f"{name} failed: {result.detail}"
        if required:
            self.ok = False
            self.detail = failed if not self.detail else f"{self.detail}; {failed}"
        else:
            self.detail = failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "ok": self.ok,
            "steps": self.steps,
            "canary_weight": self.canary_weight,
            "recovered_early": self.recovered_early,
            "detail": self.detail,
        }


async def execute(
    action: ActionKind,
    *,
    policy: Policy,
    executor: Executor,
    provider: Provider,
    clock: Clock,
    on_step: StepHook | None = None,
    gradual_from: int | None = None,
    trigger: str | None = None,
) -> ActionOutcome:
    """Run ``action`` to completion; a failing executor call stops it with ``ok=False``.

    A failed scale or isolation before a rollback is the exception: it is recorded as a
    failed step and the rollback still runs, so a target that cannot scale or isolate
    never keeps the bad release.

    ``gradual_from`` is the canary weight a gradual rollback's steps are shares of,
    when it is resumed after a crash (the weight it had when the rollback began).
    ``trigger`` names the trigger that asked for it: a gradual rollback stops early
    on users' error rate only when that trigger measures the error rate.
    """
    outcome = ActionOutcome(action=action)

    async def step(
        name: str, call: Awaitable[ActionResult], *, required: bool = True, **extra: Any
    ) -> bool:
        try:
            result = await call
        except RollguardError as exc:  # e.g. a socket gone: a failed step, recorded, not a crash
            result = ActionResult(ok=False, detail=str(exc))
        outcome.add(name, result, required=required, **extra)
        if on_step is not None:
            maybe = on_step(outcome.steps[-1])
            if maybe is not None:
                await maybe
        return result.ok and outcome.ok

    async def prepare_then_roll_back(name: str, call: Awaitable[ActionResult]) -> None:
        # Scaling stable up or isolating the canary only eases the rollback (capacity,
        # forensics); the rollback is what takes the bad release off, so a failed
        # preparation is recorded and the rollback still runs.
        prepared = await step(name, call, required=False)
        if await step("rollback", executor.rollback()) and not prepared:
            outcome.detail = f"rolled back, {outcome.detail}"

    if action is Action.GRADUAL_ROLLBACK:
        await _gradual(
            outcome,
            step,
            policy=policy,
            executor=executor,
            provider=provider,
            clock=clock,
            start_percent=gradual_from,
            stops_early=_measures_errors(policy, trigger),
        )
    elif action is Action.SCALING_AND_ROLLBACK:
        await prepare_then_roll_back("scale", executor.scale(factor=policy.rollback.scale_factor))
    elif action is Action.TRAFFIC_ISOLATION_AND_ROLLBACK:
        await prepare_then_roll_back("isolate", executor.isolate())
    elif action in (Action.IMMEDIATE_ROLLBACK, Action.DEPLOYMENT_BLOCK):
        await step("rollback", executor.rollback())
    elif action is OperatorAction.PROMOTE:
        await step("set_canary_weight", executor.set_canary_weight(percent=100))
    if outcome.canary_weight is None:
        try:
            status = await executor.status()
        except RollguardError as exc:  # an unreadable target is recorded, never assumed
            outcome.steps.append({"step": "status", "ok": False, "detail": str(exc)})
            if outcome.ok:
                outcome.ok, outcome.detail = False, f"status failed: {exc}"
            return outcome
        outcome.canary_weight = status.canary_weight
        read: dict[str, object] = {"step": "status", "ok": True}
        read.update(canary_weight=status.canary_weight, canary_state=status.canary_state)
        if status.assumed:  # nothing was read back: the record says so
            read["assumed"] = status.assumed
        outcome.steps.append(read)
    return outcome


async def _gradual(
    outcome: ActionOutcome,
    step: Callable[..., Awaitable[bool]],
    *,
    policy: Policy,
    executor: Executor,
    provider: Provider,
    clock: Clock,
    start_percent: int | None = None,
    stops_early: bool = True,
) -> None:
    """Shift 25/50/75/100 % of the canary's traffic back to stable, re-measuring after each step.

    The steps are shares of the traffic the canary had when the rollback began
    (read from the executor), so a canary at 20 % goes 15, 10, 5, 0 and is never
    given more traffic than it had. With ``stops_early`` (an error-rate trigger
    asked), it stops once the error rate users see (stable and canary blended by
    their traffic shares) is below ``recovered_below_error_rate_percent``, as a
    gradual rollback usually does. Once the canary has no traffic left, the
    release itself is rolled back (the executor's rollback: a Deployment undone),
    as an immediate rollback would, so the bad version is not left running.
    """
    plan = policy.rollback
    if start_percent is None:
        try:
            start_percent = (await executor.status()).canary_weight
        except RollguardError:
            start_percent = plan.canary_weight
    for to_stable in plan.steps:
        canary_percent = gradual_canary_percent(start_percent, to_stable)
        if not await step(
            "set_canary_weight",
            executor.set_canary_weight(percent=canary_percent),
            to_stable_percent=to_stable,
            from_percent=start_percent,  # recovery resumes the plan from the audit trail
        ):
            return
        outcome.canary_weight = canary_percent
        if canary_percent == 0:
            await step("rollback", executor.rollback())
            return
        await clock.sleep(plan.step_wait)
        if not stops_early:
            continue
        users_rate = await _users_error_rate(provider, clock, canary_percent, plan.step_wait)
        outcome.steps[-1]["users_error_rate_percent"] = users_rate
        if users_rate is not None and users_rate < plan.recovered_below_error_rate_percent:
            outcome.recovered_early = True
            outcome.detail = (
                f"recovered at {to_stable}% on stable: users' error rate {users_rate:.2f}% "
                f"< {plan.recovered_below_error_rate_percent:g}%"
            )
            return


def _measures_errors(policy: Policy, trigger: str | None) -> bool:
    """Whether ``trigger`` measures the error rate, the one signal whose recovery users'
    blended error rate shows: a slow canary raises no errors, so judged by them a
    latency rollback would look recovered at its first step with the canary still slow."""
    return any(
        rule.name == trigger and rule.signal is Signal.ERROR_RATE_PERCENT for rule in policy.rules
    )


async def _users_error_rate(
    provider: Provider, clock: Clock, canary_percent: int, window: float
) -> float | None:
    """The error rate users saw over the last step, or None without data."""
    now = clock.now()
    versions = (Version.STABLE, Version.CANARY)
    queries = [Query(Signal.ERROR_RATE_PERCENT, version, window) for version in versions]
    await provider.collect(now=now)
    stable, canary = await provider.measure(queries, now=now)
    if stable.value is None or canary.value is None:  # no data on either side
        return None
    share = canary_percent / 100
    return (1 - share) * stable.value + share * canary.value
