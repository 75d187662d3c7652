"""The promotion test: anytime-valid evidence that the canary is *no worse* than its reference.

The rollback tests (:mod:`rollguard.engine.sequential`) ask "is the canary
worse?"; this one asks the opposite, with the roles of the hypotheses swapped.
Null (the release is bad): in every interval the canary's error rate, or its
share of slow requests, is at least ``margin_ratio`` x the reference's +
``margin_points`` / 100. Each test is a product of per-interval e-factors,
averaged over a fixed grid of alternatives :data:`PHI_DOWN` (the canary's
rate a fraction of the null's), so under the null its expectation is at most 1
at every interval and, by Ville's inequality, it reaches ``1 / beta`` with
probability at most ``beta`` however long it runs: a bad release is promoted
with probability at most ``beta``. docs/detection.md has the derivation.

Against the stable version the factor is the rollback test's conditional
Poisson factor with ``φ < 1`` (the margin's additive points as phantom stable
errors, averaged out); against a known rate (the baseline file) it is the
binomial likelihood ratio. Latency uses the share of requests slower than one
histogram boundary, fixed from the first interval (stable's p95 bucket, or the
baseline's p95), that interval only choosing it.

The promotion accepts only when *every* test has been fed and stands at or
above ``1 / beta`` (an intersection-union test: no correction for their number
is needed). With no data there is no evidence, and no promotion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from rollguard.baseline import Baseline
from rollguard.engine.sequential_rules import reference
from rollguard.policy.model import Policy
from rollguard.policy.promotion import PROMOTION_SIGNALS, Promotion
from rollguard.signals import Measurement, Phase, Query, Signal, Version

Array = npt.NDArray[np.float64]

#: Alternatives: the canary's rate is ``φ`` times the smallest rate the null allows.
PHI_DOWN: Array = np.geomspace(0.02, 0.95, 20)
LOG_PHI_DOWN: Array = np.log(PHI_DOWN)
#: The latency boundary is the first whose share of slower stable requests is at most this.
SLOW_SHARE = 0.05


def vs_stable_log_factors(
    canary_requests: npt.ArrayLike,
    canary_events: npt.ArrayLike,
    stable_requests: npt.ArrayLike,
    stable_events: npt.ArrayLike,
    *,
    margin_ratio: float,
    margin_fraction: float,
) -> Array:
    """Log e-factor per alternative: ``φ^x_c · b^(x_c + x_s) · exp(μ (b - 1))``, ``φ < 1``.

    ``rho = r n_c / n_s``, ``b = (1 + rho) / (1 + rho φ)``, ``μ = n_s d / r``. Its
    expectation is ``exp((φ - 1) n_c (p_c - r p_s - d) / (1 + rho φ)) <= 1`` whenever
    ``p_c >= r p_s + d`` (Poisson counts; binomial ones only lower it).
    """
    n_c = np.asarray(canary_requests, dtype=float)[..., None]
    x_c = np.asarray(canary_events, dtype=float)[..., None]
    n_s = np.asarray(stable_requests, dtype=float)[..., None]
    x_s = np.asarray(stable_events, dtype=float)[..., None]
    rho = margin_ratio * n_c / n_s
    log_b = np.log1p(rho) - np.log1p(rho * PHI_DOWN)
    mu = n_s * margin_fraction / margin_ratio
    out: Array = x_c * LOG_PHI_DOWN + (x_c + x_s) * log_b + mu * np.expm1(log_b)
    return out


def vs_rate_log_factors(
    requests: npt.ArrayLike, events: npt.ArrayLike, *, null_rate: float
) -> Array:
    """Binomial likelihood ratio of rate ``φ m`` against ``m``; at most 1 in mean when p >= m."""
    n = np.asarray(requests, dtype=float)[..., None]
    x = np.asarray(events, dtype=float)[..., None]
    out: Array = x * LOG_PHI_DOWN + (n - x) * (
        np.log1p(-null_rate * PHI_DOWN) - math.log1p(-null_rate)
    )
    return out


def log_e(log_products: npt.ArrayLike) -> float:
    """Log of the grid's average e-value (uniform weights)."""
    logs = np.asarray(log_products, dtype=float)
    return float(special.logsumexp(logs) - math.log(logs.size))


# --- state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalTest:
    """One signal's running test against one reference."""

    signal: Signal
    source: Literal["baseline", "stable"]
    log_products: tuple[float, ...] = ()
    intervals: int = 0
    canary_requests: float = 0.0
    canary_events: float = 0.0
    stable_requests: float = 0.0
    stable_events: float = 0.0
    boundary: float | None = None  # latency: seconds; "slow" means slower than this
    reason: str = ""  # why the last interval did not feed it ("" when it did)
    #: The e-processes begun at each earlier fed step, each fed ever since (``step_beta``).
    earlier: tuple[tuple[float, ...], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.signal.value}:{self.source}"

    def log_e_value(self) -> float:
        return log_e(self.log_products) if self.log_products else 0.0

    def weakest_since_a_step(self) -> float:
        """The least log e-value of this step's and every earlier step's e-process."""
        return min([self.log_e_value(), *(log_e(products) for products in self.earlier)])


@dataclass(frozen=True)
class PromotionState:
    """Every test of a release's promotion; ``at`` is the last interval fed."""

    tests: tuple[SignalTest, ...] = ()
    at: float | None = None


@dataclass(frozen=True)
class PromotionVerdict:
    """Whether the evidence accepts "no worse", and each test's evidence."""

    state: PromotionState
    accepted: bool
    evidence: tuple[dict[str, object], ...] = field(default_factory=tuple)
    reason: str = ""


def start(policy: Policy) -> PromotionState:
    """A fresh state: one test per (signal, reference) the rollback triggers use."""
    found: dict[str, SignalTest] = {}
    for rule in policy.rules:
        if rule.signal in PROMOTION_SIGNALS:
            test = SignalTest(rule.signal, reference(policy, rule))
            found.setdefault(test.key, test)
    return PromotionState(tests=tuple(found.values()))


def restart(state: PromotionState) -> PromotionState:
    """The tests of a new step: no evidence, the latency boundaries kept.

    A step's share changes what the canary serves (its load, its share of the
    users), and a fault may start with it: evidence gathered at the previous
    share says nothing about this one. Each step is therefore its own test, fed
    only by intervals at its share; a release worse than the margin passes each
    with probability at most ``beta``, so the whole promotion too. A boundary was
    fixed from earlier data, before any of the new step's counts, so keeping it
    keeps each factor's mean at most 1. The ended step's e-process is kept and fed
    on: with ``step_beta``, the last step checks every one of them (:func:`update`).
    """
    tests = tuple(
        SignalTest(
            t.signal,
            t.source,
            boundary=t.boundary,
            earlier=t.earlier + ((t.log_products,) if t.intervals else ()),
        )
        for t in state.tests
    )
    return PromotionState(tests=tests, at=state.at)


def queries(policy: Policy) -> list[Query]:
    """The per-interval counts the promotion test is fed."""
    interval = policy.analysis.interval
    wanted: dict[Query, None] = {}
    for test in start(policy).tests:
        versions = [Version.CANARY] + ([Version.STABLE] if test.source == "stable" else [])
        signals = (
            (Signal.REQUESTS, Signal.ERRORS)
            if test.signal is Signal.ERROR_RATE_PERCENT
            else (Signal.LATENCY_BUCKETS,)
        )
        wanted.update(dict.fromkeys(Query(s, v, interval) for v in versions for s in signals))
    return list(wanted)


def update(
    policy: Policy,
    measurements: Mapping[Query, Measurement],
    *,
    baseline: Baseline | None,
    state: PromotionState,
    now: float,
    final: bool = False,
) -> PromotionVerdict:
    """Feed one interval to every test; accept when each stands at its threshold or more.

    The threshold is ``1 / beta``. With ``step_beta`` set, a step moves on at
    ``1 / step_beta``, and the move to 100 % (``final``) needs *every* e-process,
    this step's and each begun at an earlier step and fed since, at ``1 / beta``:
    a release bad from step j on is promoted only if step j's e-process crosses,
    a chance of at most ``beta`` (docs/detection.md).
    """
    plan = policy.promotion
    assert plan is not None  # noqa: S101 only called for a policy with promotion:
    interval = policy.analysis.interval
    if state.at is not None and now - state.at < interval * (1 - 1e-9):
        waiting = "the previous interval has not ended yet"
        tests = tuple(replace(t, reason=waiting) for t in state.tests)
    else:
        tests = tuple(
            _feed(test, measurements, interval=interval, plan=plan, baseline=baseline)
            for test in state.tests
        )
    fed = any(not t.reason for t in tests)
    new = PromotionState(tests=tests, at=now if fed else state.at)
    every_step = plan.step_beta is not None and final
    level = plan.beta if plan.step_beta is None or final else plan.step_beta
    name = "beta" if level == plan.beta else "step_beta"
    evidence = tuple(_evidence(t, plan, level, name) for t in tests)

    def value(test: SignalTest) -> float:
        return test.weakest_since_a_step() if every_step else test.log_e_value()

    short = [t for t in tests if t.intervals == 0 or value(t) < math.log(1.0 / level)]
    if not tests:
        return PromotionVerdict(new, False, evidence, "no signal to test")
    since = " since a step began" if every_step else ""
    if short:
        first = short[0]
        why = (
            f"{first.key}: no data yet ({first.reason or 'not fed'})"
            if first.intervals == 0
            else f"{first.key}: e-value{since} {math.exp(value(first)):.3g} < 1/{name} = "
            f"{1 / level:.3g}"
        )
        return PromotionVerdict(new, False, evidence, why)
    return PromotionVerdict(
        new, True, evidence, f"every test{since} at or above 1/{name} = {1 / level:.3g}"
    )


def _evidence(test: SignalTest, plan: Promotion, level: float, bound: str) -> dict[str, object]:
    log_value = test.log_e_value()
    return {
        "test": test.key,
        "signal": test.signal.value,
        "reference": test.source,
        "e_value": math.exp(min(log_value, 700.0)),
        "earlier_steps_e_values": [math.exp(min(log_e(p), 700.0)) for p in test.earlier],
        "threshold": 1.0 / level,
        "bound": bound,  # whose threshold: "beta", or "step_beta" before the last step
        "beta": plan.beta,
        "intervals": test.intervals,
        "canary_requests": test.canary_requests,
        "canary_events": test.canary_events,
        "stable_requests": test.stable_requests,
        "stable_events": test.stable_events,
        "boundary_seconds": test.boundary,
        "margin_ratio": plan.margin_ratio,
        "margin_points": plan.margin_points,
        "not_fed": test.reason,
    }


def _feed(
    test: SignalTest,
    measurements: Mapping[Query, Measurement],
    *,
    interval: float,
    plan: Promotion,
    baseline: Baseline | None,
) -> SignalTest:
    """The test after this interval's counts, or unchanged with the reason it was not fed."""
    versions = [Version.CANARY] + ([Version.STABLE] if test.source == "stable" else [])
    if test.signal is Signal.ERROR_RATE_PERCENT:
        counts: list[float] = []
        for version in versions:
            for signal in (Signal.REQUESTS, Signal.ERRORS):
                found = _usable(measurements.get(Query(signal, version, interval)))
                if isinstance(found, str):
                    return replace(test, reason=f"{version.value} {signal.value}: {found}")
                counts.append(float(found.value or 0.0))
        return _apply(test, counts, plan=plan, baseline=baseline)
    histograms: list[Mapping[float, float]] = []
    for version in versions:
        found = _usable(measurements.get(Query(Signal.LATENCY_BUCKETS, version, interval)))
        if isinstance(found, str):
            return replace(test, reason=f"{version.value} latency buckets: {found}")
        histograms.append({**found.buckets, math.inf: _total(found)})
    if test.boundary is None:
        boundary = _choose_boundary(histograms[-1], baseline, test.source)
        if boundary is None:
            return replace(test, reason="no histogram boundary to judge slow requests by")
        # the interval that chose the boundary does not also test it
        return replace(test, boundary=boundary, reason="boundary chosen; testing from the next")
    counts = []
    for histogram in histograms:
        within = histogram.get(test.boundary)
        if within is None:
            return replace(test, reason=f"no histogram bucket at {test.boundary:g}s")
        total = histogram[math.inf]
        counts += [total, max(total - within, 0.0)]
    return _apply(test, counts, plan=plan, baseline=baseline)


def _apply(
    test: SignalTest, counts: list[float], *, plan: Promotion, baseline: Baseline | None
) -> SignalTest:
    """Multiply one interval's factors in; ``counts`` = canary (requests, events)[, stable's]."""
    n_c, x_c = counts[0], counts[1]
    if any(not math.isfinite(c) or c < 0 for c in counts):
        return replace(test, reason="a count is negative or not a number")
    if n_c == 0 or (len(counts) > 2 and counts[2] == 0):
        side = "canary" if n_c == 0 else "stable"
        return replace(test, reason=f"no {side} traffic in the interval")
    if x_c > n_c or (len(counts) > 2 and counts[3] > counts[2]):
        return replace(test, reason="more events than requests")
    fraction = plan.margin_points / 100.0
    if test.source == "stable":
        n_s, x_s = counts[2], counts[3]
        factors = vs_stable_log_factors(
            n_c, x_c, n_s, x_s, margin_ratio=plan.margin_ratio, margin_fraction=fraction
        )
    else:
        rate = _baseline_rate(test, baseline)
        if rate is None:
            return replace(test, reason="no baseline loaded")
        null_rate = plan.margin_ratio * rate + fraction
        if not 0.0 < null_rate < 1.0:
            return replace(test, reason=f"the margin's rate {null_rate:g} leaves nothing to test")
        factors = vs_rate_log_factors(n_c, x_c, null_rate=null_rate)
        n_s = x_s = 0.0
    step = np.asarray(factors, dtype=float).reshape(-1)
    previous = np.asarray(test.log_products or np.zeros(PHI_DOWN.size), dtype=float)
    return replace(
        test,
        log_products=tuple(float(v) for v in previous + step),
        earlier=tuple(tuple(float(v) for v in np.asarray(e) + step) for e in test.earlier),
        intervals=test.intervals + 1,
        canary_requests=test.canary_requests + n_c,
        canary_events=test.canary_events + x_c,
        stable_requests=test.stable_requests + n_s,
        stable_events=test.stable_events + x_s,
        reason="",
    )


def _baseline_rate(test: SignalTest, baseline: Baseline | None) -> float | None:
    """The reference's rate as a fraction: the baseline's error rate, or 5 % slow at its p95."""
    if baseline is None:
        return None
    if test.signal is Signal.ERROR_RATE_PERCENT:
        value = baseline.value_for(Signal.ERROR_RATE_PERCENT)
        return None if value is None else value / 100.0
    return SLOW_SHARE


def _choose_boundary(
    buckets: Mapping[float, float], baseline: Baseline | None, source: str
) -> float | None:
    """The boundary "slow" is judged by: stable's p95 bucket, or the baseline's p95."""
    bounds = sorted(b for b in buckets if math.isfinite(b))
    if source == "baseline":
        if baseline is None:
            return None
        p95 = baseline.metrics.p95_latency_ms / 1000.0
        return next((b for b in bounds if b >= p95), None)
    total = buckets.get(math.inf)
    if not total:
        return None
    return next((b for b in bounds if total - buckets[b] <= SLOW_SHARE * total), None)


def _total(found: Measurement) -> float:
    """A histogram's request count: its +Inf bucket, else the measured requests."""
    return float(found.buckets.get(math.inf, found.requests or 0.0))


def _usable(found: Measurement | None) -> Measurement | str:
    if found is None:
        return "not measured"
    if found.phase is not Phase.OK or (found.value is None and not found.buckets):
        return found.reason or found.phase.value
    return found
