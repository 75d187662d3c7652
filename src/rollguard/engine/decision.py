"""What the engine returns: per-trigger results and one decision.

Every value here is immutable and JSON-ready through ``as_dict`` so the same
objects feed the live table, the JSON output, the audit trail and the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from rollguard.policy.actions import Action, Severity


class TriggerStatus(StrEnum):
    """Where one trigger stands after an evaluation."""

    OK = "ok"  # measured, within its threshold
    BREACHING = "breaching"  # over the threshold, persistence not yet met
    FIRING = "firing"  # over the threshold long enough: its action is wanted
    DRY_RUN = "dry_run"  # would fire, but the trigger is a dry run
    WAITING = "waiting"  # too few requests to judge yet
    NO_DATA = "no_data"  # no usable measurement this time
    INCONCLUSIVE = "inconclusive"  # no data for ``no_data_limit`` evaluations in a row


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything one trigger compared: enough to reproduce the verdict by hand."""

    trigger: str
    signal: str
    value: float | None  # the canary's measured value
    limit: float | None  # the value above which the trigger breaches
    threshold: float  # as written in the policy (e.g. 30 for "30% increase")
    comparison: str
    window_seconds: float
    reference: float | None = None  # the baseline's or stable's value for relative triggers
    reference_source: str | None = None  # "baseline" or "stable"
    requests: float | None = None
    method: str = "threshold"  # or "sequential"
    statistic: Mapping[str, float] = field(default_factory=dict)  # e.g. e-value, bound
    reason: str = ""
    # why a sequential trigger's test could not be fed, so its threshold rule judged instead
    fallback: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """One trigger's verdict at one evaluation."""

    trigger: str
    status: TriggerStatus
    action: Action
    severity: Severity
    evidence: Evidence
    notification: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "status": self.status.value,
            "action": self.action.value,
            "severity": self.severity.value,
            "notification": self.notification,
            "evidence": self.evidence.as_dict(),
        }


class Verdict(StrEnum):
    """The decision's kind, before any action is executed."""

    CONTINUE = "continue"
    ACT = "act"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Decision:
    """The one thing to do now, and why."""

    verdict: Verdict
    action: Action
    trigger: str | None
    reason: str
    severity: Severity
    notification: str | None = None
    evidence: tuple[Evidence, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "action": self.action.value,
            "trigger": self.trigger,
            "reason": self.reason,
            "severity": self.severity.value,
            "notification": self.notification,
            "evidence": [item.as_dict() for item in self.evidence],
        }


CONTINUE = Decision(
    verdict=Verdict.CONTINUE,
    action=Action.CONTINUE,
    trigger=None,
    reason="all_metrics_healthy",
    severity=Severity.INFO,
)
