"""What a demo run found, for people and for machines.

Users' error rates come from the load generator (what users really got back,
connection failures included), split at the fault and at the recovery:
*before* is from the start of the load to the fault, *during* from the fault
to the moment traffic was fully back on stable, *after* from then to the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollguard.controller import WatchResult
from rollguard.demo.loadgen import LoadReport, error_rate_percent
from rollguard.demo.scenarios import Scenario, scaling_lines
from rollguard.timestamps import rfc3339


@dataclass(frozen=True)
class UsersView:
    """The error rate (and p95 latency) users saw in each phase of the demo."""

    error_rate_before: float | None
    error_rate_during: float | None
    error_rate_after: float | None
    p95_ms_before: float | None
    p95_ms_during: float | None
    p95_ms_after: float | None
    stable_error_rate: float | None  # every request stable served: the reference for "after"
    canary_requests_after: int  # requests the canary served after recovery (expected: 0)
    requests: int


def users_view(report: LoadReport, *, fault_at: float, recovered_at: float | None) -> UsersView:
    """Split the load report at the fault and at the recovery."""
    after = report.between(since=recovered_at) if recovered_at is not None else []
    return UsersView(
        error_rate_before=report.error_rate_percent(until=fault_at),
        error_rate_during=report.error_rate_percent(since=fault_at, until=recovered_at),
        error_rate_after=error_rate_percent(after) if recovered_at is not None else None,
        p95_ms_before=report.latency_p95_ms(until=fault_at),
        p95_ms_during=report.latency_p95_ms(since=fault_at, until=recovered_at),
        p95_ms_after=report.latency_p95_ms(since=recovered_at) if recovered_at else None,
        stable_error_rate=error_rate_percent(s for s in report.samples if s.upstream == "stable"),
        canary_requests_after=sum(sample.upstream == "canary" for sample in after),
        requests=len(report.samples),
    )


@dataclass(frozen=True)
class DemoResult:
    """One demo run: the watch's result, the timeline and the users' view."""

    scenario: Scenario
    watch: WatchResult
    began_at: float
    warm_at: float | None
    fault_at: float | None
    recovered_at: float | None
    users: UsersView
    canary_weight: int
    canary_state: str
    time_scale: float
    promotion_steps: tuple[dict[str, Any], ...] = ()  # each traffic step of a progressive release

    @property
    def promoted_seconds(self) -> float | None:
        """From the first step to all traffic on the canary, when the release got there."""
        steps = self.promotion_steps
        if not steps or steps[-1]["canary_weight"] != 100:
            return None
        return float(steps[-1]["at"] - steps[0]["at"])

    @property
    def detected_at(self) -> float | None:
        return self.watch.decided_at

    @property
    def detect_seconds(self) -> float | None:
        """From the fault to the decision."""
        if self.detected_at is None or self.fault_at is None:
            return None
        return self.detected_at - self.fault_at

    @property
    def recover_seconds(self) -> float | None:
        """From the fault to all traffic on stable."""
        if self.recovered_at is None or self.fault_at is None:
            return None
        return self.recovered_at - self.fault_at

    @property
    def trigger_evidence(self) -> dict[str, Any] | None:
        """The evidence of the trigger that fired, if one did."""
        for item in self.watch.evidence:
            if item.get("trigger") == self.watch.trigger:
                return item
        return None

    def as_dict(self) -> dict[str, Any]:
        """The final JSON object of ``rollguard demo --output json``."""
        users = self.users
        return {
            "type": "result",
            "scenario": self.scenario.name,
            "outcome": self.watch.outcome.value,
            "exit_code": int(self.watch.outcome.exit_code),
            "action": self.watch.action.value,
            "trigger": self.watch.trigger,
            "expected_trigger": self.scenario.trigger,
            "reason": self.watch.reason,
            "fault": self.scenario.fault,
            "fault_at": iso(self.fault_at),
            "detected_at": iso(self.detected_at),
            "recovered_at": iso(self.recovered_at),
            "detect_seconds": _round(self.detect_seconds),
            "recover_seconds": _round(self.recover_seconds),
            "users_error_rate_before": _round(users.error_rate_before),
            "users_error_rate_during": _round(users.error_rate_during),
            "users_error_rate_after": _round(users.error_rate_after),
            "users_p95_ms_before": _round(users.p95_ms_before),
            "users_p95_ms_during": _round(users.p95_ms_during),
            "users_p95_ms_after": _round(users.p95_ms_after),
            "stable_error_rate": _round(users.stable_error_rate),
            "canary_requests_after": users.canary_requests_after,
            "requests": users.requests,
            "canary_weight": self.canary_weight,
            "canary_state": self.canary_state,
            "trigger_evidence": self.trigger_evidence,
            "evidence": self.watch.evidence,
            "action_outcome": self.watch.action_outcome,
            "time_scale": self.time_scale,
            "scaling": scaling_lines(self.time_scale, progressive=self.scenario.progressive),
            "started_at": iso(self.began_at),
            "promotion_steps": [
                {**step, "at": iso(step["at"]), "seconds": _round(step["at"] - self.began_at)}
                for step in self.promotion_steps
            ],
            "promoted_seconds": _round(self.promoted_seconds),
        }


def iso(at: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds, or None."""
    if at is None:
        return None
    return rfc3339(at, "milliseconds")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
