"""The e-detector: start weights, the false-alarm bound over the longest watch, late
faults, and state that stays the same size however long the watch lasts.

Monte Carlo runs go through the engine's own kernels (``accumulate``,
``log_e_value``), many deployments at once, and assert within their Monte
Carlo error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bench.detection.core import api_and_kernels

from rollguard.engine import change_point as cp
from rollguard.engine import sequential as seq
from rollguard.engine import sequential_latency as lat
from rollguard.errors import PolicyError
from rollguard.policy import load_policy
from rollguard.policy.explain import explain
from rollguard.policy.load import parse_policy
from rollguard.policy.triggers import MAX_HORIZON_SECONDS, Detection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"
INTERVAL = 5.0  # seconds: the default analysis interval
HOUR = round(3600 / INTERVAL)  # the default horizon, in updates
LONGEST = round(MAX_HORIZON_SECONDS / INTERVAL)  # the longest horizon, in updates


def _mc_bound(alpha: float, runs: int) -> float:
    """alpha plus three Monte Carlo standard errors."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def _first_firing(
    chunks: Iterator[np.ndarray], alpha: float, horizon: int | None, runs: int
) -> np.ndarray:
    """Per run, the update (from 1) at which the e-value first reached 1/alpha, else 0.

    ``chunks`` yields per-update log-factors, shape ``(updates, runs, components, GRID)``.
    """
    threshold = math.log(1 / alpha)
    state: np.ndarray | None = None
    first = np.zeros(runs, dtype=int)
    t = 0
    for chunk in chunks:
        for factors in chunk:
            t += 1
            state = seq.accumulate(state, factors, t, horizon)
            # the mean over the grid reaches the threshold only where the largest does
            near = np.flatnonzero((state.max(axis=(-2, -1)) >= threshold) & (first == 0))
            if near.size:
                fired = seq.log_e_value(state[near]) >= threshold
                first[near[fired]] = t
    return first


def _error_factors(
    rng: np.random.Generator,
    runs: int,
    canary_rate: np.ndarray,
    stable_rate: np.ndarray,
    *,
    canary: int,
    stable: int,
    chunk: int = 500,
) -> Iterator[np.ndarray]:
    """Error-rate factors vs the stable (the example policy's tolerance), per update."""
    for start in range(0, len(canary_rate), chunk):
        rates = slice(start, start + chunk)
        size = (len(canary_rate[rates]), runs)
        x_c = rng.binomial(canary, canary_rate[rates, None], size)
        x_s = rng.binomial(stable, stable_rate[rates, None], size)
        factors = seq.rate_vs_stable_log_factors(
            canary, x_c, stable, x_s, tolerance_ratio=1.2, tolerance_fraction=0.001
        )
        yield factors[:, :, None, :]


def _at_the_tolerance(updates: int) -> tuple[np.ndarray, np.ndarray]:
    """A healthy canary at its worst: exactly 1.2 x stable + 0.1 points, with the stable's
    rate drifting (an hourly swing) and an incident hitting both versions."""
    t = np.arange(updates)
    stable = 0.01 * (1 + 0.5 * np.sin(2 * math.pi * t / HOUR))
    stable[(t % HOUR >= 300) & (t % HOUR < 360)] = 0.2
    return 1.2 * stable + 0.001, stable


# --- the weights ------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [None, 1, 12, HOUR, LONGEST])
def test_start_weights_sum_to_exactly_one(horizon: int | None) -> None:
    """The bound rests on this: the weights spent so far plus those still to come <= 1."""
    last = 200_000
    spent = float(np.exp(cp.log_start_weight(np.arange(1, last + 1), horizon)).sum())
    # the sum over k > last of 1 / (k (k + 1)), or of K / (2 H_K k (k - 1))
    rest = 1 / (last + 1) if horizon is None else horizon / (2 * cp.harmonic(horizon) * last)
    assert spent + rest == pytest.approx(1.0, abs=1e-12)


def test_a_fault_from_the_start_costs_what_it_did_and_a_late_one_far_less() -> None:
    onsets = np.array([1, 13, 61, 361])  # the first update, then 1, 5 and 30 minutes in
    mixture, detector = cp.onset_cost(onsets), cp.onset_cost(onsets, HOUR)
    assert detector[0] == pytest.approx(mixture[0]) == pytest.approx(math.log(2))
    assert detector[1] == pytest.approx(mixture[1], abs=0.05)
    assert mixture[2] - detector[2] > 1.4  # nats saved five minutes in
    assert mixture[3] - detector[3] > 3.2  # and thirty
    inside = cp.onset_cost(np.arange(2, HOUR + 1), HOUR)
    assert inside == pytest.approx(np.log(2 * cp.harmonic(HOUR) * np.arange(2, HOUR + 1)))


def test_past_the_horizon_the_weights_continue_the_same_curve() -> None:
    inside = float(cp.log_start_weight(HOUR, HOUR))
    past = float(cp.log_start_weight(HOUR + 1, HOUR))
    assert past - inside == pytest.approx(math.log(HOUR / (HOUR + 1)))  # as 1/k would
    assert float(cp.log_start_weight(10 * HOUR, HOUR)) < past - 2 * math.log(9)


# --- the guarantee ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)  # 17,280 updates, much slower under load
def test_false_rollbacks_stay_below_alpha_over_the_longest_supported_watch() -> None:
    """24 hours of 5 s updates (the longest horizon) of a canary at the edge of its
    tolerance, through drift and daily incidents: it fires in at most alpha of the runs.

    A detector that is not normalized over its horizon (the weights of a
    Shiryaev-Roberts e-detector, 1/k, compared with 1/alpha) fired in 17.5%
    of these runs at alpha = 0.05; this test then fails.
    """
    runs, alpha = 200, 0.05
    canary, stable = _at_the_tolerance(LONGEST)
    rng = np.random.default_rng(18)
    factors = _error_factors(rng, runs, canary, stable, canary=50, stable=200)
    first = _first_firing(factors, alpha, LONGEST, runs)
    assert np.mean(first > 0) <= _mc_bound(alpha, runs)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_false_rollbacks_stay_below_alpha_long_past_the_horizon(alpha: float) -> None:
    """A 20-minute horizon watched for an hour: the weights past it keep the bound."""
    runs, horizon = 1000, HOUR // 3
    canary, stable = _at_the_tolerance(HOUR)
    rng = np.random.default_rng(19)
    factors = _error_factors(rng, runs, canary, stable, canary=50, stable=200)
    first = _first_firing(factors, alpha, horizon, runs)
    assert np.mean(first > 0) <= _mc_bound(alpha, runs)


# --- late faults ------------------------------------------------------------------------


def _late_errors(onset: int, runs: int, seed: int) -> Iterator[np.ndarray]:
    """The benchmark's late fault: errors 1% -> 5% from update ``onset`` on, 100 canary
    requests/s at a 20% share (500 canary, 2,000 stable requests per 5 s update)."""
    updates = onset + 24
    canary = np.where(np.arange(1, updates + 1) < onset, 0.01, 0.05)
    return _error_factors(
        np.random.default_rng(seed),
        runs,
        canary,
        np.full(updates, 0.01),
        canary=500,
        stable=2000,
    )


@pytest.mark.parametrize("minutes", [1, 5, 30])
def test_a_late_error_fault_is_caught_within_two_updates_of_its_onset(minutes: int) -> None:
    runs = 400
    onset = minutes * 12 + 1
    first = _first_firing(_late_errors(onset, runs, seed=minutes), 0.005, HOUR, runs)
    assert np.all((first == 0) | (first >= onset))  # nothing before the onset
    delay = np.where(first > 0, first - onset + 1, 10**6)
    assert np.median(delay) <= 2  # 10 s; the first update after the onset ends 5 s in
    assert np.mean(delay <= 3) >= 0.9


def test_thirty_minutes_in_the_e_detector_needs_fewer_requests_than_the_mixture() -> None:
    """10 canary requests/s (50 per update): the 3.3 nats saved show in requests."""
    runs, onset = 1000, 361
    updates = onset + 60
    canary = np.where(np.arange(1, updates + 1) < onset, 0.01, 0.05)
    delays = {}
    for horizon in (None, HOUR):
        rng = np.random.default_rng(20)  # the same data for both detectors
        factors = _error_factors(rng, runs, canary, np.full(updates, 0.01), canary=50, stable=200)
        first = _first_firing(factors, 0.005, horizon, runs)
        delays[horizon] = np.where(first > 0, first - onset + 1, 10**6)
    assert np.median(delays[HOUR]) < np.median(delays[None]) * 0.85
    # the same data, with more weight on the onset: rarely later, never by much
    assert np.mean(delays[HOUR] <= delays[None]) >= 0.99


# --- bounded state ------------------------------------------------------------------------


def test_state_stays_the_same_size_however_long_the_watch() -> None:
    """No per-onset state: after ten horizons of updates the state has the same keys and
    size as after the first, every value finite, and a fault is still caught."""
    horizon = 60
    state = seq.SequentialState()
    sizes = set()
    common = {"alpha": 0.005, "tolerance_ratio": 1.2, "tolerance_points": 0.1}
    for t in range(10 * horizon):
        update = seq.update_rate_vs_stable(
            state,
            canary_requests=500.0,
            canary_errors=5.0 if t % 7 else 8.0,
            stable_requests=2000.0,
            stable_errors=20.0,
            horizon=horizon,
            **common,
        )
        assert not update.reject
        state = update.state
        sizes.add(len(json.dumps(state.to_mapping())))
        assert all(math.isfinite(v) for v in state.to_mapping().values())
    assert len(set(state.to_mapping())) == 6 + seq.GRID_SIZE  # 5 totals, the horizon
    assert max(sizes) - min(sizes) < 64  # digits come and go; no entry is added
    for _ in range(3):
        update = seq.update_rate_vs_stable(
            state,
            canary_requests=500.0,
            canary_errors=40.0,
            stable_requests=2000.0,
            stable_errors=20.0,
            horizon=horizon,
            **common,
        )
        state = update.state
    assert update.reject


def test_latency_state_stays_the_same_size_however_long_the_watch() -> None:
    buckets = {0.05: 20.0, 0.1: 50.0, 0.25: 90.0, 0.5: 100.0, math.inf: 100.0}
    stable = {key: 4 * value for key, value in buckets.items()}
    state = seq.SequentialState()
    keys = None
    for _ in range(300):
        update = lat.update_latency_vs_stable(
            state,
            canary_buckets=buckets,
            stable_buckets=stable,
            alpha=0.005,
            tolerance_ratio=1.0,
            tolerance_points=1.0,
            horizon=30,
        )
        state = update.state
        keys = keys or set(state.to_mapping())
        assert set(state.to_mapping()) == keys
    assert state.intervals == 300


def test_a_stored_state_of_the_other_detector_is_not_mixed_in() -> None:
    """Weights of two schedules could sum past 1; such a state is left as it is."""
    counts = {
        "canary_requests": 500.0,
        "canary_errors": 5.0,
        "stable_requests": 2000.0,
        "stable_errors": 20.0,
        "alpha": 0.005,
        "tolerance_ratio": 1.2,
        "tolerance_points": 0.1,
    }
    mixture = seq.update_rate_vs_stable(seq.SequentialState(), **counts).state
    assert "horizon" not in mixture.to_mapping()  # stored as before this detector
    update = seq.update_rate_vs_stable(mixture, **counts, horizon=HOUR)
    assert update.reason == "the stored state belongs to another detector"
    assert update.state == mixture
    detector = seq.update_rate_vs_stable(seq.SequentialState(), **counts, horizon=HOUR).state
    assert seq.SequentialState.from_mapping(detector.to_mapping()) == detector
    assert seq.update_rate_vs_stable(detector, **counts).reason


@pytest.mark.parametrize("horizon", [None, 12])
def test_per_trigger_api_matches_the_kernels(horizon: int | None) -> None:
    evidence, kernel = api_and_kernels(horizon, seed=21)
    assert evidence["log_e_value"] == pytest.approx(kernel)
    assert evidence.get("horizon_updates") == horizon


# --- the policy surface -------------------------------------------------------------------


def _detection(text: str) -> Detection:
    return (
        parse_policy(
            "target: {deployment: web}\nmetrics: {provider: replay, file: s.csv}\n"
            "baseline: {compare_with: stable}\n"
            f"error_rate_trigger: {{threshold: 5%, detection: {text}}}\n",
            source="detector.yaml",
        )
        .rules[0]
        .detection
    )


def test_the_horizon_counts_analysis_intervals_and_defaults_to_an_hour() -> None:
    assert _detection("{method: sequential}").horizon_updates(INTERVAL) == HOUR  # the default
    assert _detection("{method: sequential, detector: mixture}").horizon_updates(5.0) is None
    assert _detection("{method: sequential, detector: e-detector}").horizon_updates(5.0) == HOUR
    chosen = _detection("{method: sequential, detector: e-detector, horizon: 20 minutes}")
    assert chosen.horizon_updates(5.0) == 240
    assert chosen.horizon_updates(7.0) == 172  # a partial interval still counts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{method: sequential, detector: mixture, horizon: 20 minutes}",
            "horizon applies to detector: e-detector",
        ),
        ("{method: sequential, detector: e-detector, horizon: 25 hours}", "horizon"),
        ("{method: sequential, detector: cusum}", "detector"),
    ],
)
def test_a_detector_the_engine_cannot_run_is_one_readable_policy_error(
    text: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        _detection(text)
    assert "detector.yaml" in str(caught.value)


def test_policy_explain_says_when_the_evidence_restarts() -> None:
    policy = load_policy(EXAMPLE)
    error_rate, latency = explain(policy)[:2]
    for line in (error_rate, latency):
        assert "an e-detector: its evidence restarts at every interval" in line
        assert "up to 60 minutes in" in line
        assert "at most 0.005 however long it watches" in line
    mixture = parse_policy(
        EXAMPLE.read_text().replace(
            ", detector: e-detector, horizon: 60 minutes", ", detector: mixture"
        ),
        source="mixture.yaml",
    )
    assert "e-detector" not in explain(mixture)[0]
    assert "e-detector" in explain(mixture)[1]  # the latency trigger kept it
