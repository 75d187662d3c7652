"""The promotion test: its false-promotion bound by simulation, its power, and no data."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from promotion_counts import measure
from scipy import special, stats

from rollguard.engine import promotion
from rollguard.errors import PolicyError
from rollguard.policy import Policy

PROMOTE = "promotion: {steps: [10, 50, 100], beta: %s, margin_ratio: 1.5}\n"
ERRORS = "error_rate_trigger: {increase: 50, compare_with: stable}\n"
LATENCY = "latency_trigger: {increase: 30, compare_with: stable}\n"
INTERVALS = 120
RUNS = 2000


def _ever_crosses(
    rng: np.random.Generator, p_canary: float, p_stable: float, beta: float, runs: int = RUNS
) -> float:
    """Share of simulated releases whose e-value ever reaches 1/beta within INTERVALS."""
    n_c = rng.poisson(50, size=(runs, INTERVALS)).astype(float) + 1
    n_s = rng.poisson(950, size=(runs, INTERVALS)).astype(float) + 1
    x_c = rng.binomial(n_c.astype(int), p_canary).astype(float)
    x_s = rng.binomial(n_s.astype(int), p_stable).astype(float)
    factors = promotion.vs_stable_log_factors(
        n_c, x_c, n_s, x_s, margin_ratio=1.5, margin_fraction=0.001
    )
    products = np.cumsum(factors, axis=1)  # (runs, intervals, grid)
    log_e = special.logsumexp(products, axis=-1) - math.log(promotion.PHI_DOWN.size)
    crossed: float = float(np.mean(np.max(log_e, axis=1) >= math.log(1 / beta)))
    return crossed


def test_a_release_at_the_margin_is_promoted_at_most_beta_of_the_time() -> None:
    """Worst case of the null: canary exactly 1.5 x stable + 0.1 points, watched 120 intervals."""
    beta = 0.05
    rng = np.random.default_rng(17)
    observed = _ever_crosses(rng, p_canary=1.5 * 0.01 + 0.001, p_stable=0.01, beta=beta)
    slack = 3 * math.sqrt(beta * (1 - beta) / RUNS)  # sampling error of the estimate
    assert observed <= beta + slack


def test_the_simulation_sees_a_broken_bound() -> None:
    """The same check on a canary slightly better than the margin: crossings far above beta.

    This is what the bound test would see if the factors were not valid for the null.
    """
    rng = np.random.default_rng(18)
    observed = _ever_crosses(rng, p_canary=0.011, p_stable=0.01, beta=0.05, runs=200)
    assert observed > 0.5


def test_the_bad_release_of_the_goals_is_not_promoted() -> None:
    """Errors 1 % -> 2 %: inside the null (>= 1.5 %), promoted at most beta of the time."""
    rng = np.random.default_rng(19)
    assert _ever_crosses(rng, p_canary=0.02, p_stable=0.01, beta=0.01) <= 0.01


def test_the_baseline_factor_keeps_its_mean_at_most_one_in_the_null() -> None:
    """Exact expectation of the binomial factor for rates at and above the null's."""
    n, m = 40, 0.03
    x = np.arange(n + 1)
    factors = np.exp(promotion.vs_rate_log_factors(n, x, null_rate=m))  # (n+1, grid)
    for p in (m, 0.05, 0.2):
        mean = stats.binom.pmf(x, n, p) @ factors
        assert np.all(mean <= 1 + 1e-9)


def _run(
    policy: Policy, intervals: int, canary: tuple[int, int], stable: tuple[int, int]
) -> promotion.PromotionVerdict:
    state = promotion.start(policy)
    verdict = None
    for i in range(1, intervals + 1):
        now = i * policy.analysis.interval
        verdict = promotion.update(
            policy, measure(policy, now, canary, stable), baseline=None, state=state, now=now
        )
        state = verdict.state
        if verdict.accepted:
            return verdict
    assert verdict is not None
    return verdict


def test_a_healthy_canary_is_accepted_with_its_evidence(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERRORS + LATENCY + PROMOTE % 0.01)
    verdict = _run(policy, 200, canary=(100, 1), stable=(1000, 10))
    assert verdict.accepted, verdict.reason
    tests = {item["test"]: item for item in verdict.evidence}
    assert set(tests) == {"error_rate_percent:stable", "latency_p95_ms:stable"}
    assert all(float(str(item["e_value"])) >= 100 for item in verdict.evidence)
    assert tests["latency_p95_ms:stable"]["boundary_seconds"] == 0.25


def test_a_worse_canary_is_not_accepted(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERRORS + PROMOTE % 0.01)
    verdict = _run(policy, 200, canary=(100, 2), stable=(1000, 10))
    assert not verdict.accepted
    assert "e-value" in verdict.reason


def test_no_data_never_promotes(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERRORS + PROMOTE % 0.01)
    state = promotion.start(policy)
    for i in range(1, 50):
        verdict = promotion.update(policy, {}, baseline=None, state=state, now=i * 5.0)
        state = verdict.state
        assert not verdict.accepted
    assert "no data yet" in verdict.reason
    assert verdict.evidence[0]["not_fed"] == "canary requests: not measured"


def test_no_canary_traffic_is_not_evidence(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERRORS + PROMOTE % 0.01)
    verdict = _run(policy, 100, canary=(0, 0), stable=(1000, 10))
    assert not verdict.accepted
    assert verdict.evidence[0]["intervals"] == 0


@pytest.mark.parametrize(
    ("promotion_yaml", "message"),
    [
        ("{steps: [10, 5, 100]}", "steps must rise"),
        ("{steps: [10, 50]}", "the last step must be 100"),
        ("{steps: [0, 100]}", "1-100"),
        ("{min_step_duration: 5m, max_step_duration: 1m}", "shorter than min_step_duration"),
        ("{margin_ratio: 1.0}", "leave no margin"),
        ("{hooks: {confirm_step: {timeout: 5s}}}", "exactly one of url: or command:"),
        ("{hooks: {confirm_step: {command: [/bin/true], secret_env: S}}}", "signs an HTTP hook"),
        ("{hooks: {pre_rollout: {url: 'http://h', secret_env: 'abc'}}}", "environment variable"),
    ],
)
def test_bad_promotion_sections_are_refused_with_the_field(
    make_policy: Callable[..., Policy], promotion_yaml: str, message: str
) -> None:
    with pytest.raises(PolicyError, match="promotion") as caught:
        make_policy(ERRORS + f"promotion: {promotion_yaml}\n")
    assert message in str(caught.value)


def test_promotion_needs_a_signal_it_can_test(make_policy: Callable[..., Policy]) -> None:
    with pytest.raises(PolicyError, match="nothing can show the canary is no worse"):
        make_policy("memory_trigger: {above: 500}\npromotion: {}\n")


def test_policy_explain_says_the_plan(make_policy: Callable[..., Policy]) -> None:
    from rollguard.policy.explain import explain

    hooks = "hooks: {confirm_step: {command: [/bin/true]}}, on_max_duration: rollback}\n"
    policy = make_policy(ERRORS + "promotion: {steps: [10, 100], beta: 0.02, " + hooks)
    said = explain(policy)[-1]
    assert said.startswith("promotion: the canary's share goes 10% -> 100%")
    assert "at most 0.02" in said
    assert "10 minutes rolls back; hooks: confirm_step." in said
