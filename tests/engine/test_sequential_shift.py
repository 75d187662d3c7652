"""The all-bucket shift factor: exact expectation by enumeration, validity at the
tolerance's worst case by Monte Carlo, power, and the per-trigger API."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as lat
from rollguard.engine import sequential_shift as shift

BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])


def _cells(log_shift: float) -> np.ndarray:
    """Bucket probabilities of log-normal latencies (median 100 ms, sigma 0.5)."""
    cdf = stats.norm.cdf((np.log(BOUNDS / 0.1) - log_shift) / 0.5)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _band_edge(cells: np.ndarray, d: float) -> np.ndarray:
    """The slowest distribution a Kolmogorov tolerance ``d`` allows: ``d`` of the
    fastest requests moved to the slowest bucket (every tail raised by ``d``)."""
    out = cells.copy()
    moved = 0.0
    for j in range(len(out) - 1):
        take = min(out[j], d - moved)
        out[j] -= take
        moved += take
    out[-1] += moved
    return out


def _multinomials(n: int, cells: int) -> list[tuple[int, ...]]:
    return [c for c in itertools.product(range(n + 1), repeat=cells) if sum(c) == n]


@pytest.mark.parametrize("d", [0.0, 0.1])
def test_expectation_is_at_most_one_by_enumeration(d: float) -> None:
    """Every outcome of 2 canary and 3 stable requests over 3 buckets, summed exactly."""
    stable = np.array([0.5, 0.3, 0.2])
    canary = _band_edge(stable, d)
    scores = np.array([-1.0, 0.2, 1.5])
    for_grid = np.zeros(seq.GRID_SIZE)
    for c in _multinomials(2, 3):
        for s in _multinomials(3, 3):
            prob = stats.multinomial.pmf(c, 2, canary) * stats.multinomial.pmf(s, 3, stable)
            factors = shift.shift_log_factors(
                np.array(c), np.array(s), scores, tolerance_ratio=1.0, tolerance_fraction=d
            )
            for_grid += prob * np.exp(factors)
    assert np.all(for_grid <= 1 + 1e-12)
    assert for_grid.max() > 0.5  # the sum covered the outcomes


def test_expectation_reaches_one_when_nothing_differs() -> None:
    """Without tolerance and with scores that do not separate anything, E[f] = 1."""
    stable = np.array([0.5, 0.3, 0.2])
    total = 0.0
    for c in _multinomials(2, 3):
        for s in _multinomials(3, 3):
            prob = stats.multinomial.pmf(c, 2, stable) * stats.multinomial.pmf(s, 3, stable)
            factors = shift.shift_log_factors(
                np.array(c), np.array(s), np.zeros(3), tolerance_ratio=1.0, tolerance_fraction=0
            )
            total += prob * float(np.exp(factors[0]))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_normal_scores_rise_with_the_bucket_and_stop_at_the_tolerance() -> None:
    seen = np.array([10.0, 0.0, 80.0, 9.0, 1.0])
    scores = shift.normal_scores(seen, 0.02)
    assert np.all(np.diff(scores) >= 0)
    assert scores[-1] == pytest.approx(stats.norm.ppf(0.98))  # mid-rank 0.995, capped
    assert scores[2] == pytest.approx(stats.norm.ppf(0.5))
    assert np.all(shift.normal_scores(np.zeros(5), 0.02) == 0)


def test_cells_from_tails_recovers_the_counts() -> None:
    counts = np.array([[3.0, 0.0, 5.0, 2.0], [0.0, 1.0, 0.0, 0.0]])
    tails = counts.sum(1)[:, None] - np.cumsum(counts, 1)[:, :-1]
    assert np.array_equal(shift.cells_from_tails(counts.sum(1), tails), counts)


def _shift_runs(
    rng: np.random.Generator, canary_cells: np.ndarray, runs: int, intervals: int, d: float
) -> np.ndarray:
    """First interval at which the shift-only e-process reaches 1/alpha (alpha 0.05), or -1."""
    stable_cells = _cells(0.0)
    seen = np.zeros((runs, len(stable_cells)))
    total: np.ndarray | None = None
    first = np.full(runs, -1)
    for t in range(intervals):
        n_c, n_s = rng.poisson(100, runs), rng.poisson(400, runs)
        c = rng.multinomial(n_c, canary_cells)
        s = rng.multinomial(n_s, stable_cells)
        factors = shift.shift_log_factors(
            c,
            s,
            shift.normal_scores(seen, d),
            tolerance_ratio=1.0,
            tolerance_fraction=d,
        )
        seen = seen + s
        total = seq.accumulate(total, factors[:, None, :], t + 1)
        hit = (seq.log_e_value(total) >= math.log(1 / 0.05)) & (first < 0)
        first[hit] = t
    return first


@pytest.mark.parametrize("d", [0.0, 0.01])
def test_false_alarms_stay_below_alpha_at_the_tolerance_edge(d: float) -> None:
    runs = 2000
    first = _shift_runs(np.random.default_rng(21), _band_edge(_cells(0.0), d), runs, 40, d)
    assert np.mean(first >= 0) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_detects_a_quarter_sigma_shift_sooner_than_the_boundaries_alone() -> None:
    """A 0.25 sigma slowdown, tolerance 1 point: the shift factor alone against the
    per-boundary mixture alone, on the same requests."""
    rng = np.random.default_rng(22)
    runs, d = 400, 0.01
    canary, stable = _cells(0.125), _cells(0.0)
    seen = np.zeros((runs, len(stable)))
    shift_total: np.ndarray | None = None
    bound_total: np.ndarray | None = None
    shift_first, bound_first = np.full(runs, -1), np.full(runs, -1)
    for t in range(60):
        c = rng.multinomial(np.full(runs, 20), canary)
        s = rng.multinomial(np.full(runs, 80), stable)
        tails_c = 20 - np.cumsum(c, 1)[:, :-1]
        tails_s = 80 - np.cumsum(s, 1)[:, :-1]
        every = lat.stable_latency_log_factors(
            np.full(runs, 20.0),
            tails_c,
            np.full(runs, 80.0),
            tails_s,
            stable_seen=seen,
            tolerance_ratio=1.0,
            tolerance_fraction=d,
        )
        seen = seen + s
        shift_total = seq.accumulate(shift_total, every[:, -1:, :], t + 1)
        bound_total = seq.accumulate(bound_total, every[:, :-1, :], t + 1)
        for total, first in ((shift_total, shift_first), (bound_total, bound_first)):
            hit = (seq.log_e_value(total) >= math.log(200)) & (first < 0)
            first[hit] = t
    assert np.mean(shift_first >= 0) > 0.5
    shift_median = np.median(np.where(shift_first >= 0, shift_first, 10**6))
    bound_median = np.median(np.where(bound_first >= 0, bound_first, 10**6))
    assert shift_median < bound_median


def test_per_trigger_api_matches_the_kernels() -> None:
    """Interval by interval through update_latency_vs_stable, against the vectorized path."""
    rng = np.random.default_rng(23)
    stable, canary = _cells(0.0), _cells(0.2)
    state = seq.SequentialState()
    seen = np.zeros(len(stable))
    kernel: np.ndarray | None = None
    update = None
    for t in range(6):
        c, s = rng.multinomial(60, canary), rng.multinomial(240, stable)
        cum_c, cum_s = np.cumsum(c)[:-1], np.cumsum(s)[:-1]
        update = lat.update_latency_vs_stable(
            state,
            canary_buckets={**dict(zip(BOUNDS, map(float, cum_c), strict=True)), math.inf: 60.0},
            stable_buckets={**dict(zip(BOUNDS, map(float, cum_s), strict=True)), math.inf: 240.0},
            alpha=0.005,
            tolerance_ratio=1.0,
            tolerance_points=1.0,
        )
        assert update.reason == ""
        state = update.state
        factors = lat.stable_latency_log_factors(
            60.0,
            60 - cum_c,
            240.0,
            240 - cum_s,
            stable_seen=seen,
            tolerance_ratio=1.0,
            tolerance_fraction=0.01,
        )
        seen = seen + s
        kernel = seq.accumulate(kernel, factors, t + 1)
    assert update is not None
    assert kernel is not None
    expected = float(seq.log_e_value(kernel, lat.stable_latency_weights(len(BOUNDS))))
    assert update.evidence["log_e_value"] == pytest.approx(expected, abs=1e-9)
    assert state.stable_cells == tuple(seen)
    restored = seq.SequentialState.from_mapping(state.to_mapping())
    assert restored == state
