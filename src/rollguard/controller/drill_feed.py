"""Synthetic measurements for a rollback drill: one trigger breached, every other healthy.

Values are derived from the policy, never fixed: a threshold trigger gets a
value past its limit (from its threshold and its reference, the stable's
nominal value or the baseline's) with enough requests for ``min_requests``;
a sequential trigger gets per-interval counts far above its tolerated rate
(``tolerance_ratio`` x reference + ``tolerance_points``), so its e-process
grows every interval until it crosses 1/alpha. Nothing is clamped to make a
trigger fire: an error rate cannot pass 100 %, so a trigger whose limit is
100 % or more stays quiet, and the drill says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from rollguard.baseline import Baseline
from rollguard.engine import sequential_rules
from rollguard.engine.evaluate import canary_query, judged_on_requests, stable_query
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger
from rollguard.signals import AnySignal, Measurement, Query, Signal, Version, is_error_ratio

#: A healthy service's values when neither a baseline nor the policy gives one.
NOMINAL: dict[Signal, float] = {
    Signal.ERROR_RATE_PERCENT: 0.5,
    Signal.LATENCY_P95_MS: 200.0,
    Signal.LATENCY_P50_MS: 80.0,
    Signal.LATENCY_MEAN_MS: 100.0,
    Signal.MEMORY_MB: 256.0,
    Signal.CPU_PERCENT: 20.0,
    Signal.CONNECTIONS: 50.0,
    Signal.UNAUTHORIZED_PER_MINUTE: 0.0,
    Signal.SUSPICIOUS_EVENTS: 0.0,
}

#: Histogram boundaries as multiples of the reference p95, and the cumulative shares
#: below each (then +Inf): healthy ~5 % above the p95; slow 90 % above 8 x the p95.
BOUND_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
HEALTHY_SHARES = (0.3, 0.7, 0.95, 0.99, 1.0, 1.0)
SLOW_SHARES = (0.0, 0.0, 0.01, 0.02, 0.05, 0.1)

SEQUENTIAL_REQUESTS = 1000.0  # per interval and version: enough for a test to move


@dataclass
class DrillProvider:
    """Answers each query from a table; queries it was not told about read healthy."""

    answers: dict[Query, tuple[float, float, dict[float, float]]] = field(default_factory=dict)
    healthy: dict[tuple[AnySignal, Version], float] = field(default_factory=dict)
    requests: float = SEQUENTIAL_REQUESTS
    collected: int = 0

    async def collect(self, *, now: float) -> None:
        self.collected += 1

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        out = []
        for query in queries:
            found = self.answers.get(Query(query.signal, query.version, query.window_seconds))
            if found is None:
                value = self.healthy.get((query.signal, query.version))
                if value is None:
                    out.append(Measurement.no_data(query, now, "the drill feeds no such signal"))
                    continue
                found = (value, self.requests, {})
            value, requests, buckets = found
            out.append(Measurement.ok(query, now, value, requests=requests, buckets=buckets))
        return out

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class Breach:
    """What the drill fed the drilled trigger, for the summary and the audit record."""

    trigger: str
    signal: str
    method: str
    value: float | None  # the canary's value fed to a threshold rule
    limit: float | None
    reference: float | None
    reference_source: str | None
    requests: float
    persistence: int
    counts: dict[str, float] = field(default_factory=dict)  # what a sequential test was fed

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def reference_value(policy: Policy, rule: Trigger, baseline: Baseline | None) -> float | None:
    """The value the rule's limit is relative to (None for absolute thresholds)."""
    source = policy.reference_for(rule)
    if source is None:
        return None
    if source == "baseline":
        return baseline.value_for(rule.signal) if baseline is not None else None
    return healthy_value(rule.signal, baseline)


def healthy_value(signal: AnySignal, baseline: Baseline | None) -> float:
    """The stable's (and a healthy canary's) value: the baseline's, else nominal."""
    found = baseline.value_for(signal) if baseline is not None else None
    if found is not None:
        return found
    return NOMINAL.get(signal, 0.0) if isinstance(signal, Signal) else 0.0


def past(limit: float, signal: AnySignal) -> float:
    """A value clearly past ``limit``; an error rate never passes 100 %."""
    value = limit + max(abs(limit) * 0.5, 1.0)
    return min(value, 100.0) if is_error_ratio(signal) else value


def min_requests(policy: Policy, rule: Trigger) -> float:
    """Enough requests that the rule judges instead of waiting."""
    wanted = policy.analysis.min_requests if rule.min_requests is None else rule.min_requests
    return float(max(wanted, SEQUENTIAL_REQUESTS))


def build_feed(
    policy: Policy, drilled: Trigger, baseline: Baseline | None
) -> tuple[DrillProvider, Breach]:
    """A provider where ``drilled`` breaches and every other rule reads healthy."""
    provider = DrillProvider()
    for signal in NOMINAL:
        for version in Version:
            provider.healthy[(signal, version)] = _healthy_canary(policy, signal, baseline)
    for rule in policy.rules:  # healthy first, so the drilled rule's answers win
        _feed(provider, policy, rule, baseline, breach=False)
    breach = _feed(provider, policy, drilled, baseline, breach=True)
    return provider, breach


def _healthy_canary(policy: Policy, signal: AnySignal, baseline: Baseline | None) -> float:
    """Healthy for every rule on ``signal``: below each absolute threshold too."""
    value = healthy_value(signal, baseline)
    for rule in policy.rules:
        if rule.signal == signal and policy.reference_for(rule) is None:
            value = min(value, rule.threshold.value * 0.5)
    return value


def _feed(
    provider: DrillProvider,
    policy: Policy,
    rule: Trigger,
    baseline: Baseline | None,
    *,
    breach: bool,
) -> Breach:
    reference = reference_value(policy, rule, baseline)
    limit = rule.threshold.limit(reference)
    requests = min_requests(policy, rule)
    stable = healthy_value(rule.signal, baseline)
    if breach:
        value = past(limit, rule.signal)
    else:
        value = _healthy_canary(policy, rule.signal, baseline)
        if reference is not None:
            value = min(value, reference)
    if not judged_on_requests(rule.signal):
        requests = max(requests, provider.requests)
    canary = canary_query(rule)
    provider.answers[Query(canary.signal, canary.version, canary.window_seconds)] = (
        value,
        requests,
        {},
    )
    if policy.reference_for(rule) == "stable":
        query = stable_query(rule)
        provider.answers[Query(query.signal, query.version, query.window_seconds)] = (
            stable,
            requests,
            {},
        )
    counts: dict[str, float] = {}
    if sequential_rules.is_sequential(rule):
        counts = _feed_counts(provider, policy, rule, baseline, breach=breach)
    return Breach(
        trigger=rule.name,
        signal=rule.signal.value,
        method=rule.detection.method,
        value=value,
        limit=limit,
        reference=reference,
        reference_source=policy.reference_for(rule),
        requests=requests,
        persistence=rule.persistence or policy.analysis.persistence,
        counts=counts,
    )


def _feed_counts(
    provider: DrillProvider,
    policy: Policy,
    rule: Trigger,
    baseline: Baseline | None,
    *,
    breach: bool,
) -> dict[str, float]:
    """Per-interval counts for the rule's sequential test (docs/detection.md)."""
    interval = policy.analysis.interval
    n = max(min_requests(policy, rule), SEQUENTIAL_REQUESTS)
    detection = rule.detection
    if is_error_ratio(rule.signal):
        requests_signal, errors_signal = sequential_rules.count_inputs(rule.signal)
        base = healthy_value(rule.signal, baseline) / 100.0
        tolerated = detection.tolerance_ratio * base + detection.tolerance_points / 100.0
        rate = min(1.0, max(4 * tolerated, tolerated + 0.2)) if breach else base
        sides = {Version.CANARY: rate, Version.STABLE: base}
        for version, share in sides.items():
            provider.answers[Query(requests_signal, version, interval)] = (n, n, {})
            provider.answers[Query(errors_signal, version, interval)] = (
                math.floor(n * share),
                n,
                {},
            )
        return {
            "requests": n,
            "canary_errors": math.floor(n * rate),
            "reference_errors": math.floor(n * base),
        }
    p95_seconds = healthy_value(Signal.LATENCY_P95_MS, baseline) / 1000.0
    bounds = [p95_seconds * factor for factor in BOUND_FACTORS]
    canary_shares = SLOW_SHARES if breach else HEALTHY_SHARES
    for version, shares in ((Version.CANARY, canary_shares), (Version.STABLE, HEALTHY_SHARES)):
        buckets = {bound: n * share for bound, share in zip(bounds, shares, strict=True)}
        buckets[math.inf] = n
        provider.answers[Query(Signal.LATENCY_BUCKETS, version, interval)] = (n, n, buckets)
    slow = n * (1 - canary_shares[2])
    return {"requests": n, "canary_slower_than_p95": slow, "p95_seconds": p95_seconds}
