"""Sequential detection inside the engine: what to measure, and one trigger's verdict.

A trigger whose ``detection.method`` is ``sequential`` or ``both`` is fed,
every analysis interval, the interval's request and error counts (error-rate
triggers) or histogram bucket counts (latency triggers) of the canary and of
its reference: the stable version measured over the same interval, or the
baseline file. Its e-process lives in ``TriggerState.sequential``.

With ``both``, the threshold rule and the sequential test run side by side
and the first to fire wins. The policy's sequential triggers share its
false-rollback budget: each tests at its ``alpha`` divided by their number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Literal, TypedDict

from rollguard.baseline import Baseline
from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as seq_latency
from rollguard.engine.decision import Evidence, TriggerResult, TriggerStatus
from rollguard.engine.state import TriggerState
from rollguard.policy import sources
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger, supports_sequential
from rollguard.signals import (
    AnySignal,
    CustomSignal,
    Measurement,
    Phase,
    Query,
    Signal,
    Version,
    is_error_ratio,
)


def count_inputs(signal: AnySignal) -> tuple[AnySignal, AnySignal]:
    """The (requests, errors) counts an error-type signal's test is fed per interval."""
    if isinstance(signal, CustomSignal):
        return signal.counts()
    return (Signal.REQUESTS, Signal.ERRORS)


def _counts(signal: AnySignal) -> tuple[AnySignal, ...]:
    """The per-interval inputs of a signal's test: (requests, errors), or the buckets."""
    if is_error_ratio(signal):
        return count_inputs(signal)
    return (Signal.LATENCY_BUCKETS,)


Judge = Callable[..., tuple[TriggerResult, TriggerState]]


class _Settings(TypedDict):
    """The keyword arguments every sequential test takes from the rule."""

    alpha: float
    tolerance_ratio: float
    tolerance_points: float
    horizon: int | None


def is_sequential(rule: Trigger) -> bool:
    """Whether the rule runs a sequential test (alone or next to its threshold)."""
    return rule.detection.method in ("sequential", "both")


def reference(policy: Policy, rule: Trigger) -> Literal["baseline", "stable"]:
    """What the test compares the canary with: the rule's reference, else the policy's."""
    return policy.reference_for(rule) or policy.baseline.compare_with


def inputs(policy: Policy, rule: Trigger) -> list[Query]:
    """The per-interval count queries the rule's test is fed (none without a test)."""
    if not is_sequential(rule) or not supports_sequential(rule.signal):
        return []
    interval = policy.analysis.interval
    versions = [Version.CANARY]
    if reference(policy, rule) == "stable":
        versions.append(Version.STABLE)
    signals = _counts(rule.signal)
    return [Query(signal, version, interval) for version in versions for signal in signals]


def queries(policy: Policy) -> list[Query]:
    """The per-interval count queries every sequential rule needs, and its guard's."""
    wanted: dict[Query, None] = {}
    for rule in policy.rules:
        wanted.update(dict.fromkeys(inputs(policy, rule)))
        if guards_fallback(policy, rule):
            wanted[stable_window(rule)] = None
    return list(wanted)


def guards_fallback(policy: Policy, rule: Trigger) -> bool:
    """Whether the rule's threshold fallback must also find the canary worse than stable.

    A test against stable never blames the canary for what hits both versions;
    its fallback, an absolute error-rate threshold, would (an incident on both
    during a scrape gap). So that threshold fires only when the canary is also
    above the test's tolerance of stable over the same window.
    """
    return (
        is_sequential(rule)
        and is_error_ratio(rule.signal)
        and reference(policy, rule) == "stable"
        and rule.threshold.reference is None
    )


def stable_window(rule: Trigger) -> Query:
    """The rule's own signal and window, measured on the stable version."""
    return Query(rule.signal, Version.STABLE, rule.window_seconds, rule.query)


def fallbacks(
    policy: Policy,
    *,
    baseline: Baseline | None,
    cannot_answer: Callable[[Query], str] | None = None,
) -> dict[str, str]:
    """Sequential rules whose test can never be fed, each with why: their threshold judges.

    Known before the first evaluation: a signal without a test, a baseline
    reference with no baseline, and inputs the metrics source can never answer
    (``cannot_answer`` returns why, or "" when it may). Other gaps show up per
    evaluation, in the evidence.
    """
    found: dict[str, str] = {}
    source = policy.metrics
    if cannot_answer is None and isinstance(source, sources.QuerySource):

        def cannot_answer(query: Query) -> str:
            return sources.unanswered(source, query.signal) or ""

    for rule in policy.rules:
        if not is_sequential(rule):
            continue
        if not supports_sequential(rule.signal):
            found[rule.name] = f"no sequential test for {rule.signal.value}"
        elif reference(policy, rule) == "baseline" and baseline is None:
            found[rule.name] = "no baseline loaded"
        elif cannot_answer is not None:
            for query in inputs(policy, rule):
                why = cannot_answer(query)
                if why:
                    found[rule.name] = f"{query.version.value} {query.signal.value}: {why}"
                    break
    return found


def alpha_for(policy: Policy, rule: Trigger) -> float:
    """The rule's share of the policy's false-rollback budget (Bonferroni)."""
    count = sum(1 for r in policy.rules if is_sequential(r))
    return rule.detection.alpha / max(count, 1)


def judge(
    policy: Policy,
    rule: Trigger,
    measurements: Mapping[Query, Measurement],
    *,
    baseline: Baseline | None,
    state: TriggerState,
    now: float,
    threshold: Judge,
) -> tuple[TriggerResult, TriggerState]:
    """The rule's verdict: sequential alone, or the first of threshold and sequential."""
    alpha = alpha_for(policy, rule)
    current = seq.SequentialState.from_mapping(state.sequential)
    last = state.sequential.get("at")
    too_early = last is not None and now - last < policy.analysis.interval * (1 - 1e-9)
    if too_early:
        # a window that overlaps the last one would count its requests twice; this is
        # waiting (a watch evaluating more often than the interval), not missing data
        update = seq.unchanged(current, alpha, "the previous interval has not ended yet")
    else:
        update = _update(
            policy, rule, measurements, baseline=baseline, current=current, alpha=alpha
        )
    mapping = dict(state.sequential)
    if not update.reason:
        mapping = {**update.state.to_mapping(), "at": now}
    evidence = _evidence(policy, rule, update, alpha)
    status = TriggerStatus.OK
    if update.reject:
        status = TriggerStatus.DRY_RUN if rule.dry_run else TriggerStatus.FIRING
    starved = bool(update.reason) and not too_early

    if rule.detection.method == "both" or starved:
        result, after = threshold(
            policy, rule, measurements, baseline=baseline, state=state, now=now
        )
        after = replace(after, sequential=mapping)
        fired = result.status in (TriggerStatus.FIRING, TriggerStatus.DRY_RUN)
        if rule.detection.method == "both" and update.reject and not fired:
            return _result(rule, status, evidence), after
        merged = replace(result.evidence, statistic=dict(evidence.statistic))
        if starved:
            merged = fallen_back(merged, update.reason)
            over = fired or result.status is TriggerStatus.BREACHING
            both = _also_on_stable(rule, measurements, result) if over else ""
            if both and guards_fallback(policy, rule):
                healthy = replace(after, breaches=0, breach_since=None)
                cleared = replace(merged, reason=f"{merged.reason}; {both}")
                return _result(rule, TriggerStatus.OK, cleared), healthy
        return replace(result, evidence=merged), after

    if too_early:
        return _result(rule, TriggerStatus.WAITING, evidence), state
    judged = replace(state, no_data=0, judged=state.judged + 1, sequential=mapping)
    return _result(rule, status, evidence), judged


def _also_on_stable(
    rule: Trigger, measurements: Mapping[Query, Measurement], result: TriggerResult
) -> str:
    """Why a fired threshold is not the canary's fault ("" when it is, or stable is unknown)."""
    stable = measurements.get(stable_window(rule))
    canary = result.evidence.value
    if stable is None or stable.phase is not Phase.OK or stable.value is None or canary is None:
        return ""
    detection = rule.detection
    tolerated = detection.tolerance_ratio * stable.value + detection.tolerance_points
    if canary > tolerated:
        return ""
    return (
        f"not the canary's: stable's {rule.signal.value} is {stable.value:.4g} over the same "
        f"window, and the canary's {canary:.4g} is within {detection.tolerance_ratio:g} x "
        f"stable + {detection.tolerance_points:g} points"
    )


def fallen_back(evidence: Evidence, why: str) -> Evidence:
    """Threshold evidence that says the sequential test could not be fed, and why."""
    note = f"judged by its threshold rule, the sequential test cannot be fed ({why})"
    reason = f"{note}: {evidence.reason}" if evidence.reason else note
    return replace(evidence, reason=reason, fallback=why)


def _update(
    policy: Policy,
    rule: Trigger,
    measurements: Mapping[Query, Measurement],
    *,
    baseline: Baseline | None,
    current: seq.SequentialState,
    alpha: float,
) -> seq.Update:
    """Feed this interval to the rule's test, or say why it cannot be fed."""
    interval = policy.analysis.interval
    detection = rule.detection
    tolerance: _Settings = {
        "alpha": alpha,
        "tolerance_ratio": detection.tolerance_ratio,
        "tolerance_points": detection.tolerance_points,
        "horizon": horizon_for(rule, current, interval),
    }
    source = reference(policy, rule)

    def get(signal: AnySignal, version: Version) -> Measurement | str:
        found = measurements.get(Query(signal, version, interval))
        if found is None:
            return f"{version.value} {signal.value}: not measured"
        if found.phase is not Phase.OK or found.value is None:
            return f"{version.value} {signal.value}: {found.reason or found.phase.value}"
        return found

    if not supports_sequential(rule.signal):
        return seq.unchanged(current, alpha, f"no sequential test for {rule.signal.value}")
    if is_error_ratio(rule.signal):
        picked = [get(s, v) for v in _versions(source) for s in _counts(rule.signal)]
        problems = [p for p in picked if isinstance(p, str)]
        if problems:
            return seq.unchanged(current, alpha, problems[0])
        counts = [m.value if isinstance(m, Measurement) else None for m in picked]
        if source == "stable":
            return seq.update_rate_vs_stable(
                current,
                canary_requests=counts[0],
                canary_errors=counts[1],
                stable_requests=counts[2],
                stable_errors=counts[3],
                **tolerance,
            )
        rate = baseline.value_for(rule.signal) if baseline is not None else None
        return seq.update_rate_vs_baseline(
            current,
            canary_requests=counts[0],
            canary_errors=counts[1],
            baseline_rate=rate / 100.0 if rate is not None else None,
            **tolerance,
        )
    canary = get(Signal.LATENCY_BUCKETS, Version.CANARY)
    if isinstance(canary, str):
        return seq.unchanged(current, alpha, canary)
    if source == "stable":
        stable = get(Signal.LATENCY_BUCKETS, Version.STABLE)
        if isinstance(stable, str):
            return seq.unchanged(current, alpha, stable)
        return seq_latency.update_latency_vs_stable(
            current,
            canary_buckets=canary.buckets,
            stable_buckets=stable.buckets,
            canary_requests=canary.requests,
            stable_requests=stable.requests,
            **tolerance,
        )
    if baseline is None:
        return seq.unchanged(current, alpha, "no baseline loaded")
    quantiles = {0.95: baseline.metrics.p95_latency_ms / 1000.0}
    if baseline.metrics.p50_latency_ms is not None:
        quantiles[0.5] = baseline.metrics.p50_latency_ms / 1000.0
    return seq_latency.update_latency_vs_baseline(
        current,
        canary_buckets=canary.buckets,
        baseline_quantiles=quantiles,
        canary_requests=canary.requests,
        **tolerance,
    )


def horizon_for(rule: Trigger, current: seq.SequentialState, interval: float) -> int | None:
    """The detector the rule's test runs, as a horizon in updates (None: the mixture).

    A rule that takes the default detector keeps the one its stored state was built
    with: a watch resumed across an upgrade that changed the default goes on with its
    schedule, whose weights alone sum to 1, rather than mixing two schedules (which
    would void the bound) or leaving the trigger to its threshold rule.
    """
    if current.log_products and not rule.detection.detector_chosen:
        return current.horizon or None
    return rule.detection.horizon_updates(interval)


def _versions(source: str) -> list[Version]:
    return [Version.CANARY, Version.STABLE] if source == "stable" else [Version.CANARY]


def _evidence(policy: Policy, rule: Trigger, update: seq.Update, alpha: float) -> Evidence:
    stats = update.evidence
    detection = rule.detection
    source = reference(policy, rule)
    what = "error rate" if is_error_ratio(rule.signal) else "share of slow requests"
    e_value = stats["e_value"]
    verdict = "≥" if update.reject else "<"
    reason = (
        f"sequential test: canary {what} above {detection.tolerance_ratio:g} x {source} "
        f"+ {detection.tolerance_points:g} points? e-value {e_value:.3g} {verdict} "
        f"1/alpha = {1 / alpha:.3g} after {stats['intervals']:g} intervals, "
        f"{stats['canary_requests']:g} canary requests"
    )
    if update.reason:
        reason = f"sequential test not updated: {update.reason}; {reason}"
    elif (update.state.horizon or None) != detection.horizon_updates(policy.analysis.interval):
        kept = (
            "the mixture"
            if not update.state.horizon
            else f"an e-detector over {update.state.horizon} intervals"
        )
        reason = f"{reason}; runs {kept}, the detector its stored state began with"
    return Evidence(
        trigger=rule.name,
        signal=rule.signal.value,
        value=e_value if math.isfinite(e_value) else None,
        limit=1.0 / alpha,
        threshold=rule.threshold.value,
        comparison="e_value",
        window_seconds=policy.analysis.interval,
        reference_source=source,
        requests=stats["canary_requests"],
        method="sequential",
        statistic=dict(stats),
        reason=reason,
    )


def _result(rule: Trigger, status: TriggerStatus, evidence: Evidence) -> TriggerResult:
    return TriggerResult(
        trigger=rule.name,
        status=status,
        action=rule.action,
        severity=rule.severity,
        evidence=evidence,
        notification=rule.notification,
    )
