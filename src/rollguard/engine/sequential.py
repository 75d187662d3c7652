"""Anytime-valid sequential tests: evidence a rollout may check after every scrape.

Each test is an *e-process*: running products of per-interval factors whose
expectation is at most 1 whenever the canary is acceptable (the null
hypothesis), averaged over a fixed grid of alternatives and over the update at
which the fault may have begun (:func:`accumulate`). By Ville's inequality
the probability that it *ever* reaches ``1 / alpha`` under the null is at most
``alpha``, however often it is looked at. The maths is in ``docs/detection.md``.

Three tests, all one-sided (a canary may be better than stable without alarm):

- error rate, canary vs stable measured at the same time (rates may drift,
  spike in an incident hitting both, and the traffic split may change);
- error rate vs a known baseline rate;
- latency, from cumulative histogram buckets: at every bucket boundary the
  canary's share of requests slower than the boundary, vs stable or baseline.

Each null carries the policy's practical tolerance:
``canary ≤ tolerance_ratio * reference + tolerance_points / 100``.

State is a :class:`SequentialState` (plain floats, JSON-ready through
:meth:`SequentialState.to_mapping`). The numeric kernels (``*_log_factors``,
:func:`log_e_value`) take numpy arrays so the benchmark runs thousands of
deployments through the very same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import special

from rollguard.engine import change_point

Array = npt.NDArray[np.float64]

#: The alternatives: the canary's error rate is ``PHI`` times the largest rate the
#: null allows (a geometric grid from +10% to 100 times; see docs/detection.md).
GRID_SIZE = 20
PHI: Array = np.geomspace(1.1, 100.0, GRID_SIZE)
LOG_PHI: Array = np.log(PHI)


# --- numeric kernels (vectorized; the benchmark calls these directly) -----------


def rate_vs_stable_log_factors(
    canary_requests: npt.ArrayLike,
    canary_errors: npt.ArrayLike,
    stable_requests: npt.ArrayLike,
    stable_errors: npt.ArrayLike,
    *,
    tolerance_ratio: float,
    tolerance_fraction: float,
) -> Array:
    """Log of one interval's e-factor for each alternative in :data:`PHI`.

    ``f = φ^x_c · b^(x_c + x_s) · exp(μ (b - 1))`` with ``rho = r n_c / n_s``,
    ``b = (1 + rho) / (1 + rho φ)`` and ``μ = n_s d / r``: the likelihood ratio of the
    canary's share of errors, with the additive tolerance ``d`` handled as
    phantom stable errors integrated out. Shape ``(..., GRID_SIZE)``; every
    input must be finite, requests positive.
    """
    n_c = np.asarray(canary_requests, dtype=float)[..., None]
    x_c = np.asarray(canary_errors, dtype=float)[..., None]
    n_s = np.asarray(stable_requests, dtype=float)[..., None]
    x_s = np.asarray(stable_errors, dtype=float)[..., None]
    rho = tolerance_ratio * n_c / n_s
    log_b = np.log1p(rho) - np.log1p(rho * PHI)
    mu = n_s * tolerance_fraction / tolerance_ratio
    out: Array = x_c * LOG_PHI + (x_c + x_s) * log_b + mu * np.expm1(log_b)
    return out


#: Effects for the bounded-difference factor: canary share minus the tolerated share.
DELTA: Array = np.geomspace(0.002, 0.5, GRID_SIZE)


def share_difference_log_factors(
    canary_requests: npt.ArrayLike,
    canary_events: npt.ArrayLike,
    stable_requests: npt.ArrayLike,
    stable_events: npt.ArrayLike,
    *,
    tolerance_ratio: float,
    tolerance_fraction: float,
) -> Array:
    """Log of a bounded-difference e-factor per effect in :data:`DELTA`.

    ``T = x_c / n_c - r x_s / n_s - d`` has mean <= 0 under the null and, each
    request counting 0 or 1, ``log E[exp(theta T)] <= theta^2 v / 8`` with
    ``v = 1/n_c + r^2/n_s`` (Hoeffding). With ``theta = 4 delta / v`` the factor is
    ``exp((4 delta T - 2 delta^2) / v)``. Where events are common (a share near
    one half), it is nearly as sharp as the binomial likelihood ratio, unlike
    :func:`rate_vs_stable_log_factors`, which is sharp for rare events.
    """
    n_c = np.asarray(canary_requests, dtype=float)[..., None]
    x_c = np.asarray(canary_events, dtype=float)[..., None]
    n_s = np.asarray(stable_requests, dtype=float)[..., None]
    x_s = np.asarray(stable_events, dtype=float)[..., None]
    r = tolerance_ratio
    spread = 1.0 / n_c + r * r / n_s
    t = x_c / n_c - r * x_s / n_s - tolerance_fraction
    out: Array = (4.0 * DELTA * t - 2.0 * DELTA**2) / spread
    return out


def rate_vs_baseline_log_factors(
    requests: npt.ArrayLike, errors: npt.ArrayLike, *, null_rate: float
) -> Array:
    """Log of the binomial likelihood ratio ``p1 / p0`` per alternative.

    ``p1`` has the odds of ``p0`` times ``φ`` (so it stays below 1). Shape
    ``(..., GRID_SIZE)``; ``0 < null_rate < 1``.
    """
    n = np.asarray(requests, dtype=float)[..., None]
    x = np.asarray(errors, dtype=float)[..., None]
    out: Array = x * LOG_PHI - n * np.log1p(null_rate * (PHI - 1.0))
    return out


def accumulate(
    log_state: npt.ArrayLike | None,
    log_factors: Array,
    index: int | Array,
    horizon: int | None = None,
) -> Array:
    """One update of the change-point mixture ``S_t = f_t (S_{t-1} + w_t)`` in logs.

    ``S_t = sum_k w_k prod_{i=k..t} f_i`` bets, with weight ``w_k``, that the
    canary went bad at update ``k``: evidence lost while it was healthy does not
    have to be won back. ``horizon`` picks the weights
    (:func:`rollguard.engine.change_point.log_start_weight`). ``log_state`` is
    None at the first update (``index`` 1); ``index`` counts updates, from 1.
    """
    weight = change_point.log_start_weight(index, horizon)
    w = weight[..., None, None] if np.ndim(weight) else weight  # one index per run
    if log_state is None:
        first: Array = log_factors + w
        return first
    out: Array = log_factors + np.logaddexp(np.asarray(log_state, dtype=float), w)
    return out


def log_e_value(log_products: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Array:
    """Log e-value: uniform average over the grid (last axis), weighted over components.

    ``log_products`` has shape ``(..., components, GRID_SIZE)``; ``weights`` (one
    per component, summing to 1) defaults to uniform.
    """
    logs = np.asarray(log_products, dtype=float)
    if weights is None:
        shape = logs.shape
        return _log_mean_exp(logs.reshape(*shape[:-2], shape[-2] * shape[-1]))
    per_component = _log_mean_exp(logs)
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.asarray(weights, dtype=float))
    out: Array = special.logsumexp(per_component + log_weights, axis=-1)
    return out


def _log_mean_exp(logs: Array) -> Array:
    """log(mean(exp(x))) over the last axis, without overflow (scipy's is slower here)."""
    top = np.max(logs, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out: Array = top[..., 0] + np.log(np.mean(np.exp(logs - top), axis=-1))
    return out


def alpha_per_trigger(alphas: list[float]) -> list[float]:
    """Bonferroni split: each sequential trigger tests at its alpha over their number.

    The chance that any of them falsely fires is then at most ``max(alphas)``.
    """
    count = len(alphas)
    return [alpha / count for alpha in alphas]


# --- state ------------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialState:
    """The running log-mixtures per (component, alternative) and traffic totals.

    Error-rate tests have one component (``boundaries`` is empty); latency tests
    against the stable two per histogram bucket boundary (the rare-event and the
    bounded-difference factors) and one for a shift across all buckets, with
    ``weights`` per component and the stable's requests per bucket so far in
    ``stable_cells``; against a baseline one per baseline quantile. Boundaries
    are fixed at the first update.
    """

    log_products: tuple[float, ...] = ()
    boundaries: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    stable_cells: tuple[float, ...] = ()
    canary_requests: float = 0.0
    canary_errors: float = 0.0
    stable_requests: float = 0.0
    stable_errors: float = 0.0
    intervals: int = 0
    horizon: int = 0  # the e-detector's horizon in updates; 0 for the mixture

    def to_mapping(self) -> dict[str, float]:
        """Flat floats, for the engine's per-trigger state and the audit trail."""
        out = {
            "canary_requests": self.canary_requests,
            "canary_errors": self.canary_errors,
            "stable_requests": self.stable_requests,
            "stable_errors": self.stable_errors,
            "intervals": float(self.intervals),
        }
        if self.horizon:
            out["horizon"] = float(self.horizon)
        out.update({f"log_{i}": value for i, value in enumerate(self.log_products)})
        out.update({f"boundary_{i}": value for i, value in enumerate(self.boundaries)})
        out.update({f"weight_{i}": value for i, value in enumerate(self.weights)})
        out.update({f"cell_{i}": value for i, value in enumerate(self.stable_cells)})
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, float]) -> SequentialState:
        """Rebuild a state written by :meth:`to_mapping` (empty → fresh)."""

        def series(prefix: str) -> tuple[float, ...]:
            count = sum(1 for key in data if key.startswith(prefix))
            return tuple(float(data[f"{prefix}{i}"]) for i in range(count))

        return cls(
            log_products=series("log_"),
            boundaries=series("boundary_"),
            weights=series("weight_"),
            stable_cells=series("cell_"),
            canary_requests=float(data.get("canary_requests", 0.0)),
            canary_errors=float(data.get("canary_errors", 0.0)),
            stable_requests=float(data.get("stable_requests", 0.0)),
            stable_errors=float(data.get("stable_errors", 0.0)),
            intervals=int(data.get("intervals", 0)),
            horizon=int(data.get("horizon", 0)),
        )


@dataclass(frozen=True)
class Update:
    """The result of feeding one interval to a test.

    ``reason`` is empty when the interval was used; otherwise it says why not,
    the state is unchanged and ``reject`` is false.
    """

    state: SequentialState
    evidence: dict[str, float]
    reject: bool
    reason: str = ""


def _bad_counts(**counts: float | None) -> str:
    """Why these counts cannot be used, or '' when they can."""
    for name, value in counts.items():
        if value is None:
            return f"{name} is missing"
        if not math.isfinite(value):
            return f"{name} is {value}"
        if value < 0:
            return f"{name} is negative ({value:g})"
    return ""


def apply_factors(
    state: SequentialState,
    log_factors: Array,
    alpha: float,
    *,
    horizon: int | None = None,
    **totals: float,
) -> Update:
    """Multiply one interval's factors (shape ``(boundaries, GRID_SIZE)``) into the state.

    ``horizon`` (updates) selects the e-detector's start weights, None the mixture's.
    """
    previous = np.asarray(state.log_products, dtype=float)
    if previous.size not in (0, log_factors.size):
        return unchanged(state, alpha, "the stored state belongs to another test")
    if previous.size and state.horizon != (horizon or 0):
        # weights from two schedules could sum to more than 1: the bound would not hold
        return unchanged(state, alpha, "the stored state belongs to another detector")
    prior = previous.reshape(log_factors.shape) if previous.size else None
    products = accumulate(prior, log_factors, state.intervals + 1, horizon).ravel()
    new = replace(
        state,
        log_products=tuple(float(v) for v in products),
        intervals=state.intervals + 1,
        horizon=horizon or 0,
        **{key: getattr(state, key) + value for key, value in totals.items()},
    )
    evidence, reject = _evidence(new, products.reshape(log_factors.shape), alpha)
    return Update(new, evidence, reject)


def _evidence(
    state: SequentialState, products: Array, alpha: float
) -> tuple[dict[str, float], bool]:
    log_e = float(log_e_value(products, state.weights or None)) if products.size else 0.0
    threshold = math.log(1.0 / alpha)
    evidence = {
        "log_e_value": log_e,
        "e_value": math.exp(min(log_e, 700.0)),
        "threshold": 1.0 / alpha,
        "alpha": alpha,
        "canary_requests": state.canary_requests,
        "canary_errors": state.canary_errors,
        "stable_requests": state.stable_requests,
        "stable_errors": state.stable_errors,
        "intervals": float(state.intervals),
    }
    if state.horizon:
        evidence["horizon_updates"] = float(state.horizon)
    return evidence, log_e >= threshold


def unchanged(state: SequentialState, alpha: float, reason: str) -> Update:
    """An interval the test cannot use: a factor of 1, which keeps the e-process valid.

    The evidence still reports the standing e-value, so a no-data row shows how far along
    the test is.
    """
    products = np.asarray(state.log_products, dtype=float).reshape(-1, GRID_SIZE)
    evidence, _ = _evidence(state, products, alpha)
    return Update(state, evidence, reject=False, reason=reason)


# --- the tests ----------------------------------------------------------------------


def update_rate_vs_stable(
    state: SequentialState,
    *,
    canary_requests: float | None,
    canary_errors: float | None,
    stable_requests: float | None,
    stable_errors: float | None,
    alpha: float,
    tolerance_ratio: float,
    tolerance_points: float,
    horizon: int | None = None,
) -> Update:
    """Feed one interval's counts; reject once canary errors exceed the tolerated rate.

    Null: in every interval ``p_canary ≤ tolerance_ratio · p_stable +
    tolerance_points / 100``; rates may change from interval to interval.
    """
    problem = _bad_counts(
        canary_requests=canary_requests,
        canary_errors=canary_errors,
        stable_requests=stable_requests,
        stable_errors=stable_errors,
    )
    if problem:
        return unchanged(state, alpha, problem)
    assert canary_requests is not None  # noqa: S101 _bad_counts returned no problem
    assert canary_errors is not None  # noqa: S101
    assert stable_requests is not None  # noqa: S101
    assert stable_errors is not None  # noqa: S101
    if canary_requests == 0 or stable_requests == 0:
        side = "canary" if canary_requests == 0 else "stable"
        return unchanged(state, alpha, f"no {side} traffic in the interval")
    if canary_errors > canary_requests or stable_errors > stable_requests:
        return unchanged(state, alpha, "more errors than requests")
    factors = rate_vs_stable_log_factors(
        canary_requests,
        canary_errors,
        stable_requests,
        stable_errors,
        tolerance_ratio=tolerance_ratio,
        tolerance_fraction=tolerance_points / 100.0,
    )
    return apply_factors(
        state,
        factors[None, :],
        alpha,
        horizon=horizon,
        canary_requests=canary_requests,
        canary_errors=canary_errors,
        stable_requests=stable_requests,
        stable_errors=stable_errors,
    )


def update_rate_vs_baseline(
    state: SequentialState,
    *,
    canary_requests: float | None,
    canary_errors: float | None,
    baseline_rate: float | None,
    alpha: float,
    tolerance_ratio: float,
    tolerance_points: float,
    horizon: int | None = None,
) -> Update:
    """Feed one interval's counts against a known rate (a fraction, 0.01 for 1%).

    Null: ``p_canary ≤ tolerance_ratio · baseline_rate + tolerance_points / 100``.
    """
    problem = _bad_counts(
        canary_requests=canary_requests, canary_errors=canary_errors, baseline_rate=baseline_rate
    )
    if problem:
        return unchanged(state, alpha, problem)
    assert canary_requests is not None  # noqa: S101 _bad_counts returned no problem
    assert canary_errors is not None  # noqa: S101
    assert baseline_rate is not None  # noqa: S101
    if canary_requests == 0:
        return unchanged(state, alpha, "no canary traffic in the interval")
    if canary_errors > canary_requests:
        return unchanged(state, alpha, "more errors than requests")
    null_rate = tolerance_ratio * baseline_rate + tolerance_points / 100.0
    if not 0.0 < null_rate < 1.0:
        return unchanged(state, alpha, f"tolerated rate {null_rate:g} leaves nothing to test")
    factors = rate_vs_baseline_log_factors(canary_requests, canary_errors, null_rate=null_rate)
    update = apply_factors(
        state,
        factors[None, :],
        alpha,
        horizon=horizon,
        canary_requests=canary_requests,
        canary_errors=canary_errors,
    )
    update.evidence["null_rate"] = null_rate
    return update
