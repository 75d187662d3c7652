"""The compliance report's numbers, computed from audit entries (pure, no I/O).

Definitions (docs/report.md):

- a *deployment* is a watch: one ``deployment_start`` entry (its ``watch_id``);
- a *rollback event* is an ``action_result`` whose action is a rollback
  (immediate, gradual, scaling, isolation); a *failed rollback* is one whose
  outcome is ``failure``; deployment blocks are counted apart: a ``gate``
  entry whose outcome is ``blocked``, or a watch's ``deployment_block`` result;
- a period with no entries passes nothing: its checklist lines are unknown (❔),
  and an empty trail is never "complete" (its line reads "Audit trail empty");
- *time to detect* is from the watch's start to its ``decision`` entry (how long
  the bad version served before rollguard decided); *time to recover* is from
  the decision to the ``action_result`` (until traffic was back on stable);
- p95 uses the nearest-rank method.

Every checklist line is computed from these numbers and from ``verify``; none
is a constant.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rollguard.reports.views import EntryView, VerifyView
from rollguard.timestamps import parse_rfc3339
from rollguard.wording import counted

ROLLBACK_ACTIONS = frozenset(
    {
        "immediate_rollback",
        "gradual_rollback_with_traffic_shifting",
        "scaling_and_rollback",
        "traffic_isolation_and_rollback",
    }
)


@dataclass(frozen=True)
class Stats:
    """Mean and 95th percentile of a list of durations, in seconds."""

    count: int
    mean: float | None
    p95: float | None


@dataclass(frozen=True)
class CheckItem:
    """One checklist line: its status (pass, fail, unknown) and the evidence behind it."""

    name: str
    status: str
    evidence: str


@dataclass(frozen=True)
class RollbackEvent:
    """One rollback, as the report lists it."""

    entry_id: int
    timestamp: str
    deployment: str
    trigger: str
    severity: str
    action: str
    outcome: str
    detect_seconds: float | None
    recover_seconds: float | None
    affected_users: int
    #: The triggering signal's evidence at the decision (value, limit, reference), if stored.
    why: Mapping[str, object] | None = None
    #: The Deployment's Kubernetes namespace; "" where it has none (or before it was recorded).
    namespace: str = ""

    @property
    def target(self) -> str:
        """The deployment as a person names it: ``namespace/name``, or the bare name."""
        return f"{self.namespace}/{self.deployment}" if self.namespace else self.deployment


@dataclass(frozen=True)
class ComplianceReport:
    """Everything the Markdown and HTML renderings show."""

    period_start: str
    period_end: str
    total_deployments: int
    rollback_events: int
    failed_rollbacks: int
    blocked_deployments: int
    rollback_rate_percent: float | None
    by_trigger: dict[str, int]
    by_severity: dict[str, int]
    by_action: dict[str, int]
    time_to_detect: Stats
    time_to_recover: Stats
    affected_users: int
    rollbacks_per_day: dict[str, int]
    events: list[RollbackEvent]
    verify: VerifyView
    checklist: list[CheckItem] = field(default_factory=list)


def compute(
    entries: Iterable[EntryView], *, period_start: str, period_end: str, verify: VerifyView
) -> ComplianceReport:
    """The report for the entries of one period (already filtered by time)."""
    starts: dict[str, float] = {}
    ends: set[str] = set()
    decisions: dict[str, float] = {}
    whys: dict[str, Mapping[str, object]] = {}
    intents: set[str] = set()
    resolved: set[str] = set()
    drills_ok = 0
    events: list[RollbackEvent] = []
    blocked = 0
    seen = 0
    for entry in entries:
        seen += 1
        record, watch = entry.record, entry.record.watch_id
        at = _seconds(record.timestamp)
        if record.kind == "deployment_start":
            starts.setdefault(watch, at)
        elif record.kind == "deployment_end":
            ends.add(watch)
        elif record.kind == "decision":
            decisions.setdefault(watch, at)
            if (why := _why(record.evidence, record.trigger)) is not None:
                whys.setdefault(watch, why)
        elif record.kind == "action_intent":
            intents.add(watch)
        elif record.kind in ("action_result", "recovery"):
            resolved.add(watch)
        if record.kind == "drill" and record.outcome == "success":
            drills_ok += 1
        if record.kind == "gate" and record.outcome == "blocked":
            blocked += 1  # `rollguard gate` blocks before any watch starts
        if record.kind != "action_result":
            continue
        if record.action == "deployment_block":
            blocked += 1
        elif record.action in ROLLBACK_ACTIONS:
            decided = decisions.get(watch)
            started = starts.get(watch)
            events.append(
                RollbackEvent(
                    entry_id=entry.id,
                    timestamp=record.timestamp,
                    deployment=record.deployment,
                    namespace=record.namespace,
                    trigger=record.trigger or "(none)",
                    severity=record.severity,
                    action=record.action,
                    outcome=record.outcome,
                    detect_seconds=_span(started, decided),
                    recover_seconds=_span(decided, at),
                    affected_users=record.affected_users,
                    why=whys.get(watch),
                )
            )
    total = len(starts)
    failed = sum(1 for event in events if event.outcome != "success")
    report = ComplianceReport(
        period_start=period_start,
        period_end=period_end,
        total_deployments=total,
        rollback_events=len(events),
        failed_rollbacks=failed,
        blocked_deployments=blocked,
        rollback_rate_percent=round(100.0 * len(events) / total, 2) if total else None,
        by_trigger=dict(Counter(e.trigger for e in events).most_common()),
        by_severity=dict(Counter(e.severity for e in events).most_common()),
        by_action=dict(Counter(e.action for e in events).most_common()),
        time_to_detect=stats([e.detect_seconds for e in events if e.detect_seconds is not None]),
        time_to_recover=stats([e.recover_seconds for e in events if e.recover_seconds is not None]),
        affected_users=sum(e.affected_users for e in events),
        rollbacks_per_day=dict(sorted(Counter(e.timestamp[:10] for e in events).items())),
        events=events,
        verify=verify,
    )
    succeeded = len(events) - failed + drills_ok
    open_actions = sorted(intents - resolved)
    unended = sorted(set(starts) - ends)
    recorded = seen > 0 or None  # nothing recorded in the period: nothing passes
    report.checklist.extend(
        [
            # An empty trail proves nothing: never a green "complete", not even in its name.
            _item(
                "Audit trail complete" if verify.entries else "Audit trail empty",
                verify.ok if verify.entries else None,
                verify.message,
            ),
            _item(
                "Automated monitoring active",
                total > 0,
                f"{counted(total, 'watched deployment')} in the period",
            ),
            _item(
                "Rollback triggers functional",
                succeeded > 0 if (events or drills_ok) else None,
                f"{counted(len(events) - failed, 'successful rollback')} and "
                f"{counted(drills_ok, 'successful drill')}",
            ),
            _item(
                "No failed rollbacks", recorded and failed == 0, counted(failed, "failed rollback")
            ),
            _item(
                "Every action completed or recovered",
                recorded and not open_actions,
                f"{counted(len(open_actions), 'action')} started without a recorded result",
            ),
            _item(
                "Every watch recorded its outcome",
                not unended if total else None,
                f"{len(unended)} of {counted(total, 'watch', 'watches')} "
                "without a deployment_end entry",
            ),
        ]
    )
    return report


def stats(values: list[float]) -> Stats:
    """Mean and nearest-rank p95; ``None`` for an empty list."""
    if not values:
        return Stats(count=0, mean=None, p95=None)
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return Stats(count=len(ordered), mean=sum(ordered) / len(ordered), p95=ordered[rank - 1])


def _item(name: str, ok: bool | None, evidence: str) -> CheckItem:
    status = "unknown" if ok is None else "pass" if ok else "fail"
    return CheckItem(name=name, status=status, evidence=evidence)


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def _seconds(timestamp: str) -> float:
    return parse_rfc3339(timestamp).timestamp()


def _why(evidence: Mapping[str, object], trigger: str | None) -> Mapping[str, object] | None:
    """The deciding trigger's item of a decision's stored evidence (None when absent)."""
    items = evidence.get("evidence")
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, Mapping) and item.get("trigger") == trigger:
            return item
    return None
