"""The sequential tests: validity (type-I error), power, exactness, bad input.

Monte Carlo runs are vectorized over thousands of deployments at once through
the same kernels the scalar API uses; each asserts within its Monte Carlo error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as lat

RUNS = 2000
INTERVALS = 120  # ten minutes of 5 s scrapes


def _mc_bound(alpha: float, runs: int) -> float:
    """alpha plus three Monte Carlo standard errors."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def _crossed(
    log_factors_per_interval: list[np.ndarray],
    alpha: float,
    weights: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Whether each run's e-process ever reached 1/alpha, and when (interval index or -1)."""
    total: np.ndarray | None = None
    first = np.full(log_factors_per_interval[0].shape[0], -1)
    for t, factors in enumerate(log_factors_per_interval):
        total = seq.accumulate(total, factors, t + 1)
        hit = (seq.log_e_value(total, weights) >= math.log(1 / alpha)) & (first < 0)
        first[hit] = t
    return first


def _vs_stable_runs(
    rng: np.random.Generator, canary_rate: np.ndarray, stable_rate: np.ndarray, share: np.ndarray
) -> list[np.ndarray]:
    """Per-interval factors for RUNS deployments; rates and canary share per interval."""
    out = []
    for t in range(INTERVALS):
        total = rng.poisson(500, RUNS)
        n_c = np.maximum(rng.binomial(total, share[t]), 1)
        n_s = np.maximum(total - n_c, 1)
        x_c = rng.binomial(n_c, canary_rate[t])
        x_s = rng.binomial(n_s, stable_rate[t])
        factors = seq.rate_vs_stable_log_factors(
            n_c, x_c, n_s, x_s, tolerance_ratio=1.2, tolerance_fraction=0.001
        )
        out.append(factors[:, None, :])
    return out


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_rate_vs_stable_false_alarms_stay_below_alpha_at_the_null_boundary(alpha: float) -> None:
    """Worst case: canary exactly at 1.2 x stable + 0.1 points, with drift, an incident
    hitting both versions, and the traffic split moving 5% -> 50% during the run."""
    rng = np.random.default_rng(7)
    time = np.arange(INTERVALS)
    stable = 0.01 * (1 + 0.5 * np.sin(time / 20))
    stable[40:50] = 0.2  # an incident on both versions
    canary = 1.2 * stable + 0.001
    share = np.where(time < 60, 0.05, 0.5)
    first = _crossed(_vs_stable_runs(rng, canary, stable, share), alpha)
    assert np.mean(first >= 0) <= _mc_bound(alpha, RUNS)


def test_rate_vs_stable_detects_one_to_five_percent_within_a_minute_at_100_rps() -> None:
    rng = np.random.default_rng(8)
    stable = np.full(INTERVALS, 0.01)
    first = _crossed(
        _vs_stable_runs(rng, np.full(INTERVALS, 0.05), stable, np.full(INTERVALS, 0.2)), 0.005
    )
    assert np.mean((first >= 0) & (first < 12)) >= 0.99


def test_rate_vs_stable_stays_quiet_on_an_incident_that_hits_both_versions() -> None:
    rng = np.random.default_rng(9)
    rates = np.full(INTERVALS, 0.01)
    rates[10:40] = 0.3
    first = _crossed(_vs_stable_runs(rng, rates, rates, np.full(INTERVALS, 0.2)), 0.01)
    assert np.mean(first >= 0) <= _mc_bound(0.01, RUNS)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_rate_vs_baseline_false_alarms_stay_below_alpha(alpha: float) -> None:
    rng = np.random.default_rng(10)
    null_rate = 1.2 * 0.01 + 0.001
    factors = [
        seq.rate_vs_baseline_log_factors(
            50, rng.binomial(50, null_rate, RUNS), null_rate=null_rate
        )[:, None, :]
        for _ in range(INTERVALS)
    ]
    assert np.mean(_crossed(factors, alpha) >= 0) <= _mc_bound(alpha, RUNS)


def test_rate_vs_baseline_power_against_one_to_ten_percent() -> None:
    rng = np.random.default_rng(11)
    null_rate = 1.2 * 0.01 + 0.001
    factors = [
        seq.rate_vs_baseline_log_factors(10, rng.binomial(10, 0.10, RUNS), null_rate=null_rate)[
            :, None, :
        ]
        for _ in range(60)
    ]
    first = _crossed(factors, 0.005)
    assert np.mean(first >= 0) >= 0.99
    assert np.median(first + 1) * 10 < 400  # requests; Wald's optimum is about 31


# --- latency -------------------------------------------------------------------------

LATENCY_RUNS = 500
BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])


def _slow_counts(rng: np.random.Generator, n: np.ndarray, shift: float) -> np.ndarray:
    """Requests above each boundary for log-normal latencies (median 100 ms, sigma 0.5)."""
    cells = np.diff(
        np.concatenate([[0.0], stats.norm.cdf((np.log(BOUNDS / 0.1) - shift) / 0.5), [1.0]])
    )
    counts = rng.multinomial(n, cells)
    return n[:, None] - np.cumsum(counts, axis=1)[:, :-1]


def _latency_runs(rng: np.random.Generator, shift: float, intervals: int) -> list[np.ndarray]:
    out = []
    seen = np.zeros((LATENCY_RUNS, len(BOUNDS) + 1))
    for _ in range(intervals):
        n_c = rng.poisson(100, LATENCY_RUNS)
        n_s = rng.poisson(400, LATENCY_RUNS)
        stable_slow = _slow_counts(rng, n_s, 0.0)
        out.append(
            lat.stable_latency_log_factors(
                n_c,
                _slow_counts(rng, n_c, shift),
                n_s,
                stable_slow,
                stable_seen=seen,
                tolerance_ratio=1.2,
                tolerance_fraction=0.001,
            )
        )
        seen = seen + np.diff(
            np.concatenate(
                [np.zeros((LATENCY_RUNS, 1)), n_s[:, None] - stable_slow, n_s[:, None]], 1
            ),
            axis=1,
        )
    return out


WEIGHTS = lat.stable_latency_weights(len(BOUNDS))


def test_latency_vs_stable_quiet_when_both_versions_are_equally_fast() -> None:
    first = _crossed(_latency_runs(np.random.default_rng(12), 0.0, 40), 0.05, WEIGHTS)
    assert np.mean(first >= 0) <= _mc_bound(0.05, LATENCY_RUNS)


def test_latency_vs_stable_detects_a_thirty_percent_slowdown() -> None:
    first = _crossed(_latency_runs(np.random.default_rng(13), math.log(1.3), 40), 0.005, WEIGHTS)
    assert np.mean(first >= 0) >= 0.99


def test_latency_vs_stable_ignores_a_faster_canary() -> None:
    first = _crossed(_latency_runs(np.random.default_rng(14), -math.log(1.5), 40), 0.05, WEIGHTS)
    assert np.mean(first >= 0) == 0.0


# --- exactness: the e-value's expectation, by enumeration ----------------------------


@pytest.mark.parametrize("true_rate", [0.013, 0.005, 0.0])
def test_baseline_e_value_has_expectation_at_most_one_by_enumeration(true_rate: float) -> None:
    n, null_rate = 400, 0.013
    x = np.arange(n + 1)
    log_e = seq.log_e_value(seq.rate_vs_baseline_log_factors(n, x, null_rate=null_rate)[:, None, :])
    expectation = float(np.sum(np.exp(stats.binom.logpmf(x, n, true_rate) + log_e)))
    if true_rate == null_rate:
        assert expectation == pytest.approx(1.0, abs=1e-9)
    else:
        assert expectation < 1.0


@pytest.mark.parametrize(("n_c", "n_s"), [(20, 380), (200, 200), (390, 10)])
def test_vs_stable_e_value_has_expectation_at_most_one_by_enumeration(n_c: int, n_s: int) -> None:
    """Two-version enumeration at the null boundary, Poisson and binomial counts."""
    p_s, r, d = 0.02, 1.2, 0.001
    p_c = r * p_s + d
    x_c, x_s = np.meshgrid(np.arange(80), np.arange(80), indexing="ij")
    log_e = seq.log_e_value(
        seq.rate_vs_stable_log_factors(n_c, x_c, n_s, x_s, tolerance_ratio=r, tolerance_fraction=d)[
            ..., None, :
        ]
    )
    poisson = stats.poisson.pmf(x_c, n_c * p_c) * stats.poisson.pmf(x_s, n_s * p_s)
    binomial = stats.binom.pmf(x_c, n_c, p_c) * stats.binom.pmf(x_s, n_s, p_s)
    assert float(np.sum(poisson * np.exp(log_e))) == pytest.approx(1.0, abs=1e-6)
    assert float(np.sum(binomial * np.exp(log_e))) <= 1.0 + 1e-9


@pytest.mark.parametrize("p_s", [0.02, 0.3, 0.5, 0.8])
@pytest.mark.parametrize(("r", "d"), [(1.0, 0.0), (1.0, 0.01), (1.2, 0.001)])
def test_share_difference_factor_has_expectation_at_most_one_by_enumeration(
    p_s: float, r: float, d: float
) -> None:
    """Binomial counts at the null boundary, every grid point separately."""
    n_c, n_s = 30, 90
    p_c = min(r * p_s + d, 1.0)
    x_c, x_s = np.meshgrid(np.arange(n_c + 1), np.arange(n_s + 1), indexing="ij")
    logs = seq.share_difference_log_factors(
        n_c, x_c, n_s, x_s, tolerance_ratio=r, tolerance_fraction=d
    )
    weights = stats.binom.pmf(x_c, n_c, p_c) * stats.binom.pmf(x_s, n_s, p_s)
    expectation = np.einsum("ij,ijk->k", weights, np.exp(logs))
    assert np.all(expectation <= 1.0 + 1e-12)


def test_phantom_error_factor_matches_brute_force_sum_over_phantom_counts() -> None:
    """The closed form integrates the conditional-binomial likelihood ratio over
    Poisson phantom stable errors; check it against the explicit sum."""
    n_c, x_c, n_s, x_s, r, d = 120.0, 4, 880.0, 9, 1.2, 0.001
    mu = n_s * d / r
    pi0 = r * n_c / (r * n_c + n_s)
    for phi, closed in zip(
        seq.PHI,
        seq.rate_vs_stable_log_factors(n_c, x_c, n_s, x_s, tolerance_ratio=r, tolerance_fraction=d),
        strict=True,
    ):
        pi1 = r * phi * n_c / (r * phi * n_c + n_s)
        z = np.arange(200)
        brute = np.sum(
            stats.poisson.pmf(z, mu) * (pi1 / pi0) ** x_c * ((1 - pi1) / (1 - pi0)) ** (x_s + z)
        )
        assert closed == pytest.approx(math.log(brute), rel=1e-9, abs=1e-9)


def test_scalar_api_matches_the_vectorized_kernel() -> None:
    rng = np.random.default_rng(15)
    n_c, n_s = rng.poisson(100, 30), rng.poisson(400, 30)
    x_c, x_s = rng.binomial(n_c, 0.03), rng.binomial(n_s, 0.01)
    state = seq.SequentialState()
    for args in zip(n_c, x_c, n_s, x_s, strict=True):
        update = seq.update_rate_vs_stable(
            state,
            canary_requests=float(args[0]),
            canary_errors=float(args[1]),
            stable_requests=float(args[2]),
            stable_errors=float(args[3]),
            alpha=0.01,
            tolerance_ratio=1.2,
            tolerance_points=0.1,
        )
        state = update.state
    factors = seq.rate_vs_stable_log_factors(
        n_c, x_c, n_s, x_s, tolerance_ratio=1.2, tolerance_fraction=0.001
    )
    total = None
    for t, row in enumerate(factors):
        total = seq.accumulate(total, row[None, :], t + 1)
    assert update.evidence["log_e_value"] == pytest.approx(float(seq.log_e_value(total)))
    assert state.canary_requests == float(n_c.sum())
    assert seq.SequentialState.from_mapping(state.to_mapping()) == state


def test_a_fault_that_starts_late_is_caught_without_winning_back_the_healthy_minutes() -> None:
    """Ten healthy minutes, then 1% -> 5%: the change-point mixture catches it within
    a minute; the plain product (a fault assumed from the start) would still be digging."""
    rng = np.random.default_rng(16)
    onset = 120
    canary = np.where(np.arange(2 * INTERVALS) < onset, 0.01, 0.05)
    stable = np.full(2 * INTERVALS, 0.01)
    factors = []
    for t in range(2 * INTERVALS):
        n_c = rng.poisson(500, 500)  # 100 canary requests/s, 5 s scrapes
        n_s = rng.poisson(2000, 500)
        x_c = rng.binomial(n_c, canary[t])
        x_s = rng.binomial(n_s, stable[t])
        factors.append(
            seq.rate_vs_stable_log_factors(
                n_c, x_c, n_s, x_s, tolerance_ratio=1.2, tolerance_fraction=0.001
            )[:, None, :]
        )
    first = _crossed(factors, 0.005)
    assert np.mean((first >= onset) & (first < onset + 12)) >= 0.99
    plain = np.cumsum(np.stack(factors), axis=0)
    plain_first = np.argmax(seq.log_e_value(plain) >= math.log(200), axis=0)
    assert np.median(plain_first) > np.median(first) + 12


def test_alpha_is_split_across_sequential_triggers() -> None:
    assert seq.alpha_per_trigger([0.01, 0.01, 0.02]) == pytest.approx(
        [0.01 / 3, 0.01 / 3, 0.02 / 3]
    )


# --- bad input ------------------------------------------------------------------------

GOOD = {
    "canary_requests": 100.0,
    "canary_errors": 50.0,
    "stable_requests": 900.0,
    "stable_errors": 9.0,
}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"canary_errors": math.nan}, "canary_errors is nan"),
        ({"stable_requests": -5.0}, "stable_requests is negative"),
        ({"stable_errors": None}, "stable_errors is missing"),
        ({"canary_requests": 0.0}, "no canary traffic"),
        ({"stable_requests": 0.0, "stable_errors": 0.0}, "no stable traffic"),
        ({"canary_errors": 101.0}, "more errors than requests"),
        ({"canary_requests": math.inf}, "canary_requests is inf"),
    ],
)
def test_bad_counts_never_update_or_fire(changes: dict[str, float | None], reason: str) -> None:
    start = seq.update_rate_vs_stable(
        seq.SequentialState(), **GOOD, alpha=0.01, tolerance_ratio=1.2, tolerance_points=0.1
    ).state
    update = seq.update_rate_vs_stable(
        start, **{**GOOD, **changes}, alpha=0.01, tolerance_ratio=1.2, tolerance_points=0.1
    )
    assert update.state == start
    assert reason in update.reason
    assert not update.reject


def test_overwhelming_evidence_rejects_and_is_reported() -> None:
    update = seq.update_rate_vs_stable(
        seq.SequentialState(), **GOOD, alpha=0.01, tolerance_ratio=1.2, tolerance_points=0.1
    )
    assert update.reject
    assert update.reason == ""
    assert update.evidence["e_value"] >= 100


def test_baseline_without_a_rate_or_with_a_tolerance_covering_everything_never_fires() -> None:
    common = {"canary_requests": 100.0, "canary_errors": 100.0, "alpha": 0.01}
    missing = seq.update_rate_vs_baseline(
        seq.SequentialState(), **common, baseline_rate=None, tolerance_ratio=1.2, tolerance_points=0
    )
    everything = seq.update_rate_vs_baseline(
        seq.SequentialState(), **common, baseline_rate=0.9, tolerance_ratio=1.2, tolerance_points=0
    )
    assert not missing.reject
    assert "baseline_rate is missing" in missing.reason
    assert not everything.reject
    assert "nothing to test" in everything.reason


def _buckets(counts: list[float], total: float) -> dict[float, float]:
    return {**dict(zip(BOUNDS.tolist(), counts, strict=False)), math.inf: total}


def test_latency_api_uses_every_common_boundary_and_rejects_a_big_slowdown() -> None:
    fast = _buckets([0, 0, 0, 10, 50, 95, 100, 100, 100, 100, 100], 100)
    slow = _buckets([0, 0, 0, 0, 0, 5, 30, 100, 100, 100, 100], 100)
    state = seq.SequentialState()
    for _ in range(3):
        update = lat.update_latency_vs_stable(
            state,
            canary_buckets=slow,
            stable_buckets=fast,
            alpha=0.01,
            tolerance_ratio=1.2,
            tolerance_points=0.1,
        )
        state = update.state
    assert update.reject
    assert state.boundaries == tuple(BOUNDS.tolist())


@pytest.mark.parametrize(
    ("canary", "reason"),
    [
        ({}, "no histogram buckets"),
        ({0.1: math.nan, math.inf: 10.0}, "has count nan"),
        ({0.1: 5.0}, "no +Inf bucket"),
        ({0.1: 20.0, math.inf: 10.0}, "more requests than the +Inf bucket"),
        ({0.1: 0.0, math.inf: 0.0}, "no requests"),
        ({0.2: 5.0, math.inf: 10.0}, "different buckets"),
    ],
)
def test_bad_buckets_never_update_or_fire(canary: dict[float, float], reason: str) -> None:
    update = lat.update_latency_vs_stable(
        seq.SequentialState(),
        canary_buckets=canary,
        stable_buckets={0.1: 5.0, math.inf: 10.0},
        alpha=0.01,
        tolerance_ratio=1.2,
        tolerance_points=0.1,
    )
    assert reason in update.reason
    assert not update.reject
    assert update.state == seq.SequentialState()


def test_latency_vs_baseline_uses_the_first_boundary_above_each_quantile() -> None:
    slow = _buckets([0, 0, 0, 0, 0, 5, 30, 100, 100, 100, 100], 100)
    state = seq.SequentialState()
    for _ in range(3):
        update = lat.update_latency_vs_baseline(
            state,
            canary_buckets=slow,
            baseline_quantiles={0.95: 0.2, 0.5: 0.09},
            alpha=0.01,
            tolerance_ratio=1.2,
            tolerance_points=0.1,
        )
        state = update.state
    assert state.boundaries == (0.1, 0.25)
    assert update.reject
