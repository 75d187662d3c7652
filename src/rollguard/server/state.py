"""What ``serve`` knows about each deployment, kept current by the watch loop.

A :class:`DeploymentState` is filled from the watcher's ``on_evaluation``
hook and from the watch's result; the API and the web page only read it.
The timeline keeps changes (a trigger breaching, a decision, an action, an
operator's command), not every healthy evaluation, so it stays short and
readable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rollguard.controller.watch import Outcome, WatchResult
from rollguard.engine.decision import Decision, TriggerResult, Verdict
from rollguard.engine.evaluate import Evaluation
from rollguard.server.history import History
from rollguard.timestamps import rfc3339

TIMELINE_LENGTH = 50


class Status(StrEnum):
    """Where a deployment stands in ``serve``."""

    STARTING = "starting"
    WATCHING = "watching"
    ACTING = "acting"  # a decision was taken; the action is running
    PAUSED = "paused"
    HEALTHY = "healthy"
    ROLLED_BACK = "rolled_back"
    BLOCKED = "blocked"
    INCONCLUSIVE = "inconclusive"
    FAILED = "failed"
    ABORTED = "aborted"
    PROMOTED = "promoted"
    ERROR = "error"  # the watcher itself could not run (provider, executor unusable)

    @property
    def finished(self) -> bool:
        """No watcher runs any more for this deployment."""
        return self not in {Status.STARTING, Status.WATCHING, Status.ACTING, Status.PAUSED}


_OUTCOME_STATUS = {
    Outcome.HEALTHY: Status.HEALTHY,
    Outcome.ROLLED_BACK: Status.ROLLED_BACK,
    Outcome.BLOCKED: Status.BLOCKED,
    Outcome.INCONCLUSIVE: Status.INCONCLUSIVE,
    Outcome.FAILED: Status.FAILED,
    Outcome.PROMOTED: Status.PROMOTED,
}


def iso(at: float) -> str:
    """RFC 3339 UTC for a time in seconds since the epoch."""
    return rfc3339(at)


@dataclass(frozen=True)
class TimelineEntry:
    """One change worth showing: what happened, when, and the evidence."""

    at: float
    kind: str  # status | trigger | decision | action | command | release
    message: str
    trigger: str | None = None
    action: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "kind": self.kind,
            "message": self.message,
            "trigger": self.trigger,
            "action": self.action,
            "evidence": self.evidence,
        }


def _signal_row(result: TriggerResult) -> dict[str, Any]:
    evidence = result.evidence
    return {
        "trigger": result.trigger,
        "signal": evidence.signal,
        "status": result.status.value,
        "value": evidence.value,
        "limit": evidence.limit,
        "reference": evidence.reference,
        "reference_source": evidence.reference_source,
        "method": evidence.method,
        "window_seconds": evidence.window_seconds,
        "requests": evidence.requests,
        "action": result.action.value,
        "reason": evidence.reason,
    }


@dataclass
class DeploymentState:
    """Live state of one watched deployment."""

    name: str
    policy_name: str
    policy_file: str
    policy_digest: str
    status: Status = Status.STARTING
    canary_weight: int | None = None
    canary_state: str = "unknown"
    weight_assumed: str = ""  # why the executor's weight was not read back ("" when it was)
    evaluations: int = 0
    started_at: float | None = None
    updated_at: float | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)
    last_decision: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    release: str | None = None  # the version of the release being watched, when told
    promotion: dict[str, Any] | None = None  # a progressive release's step and evidence
    namespace: str = ""  # the Deployment's Kubernetes namespace, recorded in its audit entries
    history: History = field(default_factory=lambda: History(interval_seconds=5.0))
    timeline: deque[TimelineEntry] = field(default_factory=lambda: deque(maxlen=TIMELINE_LENGTH))
    _statuses: dict[str, str] = field(default_factory=dict, repr=False)
    _last_verdict: tuple[str, str, str | None] | None = field(default=None, repr=False)

    def note(self, entry: TimelineEntry) -> None:
        """Add a timeline entry (the oldest falls off past :data:`TIMELINE_LENGTH`)."""
        self.timeline.append(entry)
        if entry.kind in ("decision", "action"):  # marked on the charts for the last hour
            self.history.event(entry.at, entry.kind, entry.message)

    def read_weight(self, canary_weight: int, canary_state: str, assumed: str, at: float) -> None:
        """Take in the split the executor reports; a change read back is a traffic step."""
        known = self.canary_weight is not None and not self.weight_assumed
        if not assumed and known and canary_weight != self.canary_weight:
            self.history.event(
                at, "weight", f"canary at {canary_weight}%", canary_weight=canary_weight
            )
        self.canary_weight, self.canary_state = canary_weight, canary_state
        self.weight_assumed = assumed

    def set_status(self, status: Status, at: float, message: str = "") -> None:
        """Change the status and say so on the timeline."""
        if status is self.status and not message:
            return
        self.status = status
        self.updated_at = at
        self.note(TimelineEntry(at, "status", message or f"status {status.value}"))

    def ended(self, result: WatchResult, at: float) -> Status:
        """Take in how a watch ended (its action on the timeline); the status it leaves."""
        self.outcome = result.as_dict()
        status = _OUTCOME_STATUS[result.outcome]
        if result.trigger == "operator" and status is Status.ROLLED_BACK:
            status = Status.ABORTED
        if result.outcome not in (Outcome.HEALTHY, Outcome.INCONCLUSIVE):
            done = result.action_outcome or {}
            self.note(
                TimelineEntry(
                    at,
                    "action",
                    f"{result.action.value}: {'done' if done.get('ok', True) else 'failed'}"
                    + (f" ({done['detail']})" if done.get("detail") else ""),
                    trigger=result.trigger,
                    action=result.action.value,
                    evidence=result.evidence,
                )
            )
        self.set_status(status, at, f"{status.value}: {result.reason}")
        return status

    def observe(self, evaluation: Evaluation) -> None:
        """Take in one evaluation: signals, decision, and whatever changed."""
        at = evaluation.at
        self.evaluations += 1
        self.updated_at = at
        self.signals = [_signal_row(result) for result in evaluation.results]
        self.history.add(evaluation)
        for result in evaluation.results:
            before = self._statuses.get(result.trigger)
            now = result.status.value
            if before != now and not (before is None and now == "ok"):
                self.note(
                    TimelineEntry(
                        at,
                        "trigger",
                        f"{result.trigger}: {before or 'new'} → {now}",
                        trigger=result.trigger,
                        action=result.action.value,
                        evidence=[result.evidence.as_dict()],
                    )
                )
            self._statuses[result.trigger] = now
        self._observe_decision(evaluation.decision, at)

    def _observe_decision(self, decision: Decision, at: float) -> None:
        self.last_decision = {**decision.as_dict(), "at": iso(at)}
        key = (decision.verdict.value, decision.action.value, decision.trigger)
        if key != self._last_verdict and decision.verdict is not Verdict.CONTINUE:
            self.note(
                TimelineEntry(
                    at,
                    "decision",
                    # an inconclusive verdict takes no action: it is not a "continue"
                    f"{_verdict_word(decision)}: {decision.reason}",
                    trigger=decision.trigger,
                    action=decision.action.value,
                    evidence=[item.as_dict() for item in decision.evidence],
                )
            )
        self._last_verdict = key
        if decision.verdict is Verdict.ACT:
            self.set_status(Status.ACTING, at, f"acting: {decision.action.value}")

    def summary(self) -> dict[str, Any]:
        """The short form listed by ``GET /api/v1/deployments``."""
        decision = self.last_decision or {}
        return {
            "name": self.name,
            "policy": self.policy_name,
            "policy_file": self.policy_file,
            "status": self.status.value,
            "canary_weight": self.canary_weight,
            "evaluations": self.evaluations,
            "updated_at": iso(self.updated_at) if self.updated_at is not None else None,
            "last_action": decision.get("action"),
            "last_trigger": decision.get("trigger"),
        }

    def detail(self) -> dict[str, Any]:
        """The full form of ``GET /api/v1/deployments/{name}``."""
        return {
            **self.summary(),
            "policy_digest": self.policy_digest,
            "canary_state": self.canary_state,
            "weights": _weights(self.canary_weight, self.weight_assumed),
            "started_at": iso(self.started_at) if self.started_at is not None else None,
            "signals": self.signals,
            "last_decision": self.last_decision,
            "outcome": self.outcome,
            "error": self.error,
            "release": self.release,
            "promotion": self.promotion,
            "timeline": [entry.as_dict() for entry in reversed(self.timeline)],
        }


def _verdict_word(decision: Decision) -> str:
    if decision.verdict is Verdict.INCONCLUSIVE:
        return Verdict.INCONCLUSIVE.value
    return decision.action.value


def _weights(canary_weight: int | None, assumed: str) -> dict[str, int | str | None]:
    if canary_weight is None:
        return {"stable": None, "canary": None, "assumed": assumed or None}
    return {"stable": 100 - canary_weight, "canary": canary_weight, "assumed": assumed or None}


@dataclass(frozen=True)
class PolicyFailure:
    """A policy file in the watched folder that could not be used, located."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "location": f"{self.file}:{self.line}:{self.column}",
        }
