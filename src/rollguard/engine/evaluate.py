"""The decision engine: (policy, measurements, baseline, state, now) → evaluation.

Pure and deterministic, so live watching, backtesting and tests share it.
A trigger breaches when the canary's value is strictly above its limit (the
usual ``errorRate > 5``); it fires after ``persistence`` consecutive breaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from rollguard.baseline import Baseline
from rollguard.engine import sequential_rules
from rollguard.engine.decision import (
    CONTINUE,
    Decision,
    Evidence,
    TriggerResult,
    TriggerStatus,
    Verdict,
)
from rollguard.engine.state import EngineState, TriggerState
from rollguard.policy.actions import PRIORITY, Action, Severity
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger
from rollguard.policy.units import Comparison
from rollguard.signals import AnySignal, Measurement, Phase, Query, Signal, Version, is_error_ratio
from rollguard.wording import counted

#: Signals judged on request counts: too few requests means "wait", not "healthy".
TRAFFIC_SIGNALS = frozenset(
    {
        Signal.ERROR_RATE_PERCENT,
        Signal.LATENCY_P95_MS,
        Signal.LATENCY_P50_MS,
        Signal.LATENCY_MEAN_MS,
    }
)


def judged_on_requests(signal: AnySignal) -> bool:
    """Whether too few requests behind a value means "wait" (ratios and latencies)."""
    return signal in TRAFFIC_SIGNALS or is_error_ratio(signal)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation's outcome: the decision, every trigger's result, the next state."""

    at: float
    decision: Decision
    results: tuple[TriggerResult, ...]
    state: EngineState


def canary_query(rule: Trigger) -> Query:
    """The query measuring a rule's signal on the canary."""
    return Query(rule.signal, Version.CANARY, rule.window_seconds, rule.query)


#: The same query on the stable version, for side-by-side comparison.
stable_query = sequential_rules.stable_window


def required_queries(policy: Policy) -> list[Query]:
    """Every query the policy's rules need at each evaluation, without duplicates."""
    wanted: dict[Query, None] = {}
    for rule in policy.rules:
        wanted[canary_query(rule)] = None
        if policy.reference_for(rule) == "stable":
            wanted[stable_query(rule)] = None
    wanted.update(dict.fromkeys(sequential_rules.queries(policy)))
    return list(wanted)


def evaluate(
    policy: Policy,
    measurements: Mapping[Query, Measurement],
    *,
    baseline: Baseline | None,
    state: EngineState,
    now: float,
) -> Evaluation:
    """Judge every rule, then pick the one decision to act on."""
    results: list[TriggerResult] = []
    updates: dict[str, TriggerState] = {}
    for rule in policy.rules:
        result, updates[rule.name] = judge(
            policy, rule, measurements, baseline=baseline, state=state.of(rule.name), now=now
        )
        results.append(result)
    return Evaluation(
        at=now,
        decision=decide(policy, results),
        results=tuple(results),
        state=state.with_triggers(updates),
    )


def judge(
    policy: Policy,
    rule: Trigger,
    measurements: Mapping[Query, Measurement],
    *,
    baseline: Baseline | None,
    state: TriggerState,
    now: float,
) -> tuple[TriggerResult, TriggerState]:
    """One rule's verdict at ``now`` and its updated counters."""
    if sequential_rules.is_sequential(rule):  # docs/detection.md
        return sequential_rules.judge(
            policy,
            rule,
            measurements,
            baseline=baseline,
            state=state,
            now=now,
            threshold=judge_threshold,
        )
    return judge_threshold(policy, rule, measurements, baseline=baseline, state=state, now=now)


def judge_threshold(
    policy: Policy,
    rule: Trigger,
    measurements: Mapping[Query, Measurement],
    *,
    baseline: Baseline | None,
    state: TriggerState,
    now: float,
) -> tuple[TriggerResult, TriggerState]:
    """The rule's fixed-window threshold verdict."""
    canary = measurements.get(canary_query(rule))
    if canary is None or canary.value is None:
        reason = canary.reason if canary is not None else "not measured"
        return _no_data(policy, rule, state, _evidence(rule, reason=f"canary: {reason}"))
    value, requests = canary.value, canary.requests

    min_requests = policy.analysis.min_requests if rule.min_requests is None else rule.min_requests
    if judged_on_requests(rule.signal) and requests is not None and requests < min_requests:
        reason = f"{requests:g} requests in the window, fewer than {min_requests}"
        evidence = _evidence(rule, value=value, requests=requests, reason=reason)
        waiting = TriggerState(
            state.breaches, state.breach_since, 0, state.judged, state.sequential
        )
        return _result(rule, TriggerStatus.WAITING, evidence), waiting

    reference, source, problem = _reference(policy, rule, measurements, baseline)
    if problem:
        evidence = _evidence(rule, value=value, requests=requests, reason=problem)
        return _no_data(policy, rule, state, evidence)
    limit = rule.threshold.limit(reference)

    def evidence_with(reason: str) -> Evidence:
        return _evidence(
            rule,
            value=value,
            requests=requests,
            limit=limit,
            reference=reference,
            source=source,
            reason=reason,
        )

    if value <= limit:
        healthy = TriggerState(0, None, 0, state.judged + 1, state.sequential)
        return _result(rule, TriggerStatus.OK, evidence_with("")), healthy

    breaches = state.breaches + 1
    since = state.breach_since if state.breach_since is not None else now
    breached = TriggerState(breaches, since, 0, state.judged + 1, state.sequential)
    reason = (
        f"{rule.signal.value} {value:.4g} > limit {limit:.4g} "
        f"({_describe(rule, reference, source)}) over {rule.window_seconds:g}s, "
        f"{counted(breaches, 'evaluation')} in a row"
    )
    persistence = rule.persistence or policy.analysis.persistence
    if breaches < persistence:
        return _result(rule, TriggerStatus.BREACHING, evidence_with(reason)), breached
    status = TriggerStatus.DRY_RUN if rule.dry_run else TriggerStatus.FIRING
    return _result(rule, status, evidence_with(reason)), breached


def _evidence(
    rule: Trigger,
    *,
    value: float | None = None,
    requests: float | None = None,
    limit: float | None = None,
    reference: float | None = None,
    source: str | None = None,
    reason: str = "",
) -> Evidence:
    return Evidence(
        trigger=rule.name,
        signal=rule.signal.value,
        value=value,
        limit=limit,
        threshold=rule.threshold.value,
        comparison=rule.threshold.comparison.value,
        window_seconds=rule.window_seconds,
        reference=reference,
        reference_source=source,
        requests=requests,
        reason=reason,
    )


def decide(policy: Policy, results: tuple[TriggerResult, ...] | list[TriggerResult]) -> Decision:
    """The highest-priority firing trigger wins; ties go to the first in the policy."""
    firing = [r for r in results if r.status is TriggerStatus.FIRING]
    if firing:
        winner = max(firing, key=lambda r: PRIORITY[r.action])  # max keeps the first of ties
        return Decision(
            verdict=Verdict.ACT,
            action=winner.action,
            trigger=winner.trigger,
            reason=winner.evidence.reason,
            severity=winner.severity,
            notification=winner.notification,
            evidence=tuple(r.evidence for r in results),
        )
    stuck = [r for r in results if r.status is TriggerStatus.INCONCLUSIVE]
    if stuck:
        first = stuck[0]
        reason = f"no data for {policy.analysis.no_data_limit} evaluations: {first.evidence.reason}"
        if policy.analysis.inconclusive_action == "immediate_rollback":
            return Decision(
                verdict=Verdict.ACT,
                action=Action.IMMEDIATE_ROLLBACK,
                trigger=first.trigger,
                reason=reason,
                severity=Severity.CRITICAL,
                notification=first.notification,
                evidence=tuple(r.evidence for r in results),
            )
        return Decision(
            verdict=Verdict.INCONCLUSIVE,
            action=Action.CONTINUE,
            trigger=first.trigger,
            reason=reason,
            severity=Severity.WARNING,
            evidence=tuple(r.evidence for r in results),
        )
    return replace(CONTINUE, evidence=tuple(r.evidence for r in results))


def _result(rule: Trigger, status: TriggerStatus, evidence: Evidence) -> TriggerResult:
    return TriggerResult(
        trigger=rule.name,
        status=status,
        action=rule.action,
        severity=rule.severity,
        evidence=evidence,
        notification=rule.notification,
    )


def _no_data(
    policy: Policy, rule: Trigger, state: TriggerState, evidence: Evidence
) -> tuple[TriggerResult, TriggerState]:
    count = state.no_data + 1
    counted = TriggerState(
        state.breaches, state.breach_since, count, state.judged, state.sequential
    )
    status = (
        TriggerStatus.INCONCLUSIVE
        if count >= policy.analysis.no_data_limit
        else TriggerStatus.NO_DATA
    )
    return _result(rule, status, evidence), counted


def _reference(
    policy: Policy,
    rule: Trigger,
    measurements: Mapping[Query, Measurement],
    baseline: Baseline | None,
) -> tuple[float | None, str | None, str]:
    """(reference value, its source, problem) for relative rules; problem is '' when usable."""
    source = policy.reference_for(rule)
    if source is None:
        return None, None, ""
    if source == "baseline":
        if baseline is None:
            return None, source, "no baseline loaded"
        value = baseline.value_for(rule.signal)
        if value is None:
            return None, source, f"the baseline has no value for {rule.signal.value}"
        return value, source, ""
    stable = measurements.get(stable_query(rule))
    if stable is None or stable.phase is not Phase.OK or stable.value is None:
        return None, source, f"stable: {stable.reason if stable else 'not measured'}"
    return stable.value, source, ""


def _describe(rule: Trigger, reference: float | None, source: str | None) -> str:
    threshold = rule.threshold.value
    if rule.threshold.comparison is Comparison.ABOVE:
        return f"threshold {threshold:g}"
    sign = "%" if rule.threshold.comparison is Comparison.INCREASE_PERCENT else ""
    return f"{source} {reference:.4g} + {threshold:g}{sign}"
