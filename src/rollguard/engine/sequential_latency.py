"""Sequential latency tests from histogram buckets: slower only, anytime-valid.

Prometheus histograms give, per interval, how many requests finished within
each bucket boundary (cumulative, ``le``). A release that makes responses
slower raises the share of requests above *every* boundary, so each boundary
``B`` gets the error-rate test of :mod:`rollguard.engine.sequential` with
"slower than B" in place of "failed". Against the stable version, the shift
factor of :mod:`rollguard.engine.sequential_shift` weighs all buckets at
once. The e-value is a fixed weighted average of these e-processes (an
average of e-processes is one), so no boundary has to be chosen in advance
and the guarantee needs no correction: half the weight on the shift, half
spread over the per-boundary tests, which catch what a shift does not (a
slow tail alone).

Bucket keys are upper bounds in seconds (``math.inf`` for ``+Inf``); values
are cumulative counts over the interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from rollguard.engine.sequential import (
    Array,
    SequentialState,
    Update,
    apply_factors,
    rate_vs_baseline_log_factors,
    rate_vs_stable_log_factors,
    share_difference_log_factors,
    unchanged,
)
from rollguard.engine.sequential_shift import cells_from_tails, normal_scores, shift_log_factors


def tails(
    buckets: Mapping[float, float], requests: float | None = None
) -> tuple[tuple[float, ...], float, list[float], str]:
    """(finite boundaries, total, requests above each boundary, problem).

    ``total`` is the ``+Inf`` bucket, else ``requests``. ``problem`` is empty
    when the buckets are usable.
    """
    if not buckets:
        return (), 0.0, [], "no histogram buckets"
    for bound, count in buckets.items():
        if math.isnan(bound) or not math.isfinite(count) or count < 0:
            return (), 0.0, [], f"bucket le={bound:g} has count {count:g}"
    total = buckets.get(math.inf, requests)
    if total is None or not math.isfinite(total) or total < 0:
        return (), 0.0, [], "no +Inf bucket and no request count"
    if total == 0:
        return (), 0.0, [], "no requests in the interval"
    bounds = tuple(sorted(b for b in buckets if math.isfinite(b)))
    if not bounds:
        return (), 0.0, [], "no finite bucket boundary"
    slack = 1e-9 * total + 1e-9
    if any(buckets[b] > total + slack for b in bounds):
        return (), 0.0, [], "a bucket counts more requests than the +Inf bucket"
    return bounds, float(total), [max(total - buckets[b], 0.0) for b in bounds], ""


def stable_latency_log_factors(
    canary_requests: npt.ArrayLike,
    canary_slow: npt.ArrayLike,
    stable_requests: npt.ArrayLike,
    stable_slow: npt.ArrayLike,
    *,
    stable_seen: npt.ArrayLike,
    tolerance_ratio: float,
    tolerance_fraction: float,
) -> Array:
    """Every factor family: shape ``(..., 2 * boundaries + 1, GRID_SIZE)``.

    Slow-request counts (last axis of the inputs: boundaries) go through the
    rare-event factor and the bounded-difference factor per boundary, then the
    shift factor over all buckets, scored by ``stable_seen`` (the stable's
    requests per bucket in earlier intervals). Weigh them with
    :func:`stable_latency_weights`.
    """
    n_c = np.asarray(canary_requests, dtype=float)
    n_s = np.asarray(stable_requests, dtype=float)
    if n_c.ndim:
        n_c, n_s = n_c[..., None], n_s[..., None]
    args = (n_c, canary_slow, n_s, stable_slow)
    options = {"tolerance_ratio": tolerance_ratio, "tolerance_fraction": tolerance_fraction}
    rare = rate_vs_stable_log_factors(*args, **options)
    common = share_difference_log_factors(*args, **options)
    shift = shift_log_factors(
        cells_from_tails(canary_requests, canary_slow),
        cells_from_tails(stable_requests, stable_slow),
        normal_scores(stable_seen, tolerance_fraction),
        **options,
    )
    return np.concatenate([rare, common, shift[..., None, :]], axis=-2)


def stable_latency_weights(boundaries: int) -> tuple[float, ...]:
    """Half on the shift factor, half spread over the per-boundary factors."""
    each = 0.5 / (2 * boundaries)
    return (each,) * (2 * boundaries) + (0.5,)


def update_latency_vs_stable(
    state: SequentialState,
    *,
    canary_buckets: Mapping[float, float],
    stable_buckets: Mapping[float, float],
    alpha: float,
    tolerance_ratio: float,
    tolerance_points: float,
    canary_requests: float | None = None,
    stable_requests: float | None = None,
    horizon: int | None = None,
) -> Update:
    """Feed one interval's buckets; reject once the canary is slower than tolerated.

    Null: at every boundary, the canary's share of slower requests is at most
    ``tolerance_ratio`` times the stable's + ``tolerance_points`` / 100.
    """
    canary_bounds, n_c, canary_slow, problem = tails(canary_buckets, canary_requests)
    if problem:
        return unchanged(state, alpha, f"canary: {problem}")
    stable_bounds, n_s, stable_slow, problem = tails(stable_buckets, stable_requests)
    if problem:
        return unchanged(state, alpha, f"stable: {problem}")
    if canary_bounds != stable_bounds:
        return unchanged(state, alpha, "canary and stable histograms have different buckets")
    if state.boundaries and state.boundaries != canary_bounds:
        return unchanged(state, alpha, "histogram bucket boundaries changed")
    seen = state.stable_cells or (0.0,) * (len(canary_bounds) + 1)
    factors = stable_latency_log_factors(
        n_c,
        np.asarray(canary_slow),
        n_s,
        np.asarray(stable_slow),
        stable_seen=np.asarray(seen),
        tolerance_ratio=tolerance_ratio,
        tolerance_fraction=tolerance_points / 100.0,
    )
    fresh = state
    if not state.boundaries:
        fresh = replace(
            _with_bounds(state, canary_bounds),
            weights=stable_latency_weights(len(canary_bounds)),
        )
    update = apply_factors(
        fresh, factors, alpha, horizon=horizon, canary_requests=n_c, stable_requests=n_s
    )
    if update.reason:
        return update
    cells = cells_from_tails(n_s, np.asarray(stable_slow))
    grown = tuple(float(a + b) for a, b in zip(seen, cells, strict=True))
    update = replace(update, state=replace(update.state, stable_cells=grown))
    update.evidence["boundaries"] = float(len(canary_bounds))
    return update


def update_latency_vs_baseline(
    state: SequentialState,
    *,
    canary_buckets: Mapping[float, float],
    baseline_quantiles: Mapping[float, float],
    alpha: float,
    tolerance_ratio: float,
    tolerance_points: float,
    canary_requests: float | None = None,
    horizon: int | None = None,
) -> Update:
    """Feed one interval's buckets against baseline quantiles (``{0.95: 0.2}``, seconds).

    For each quantile ``q`` with value ``L`` the test uses the first boundary
    ``B ≥ L``; the baseline had at most ``1 - q`` of its requests above ``B``.
    Null: the canary's share above ``B`` ≤ ``tolerance_ratio (1 - q) +
    tolerance_points / 100``.
    """
    bounds, total, slow, problem = tails(canary_buckets, canary_requests)
    if problem:
        return unchanged(state, alpha, f"canary: {problem}")
    chosen: list[tuple[float, float]] = []  # (boundary, null rate)
    for quantile, value in sorted(baseline_quantiles.items()):
        if not (0 < quantile < 1 and math.isfinite(value) and value >= 0):
            continue
        above = [b for b in bounds if b >= value]
        null_rate = tolerance_ratio * (1 - quantile) + tolerance_points / 100.0
        if above and null_rate < 1.0:
            chosen.append((above[0], null_rate))
    if not chosen:
        return unchanged(state, alpha, "no bucket boundary at or above a baseline quantile")
    chosen_bounds = tuple(bound for bound, _ in chosen)
    if state.boundaries and state.boundaries != chosen_bounds:
        return unchanged(state, alpha, "histogram bucket boundaries changed")
    factors = np.stack(
        [
            rate_vs_baseline_log_factors(total, slow[bounds.index(bound)], null_rate=rate)
            for bound, rate in chosen
        ]
    )
    fresh = state if state.boundaries else _with_bounds(state, chosen_bounds)
    update = apply_factors(fresh, factors, alpha, horizon=horizon, canary_requests=total)
    update.evidence["boundaries"] = float(len(chosen))
    return update


def _with_bounds(state: SequentialState, bounds: tuple[float, ...]) -> SequentialState:
    return SequentialState(boundaries=bounds, intervals=state.intervals, horizon=state.horizon)
