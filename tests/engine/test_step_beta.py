"""``step_beta``: looser steps before the last, and a last step that checks the evidence since
every step began, so a release bad from any step on is still promoted at most ``beta`` of the
time (checked by simulation through the engine's own update)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from promotion_counts import measure

from rollguard.engine import promotion
from rollguard.errors import PolicyError
from rollguard.policy import Policy

ERRORS = "error_rate_trigger: {increase: 50, compare_with: stable}\n"
PROMOTE = "promotion: {steps: [10, 50, 100], beta: %s, step_beta: %s, margin_ratio: 2}\n"


def _feed(
    policy: Policy,
    state: promotion.PromotionState,
    at: int,
    canary: tuple[int, int],
    stable: tuple[int, int] = (1000, 10),
    *,
    final: bool = False,
) -> promotion.PromotionVerdict:
    now = at * policy.analysis.interval
    measured = measure(policy, now, canary, stable)
    return promotion.update(policy, measured, baseline=None, state=state, now=now, final=final)


def test_a_step_before_the_last_moves_on_at_step_beta(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERRORS + PROMOTE % (0.01, 0.5))
    state, at = promotion.start(policy), 0
    while True:
        at += 1
        verdict = _feed(policy, state, at, canary=(100, 1))
        if verdict.accepted:
            break
        state = verdict.state
    [evidence] = verdict.evidence
    assert 2 <= float(str(evidence["e_value"])) < 100
    assert (evidence["threshold"], evidence["bound"]) == (2, "step_beta")
    assert verdict.reason == "every test at or above 1/step_beta = 2"
    # The same interval as the last step's would not move: it needs 1/beta.
    last = _feed(policy, state, at, canary=(100, 1), final=True)
    assert not last.accepted
    assert "< 1/beta = 100" in last.reason
    assert (last.evidence[0]["threshold"], last.evidence[0]["bound"]) == (100, "beta")


def test_the_last_step_needs_the_evidence_since_every_step_began(
    make_policy: Callable[..., Policy],
) -> None:
    policy = make_policy(ERRORS + PROMOTE % (0.01, 0.5))
    state = promotion.start(policy)
    for at in range(1, 21):  # the first step's canary is worse: its evidence falls
        state = _feed(policy, state, at, canary=(100, 3)).state
    state = promotion.restart(state)  # moved on anyway (say on_max_duration: promote)
    at = 20
    while math.exp(state.tests[0].log_e_value()) < 100:  # this step alone: no worse
        at += 1
        state = _feed(policy, state, at, canary=(100, 0)).state
    last = _feed(policy, state, at + 1, canary=(100, 0), final=True)
    [evidence] = last.evidence
    [since_first] = evidence["earlier_steps_e_values"]  # type: ignore[misc]
    assert float(str(evidence["e_value"])) >= 100
    assert since_first < 100
    assert not last.accepted
    assert "e-value since a step began" in last.reason


def _promoted_share(policy: Policy, rng: np.random.Generator, runs: int, *, pooled: bool) -> float:
    """Releases healthy at their first step (30 intervals, 1 % on both), then exactly at the
    margin (2 x stable) at the last for 60: the share the last step's check ever accepts, or
    (``pooled``) the share whose evidence kept since the start ever crosses 1/beta."""
    assert policy.promotion is not None
    threshold = math.log(1 / policy.promotion.beta)
    promoted = 0
    for _ in range(runs):
        state = promotion.start(policy)
        for at in range(1, 31):
            n_c, n_s = 100, 1000
            canary, stable = (n_c, rng.binomial(n_c, 0.01)), (n_s, rng.binomial(n_s, 0.01))
            state = _feed(policy, state, at, canary, stable).state
        state = promotion.restart(state)
        for at in range(31, 91):
            canary = (100, int(rng.binomial(100, 0.02)))
            stable = (1000, int(rng.binomial(1000, 0.01)))
            verdict = _feed(policy, state, at, canary, stable, final=True)
            state = verdict.state
            [test] = state.tests
            crossed = promotion.log_e(test.earlier[0]) >= threshold if pooled else False
            if crossed or (not pooled and verdict.accepted):
                promoted += 1
                break
    return promoted / runs


@pytest.mark.slow
def test_a_release_bad_from_the_last_step_is_promoted_at_most_beta_of_the_time(
    make_policy: Callable[..., Policy],
) -> None:
    beta, runs = 0.1, 300
    policy = make_policy(ERRORS + PROMOTE % (beta, 1))
    observed = _promoted_share(policy, np.random.default_rng(23), runs, pooled=False)
    assert observed <= beta + 3 * math.sqrt(beta * (1 - beta) / runs)


def test_the_simulation_sees_evidence_kept_across_steps_break_the_bound(
    make_policy: Callable[..., Policy],
) -> None:
    """The first step's evidence alone, fed on through the bad step, crosses far above beta:
    what the last step's check would allow if it looked only there."""
    policy = make_policy(ERRORS + PROMOTE % (0.1, 1))
    assert _promoted_share(policy, np.random.default_rng(24), 100, pooled=True) > 0.3


def test_step_beta_below_beta_is_refused(make_policy: Callable[..., Policy]) -> None:
    with pytest.raises(PolicyError, match="step_beta"):
        make_policy(ERRORS + PROMOTE % (0.05, 0.01))
