"""What a RollbackPolicy's ``status`` says, built from the watch loop's results.

Pure functions: the controller merges their output into the status
subresource (:meth:`rollguard.operator.kube.ControllerApi.patch_status`).
"""

from __future__ import annotations

from typing import Any

from rollguard.controller.watch import Outcome, WatchResult
from rollguard.engine.decision import Decision, Evidence
from rollguard.operator.crd import Phase
from rollguard.timestamps import now_rfc3339, rfc3339

Obj = dict[str, Any]

#: The phase a finished analysis leaves the policy in.
PHASES: dict[Outcome, str] = {
    Outcome.HEALTHY: Phase.IDLE,
    Outcome.PROMOTED: Phase.IDLE,
    Outcome.ROLLED_BACK: Phase.ROLLED_BACK,
    Outcome.BLOCKED: Phase.BLOCKED,
    Outcome.INCONCLUSIVE: Phase.INCONCLUSIVE,
    Outcome.FAILED: Phase.FAILED,
}
#: Phases that end the analysis of a revision: it is not analysed again.
FINISHED = frozenset(PHASES.values())


def condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> Obj:
    """A ``metav1.Condition``."""
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:32768],
        "observedGeneration": generation,
        "lastTransitionTime": now_rfc3339("seconds"),
    }


def merge_conditions(existing: list[Obj], changes: list[Obj]) -> list[Obj]:
    """``existing`` with ``changes`` merged in by ``type``, as ``meta.SetStatusCondition``:

    a new type is added; a known type takes the new reason, message and
    observedGeneration, and its ``lastTransitionTime`` changes only when its
    ``status`` does. Types not in ``changes`` stay as they were, in their order.
    """
    merged = [dict(found) for found in existing]
    for change in changes:
        same = next((found for found in merged if found.get("type") == change["type"]), None)
        if same is None:
            merged.append({"lastTransitionTime": now_rfc3339("seconds"), **change})
            continue
        transition = same.get("lastTransitionTime")
        if same.get("status") != change["status"] or not transition:
            transition = change.get("lastTransitionTime") or now_rfc3339("seconds")
        same.update(change, lastTransitionTime=transition)
    return merged


def evidence_summary(evidence: tuple[Evidence, ...] | list[dict[str, Any]]) -> list[str]:
    """One line per trigger compared: ``error_rate: 12.5 > 5 (threshold)``."""
    lines = []
    for item in evidence:
        found = item if isinstance(item, dict) else item.as_dict()
        value, limit = found.get("value"), found.get("limit")
        shown = "no data" if value is None else f"{value:.4g}"
        bound = "" if limit is None else f" vs limit {limit:.4g}"
        lines.append(f"{found.get('trigger')}: {shown}{bound} ({found.get('method', 'threshold')})")
    return lines[:16]


def decided(decision: Decision, at: float) -> Obj:
    """``status.decision`` for an engine decision."""
    return {
        "action": decision.action.value,
        "trigger": decision.trigger,
        "reason": decision.reason[:1024],
        "severity": decision.severity.value,
        "at": rfc3339(at, "seconds"),
        "evidence": evidence_summary(decision.evidence),
    }


def signature(decision: Decision) -> tuple[str, ...]:
    """What a decision says, for telling a new one from a repeat: its verdict, action,
    trigger and severity, not its measured values nor its time (they change every time)."""
    return (
        decision.verdict.value,
        decision.action.value,
        decision.trigger or "",
        decision.severity.value,
    )


def finished(result: WatchResult) -> Obj:
    """The status fields a finished analysis sets."""
    return {
        "phase": PHASES[result.outcome],
        "decision": {
            "action": result.action.value,
            "trigger": result.trigger,
            "reason": result.reason[:1024],
            "severity": result.severity,
            "at": rfc3339(result.decided_at or result.ended_at, "seconds"),
            "evidence": evidence_summary(result.evidence),
        },
        "evaluations": result.evaluations,
        "lastEvaluation": rfc3339(result.ended_at, "seconds"),
    }


def revision_of(deployment: Obj) -> str:
    """A Deployment's revision (the deployment controller's annotation), "" before the first."""
    annotations = deployment.get("metadata", {}).get("annotations") or {}
    return str(annotations.get("deployment.kubernetes.io/revision", ""))
