"""A rollback fire drill: prove one trigger and its action work before a bad release does.

The watch engine runs through the very :class:`~rollguard.controller.watch.Watcher`
``watch`` uses, on a simulated clock, fed by :mod:`rollguard.controller.drill_feed`:
the drilled trigger breached, every other trigger healthy. Its entries go to an
in-memory sink, because a drill is not a rollback; the policy's store gets one
``drill`` entry, which the compliance report counts (docs/drill.md).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollguard.audit.base import AuditRecord, AuditSink, MemoryAuditSink
from rollguard.audit.spool import SPOOLED
from rollguard.baseline import Baseline
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.backtest import json_safe
from rollguard.controller.clock import SimulatedClock
from rollguard.controller.drill_feed import Breach, build_feed
from rollguard.controller.recovery import namespace_of
from rollguard.controller.watch import Outcome, WatchResult
from rollguard.engine import sequential_rules
from rollguard.errors import AuditError, ExitCode, RollguardError, UsageError
from rollguard.executors.base import Executor
from rollguard.notifiers.silent import SilentNotifier
from rollguard.policy.actions import PRIORITY, Action
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger
from rollguard.timestamps import now_rfc3339
from rollguard.wording import counted

#: Evaluations a sequential test gets to cross 1/alpha before the drill gives up.
SEQUENTIAL_EVALUATIONS = 60


@dataclass
class DrillResult:
    """What the drill proved, and the ``drill`` audit entry that says so."""

    trigger: str
    action: Action
    severity: str
    executed: bool
    fired: bool
    action_ok: bool
    reason: str
    breach: Breach
    decision: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    final_status: dict[str, Any] = field(default_factory=dict)
    evaluations: int = 0
    drill_id: str = ""
    audit_id: int | None = None

    @property
    def passed(self) -> bool:
        return self.fired and self.action_ok

    @property
    def exit_code(self) -> ExitCode:
        if not self.fired:
            return ExitCode.INCONCLUSIVE
        return ExitCode.HEALTHY if self.action_ok else ExitCode.ACTION_FAILED

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json_safe(
            {
                "outcome": "success" if self.passed else "failure",
                "trigger": self.trigger,
                "action": self.action.value,
                "severity": self.severity,
                "executed": self.executed,
                "fired": self.fired,
                "action_ok": self.action_ok,
                "reason": self.reason,
                "breach": self.breach.as_dict(),
                "decision": self.decision,
                "steps": self.steps,
                "final_status": self.final_status,
                "evaluations": self.evaluations,
                "drill_id": self.drill_id,
                "audit_id": self.audit_id,
                "exit_code": int(self.exit_code),
            }
        )
        return data


def drillable(policy: Policy) -> list[Trigger]:
    """Rules whose action is a rollback, highest priority first (ties: policy order)."""
    rollbacks = [
        rule
        for rule in policy.rules
        if rule.action not in (Action.DEPLOYMENT_BLOCK, Action.CONTINUE)
    ]
    return sorted(rollbacks, key=lambda rule: -PRIORITY[rule.action])  # stable: keeps ties


def pick_trigger(policy: Policy, name: str | None) -> Trigger:
    """``name``'s rule, or the policy's first rollback trigger by priority."""
    candidates = drillable(policy)
    if name is None:
        if not candidates:
            raise UsageError(
                "the policy has no rollback trigger to drill (security gates and "
                "deployment_block triggers are not drilled); add a metric trigger"
            )
        return candidates[0]
    for rule in candidates:
        if rule.name == name:
            return rule
    accepted = ", ".join(rule.name for rule in candidates) or "none"
    blocked = [rule.name for rule in policy.rules if rule.name == name]
    why = "blocks deployments instead of rolling back" if blocked else "is not in the policy"
    raise UsageError(f"--trigger: {name!r} {why}; accepted: {accepted}")


def needs_baseline(policy: Policy, rule: Trigger) -> bool:
    """Whether the rule's limit or test is relative to the baseline file."""
    if policy.reference_for(rule) == "baseline":
        return True
    return sequential_rules.is_sequential(rule) and (
        sequential_rules.reference(policy, rule) == "baseline"
    )


async def run_drill(
    policy: Policy,
    rule: Trigger,
    *,
    executor: Executor,
    executed: bool,
    baseline: Baseline | None,
    base_dir: Path = Path(),
) -> DrillResult:
    """Breach ``rule`` on a simulated clock and run its action through ``executor``."""
    if baseline is None and needs_baseline(policy, rule):
        raise UsageError(
            f"trigger {rule.name!r} compares with the baseline, and no baseline was loaded: "
            "give --baseline FILE or set baseline.file in the policy"
        )
    provider, breach = build_feed(policy, rule, baseline)
    # The synthetic fault never clears, so a gradual rollback must walk every step:
    # the drill proves the whole path, not the early stop on recovery.
    drill_policy = policy.model_copy(
        update={
            "rollback": policy.rollback.model_copy(
                update={"recovered_below_error_rate_percent": 0.0}
            )
        }
    )
    # A drill pages nobody and writes no watch entries: a rehearsal is not an incident.
    watcher = assemble(
        drill_policy,
        Overrides(
            base_dir=base_dir,
            signals=provider,
            executor=executor,
            notifier=SilentNotifier(),
            audit=MemoryAuditSink(),
            clock=SimulatedClock(time.time()),
            baseline=baseline,
        ),
    )
    evaluations = (
        SEQUENTIAL_EVALUATIONS if sequential_rules.is_sequential(rule) else breach.persistence + 2
    )
    warmup = policy.analysis.warmup or 0.0
    watched = await watcher.run(duration_seconds=warmup + policy.analysis.interval * evaluations)
    return await _judge(rule, watched, executor=executor, executed=executed, breach=breach)


async def _judge(
    rule: Trigger, watched: WatchResult, *, executor: Executor, executed: bool, breach: Breach
) -> DrillResult:
    decision = {
        "outcome": watched.outcome.value,
        "trigger": watched.trigger,
        "action": watched.action.value,
        "reason": watched.reason,
        "severity": watched.severity,
        "evidence": [e for e in watched.evidence if e.get("trigger") == rule.name],
        # what every trigger read at the decision: the drilled one breached, the others healthy
        "triggers": {str(e["trigger"]): e.get("value") for e in watched.evidence},
    }
    result = DrillResult(
        trigger=rule.name,
        action=rule.action,
        severity=rule.severity.value,
        executed=executed,
        fired=False,
        action_ok=False,
        reason="",
        breach=breach,
        decision=decision,
        evaluations=watched.evaluations,
        drill_id=watched.watch_id,
    )
    acted = watched.outcome in (Outcome.ROLLED_BACK, Outcome.FAILED)
    if not (acted and watched.trigger == rule.name and watched.action is rule.action):
        quiet = "dry_run: true, so it never acts; " if rule.dry_run else ""
        result.reason = (
            f"trigger did not fire on a breach: {quiet}the watch ended {watched.outcome.value}"
            f" after {watched.evaluations} evaluations ({watched.reason})"
        )
        return result
    result.fired = True
    done = watched.action_outcome or {}
    result.steps = list(done.get("steps", []))
    try:
        status = await executor.status()
    except RollguardError as exc:
        result.reason = f"{rule.action.value} ran, but the target's status is unreadable: {exc}"
        return result
    result.final_status = {
        "canary_weight": status.canary_weight,
        "canary_state": status.canary_state,
    }
    if status.assumed:
        result.final_status["assumed"] = status.assumed
    if not done.get("ok", False):
        result.reason = f"{rule.action.value} failed: {done.get('detail', '')}"
    elif status.canary_weight != 0:
        result.reason = (
            f"{rule.action.value} completed, but the canary still has "
            f"{status.canary_weight}% of the traffic ({status.canary_state})"
        )
    else:
        result.action_ok = True
        where = "on the real target" if executed else "against a recording executor"
        after = counted(watched.evaluations, "evaluation")
        result.reason = (
            f"{rule.name} fired after {after} and "
            f"{rule.action.value} put all traffic on stable {where} "
            f"(canary at 0%, {status.canary_state})"
        )
        if status.assumed:  # the action succeeded; where traffic went was not read back
            result.reason = (
                f"{rule.name} fired after {after} and "
                f"{rule.action.value} succeeded {where}; the traffic split was not read "
                f"back ({status.assumed})"
            )
    return result


def record_drill(policy: Policy, result: DrillResult, *, audit: AuditSink) -> int:
    """Append the one ``drill`` entry; it is durable in the store when this returns."""
    entry = AuditRecord(
        kind="drill",
        deployment=policy.target.deployment,
        namespace=namespace_of(policy) or "",
        timestamp=now_rfc3339(),
        trigger=result.trigger,
        reason=result.reason,
        severity=result.severity,
        action=result.action.value,
        metrics=_metrics(result.breach),
        outcome="success" if result.passed else "failure",
        policy_digest=policy.digest(),
        evidence=json_safe(
            {
                "drill": True,
                "executed": result.executed,
                "fired": result.fired,
                "breach": result.breach.as_dict(),
                "decision": result.decision,
                "evaluations": result.evaluations,
            }
        ),
        executor_output=json_safe(
            {"executed": result.executed, "steps": result.steps, "final": result.final_status}
        ),
        watch_id=result.drill_id or uuid.uuid4().hex,
    )
    entry_id = audit.append(entry)
    if entry_id == SPOOLED:
        raise AuditError(
            "the audit store is unavailable: the drill entry was kept in the local spool "
            "and will reach the store on the next write; the drill is not on record yet"
        )
    return entry_id


def record_unbuilt_executor(
    policy: Policy, rule: Trigger, error: Exception, *, audit: AuditSink
) -> int:
    """A drill whose real executor could not even be created is a failed drill: on record."""
    entry = AuditRecord(
        kind="drill",
        deployment=policy.target.deployment,
        namespace=namespace_of(policy) or "",
        timestamp=now_rfc3339(),
        trigger=rule.name,
        reason=f"the {policy.target.executor.type} executor could not be created: {error}",
        severity=rule.severity,
        action=rule.action.value,
        outcome="failure",
        policy_digest=policy.digest(),
        evidence={"drill": True, "executed": True, "fired": False},
        executor_output={"executed": True, "steps": [], "error": str(error)},
        watch_id=uuid.uuid4().hex,
    )
    return audit.append(entry)


def _metrics(breach: Breach) -> dict[str, float | None]:
    names = {
        "error_rate_percent": "errorRate",
        "latency_p95_ms": "latency",
        "memory_mb": "memoryUsage",
    }
    found: dict[str, float | None] = {"errorRate": None, "latency": None, "memoryUsage": None}
    key = names.get(breach.signal)
    if key is not None:
        found[key] = breach.value
    return found
