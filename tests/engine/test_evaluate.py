"""The engine: thresholds, persistence, priorities, baselines, no data, dry run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from rollguard.baseline import Baseline, BaselineMetrics
from rollguard.engine.decision import TriggerStatus, Verdict
from rollguard.engine.evaluate import Evaluation, evaluate, required_queries
from rollguard.engine.state import EngineState
from rollguard.policy import Action, Policy
from rollguard.signals import Measurement, Query, Signal, Version

ERROR_RATE = """
error_rate_trigger: {threshold: 5%, measurement_window: 5 minutes, action: immediate_rollback}
"""


def measure(
    policy: Policy, values: dict[tuple[Signal, Version], float | None], requests: float = 1000
) -> dict[Query, Measurement]:
    out = {}
    for query in required_queries(policy):
        value = values.get((query.signal, query.version))
        out[query] = (
            Measurement.no_data(query, 0.0, "nothing scraped")
            if value is None
            else Measurement.ok(query, 0.0, value, requests=requests)
        )
    return out


def run(
    policy: Policy,
    series: list[dict[tuple[Signal, Version], float | None]],
    baseline: Baseline | None = None,
    requests: float = 1000,
) -> list[Evaluation]:
    state = EngineState()
    evaluations = []
    for step, values in enumerate(series):
        evaluation = evaluate(
            policy,
            measure(policy, values, requests),
            baseline=baseline,
            state=state,
            now=step * 5.0,
        )
        state = evaluation.state
        evaluations.append(evaluation)
    return evaluations


CANARY_ERRORS = (Signal.ERROR_RATE_PERCENT, Version.CANARY)


@pytest.mark.parametrize(
    ("value", "fires"), [(4.0, False), (5.0, False), (5.01, True), (40.0, True)]
)
def test_error_rate_fires_above_the_threshold_only(
    make_policy: Callable[..., Policy], value: float, fires: bool
) -> None:
    policy = make_policy(ERROR_RATE)
    (evaluation,) = run(policy, [{CANARY_ERRORS: value}])
    assert (evaluation.decision.verdict is Verdict.ACT) is fires
    if fires:
        assert evaluation.decision.action is Action.IMMEDIATE_ROLLBACK
        assert evaluation.decision.trigger == "error_rate_trigger"
        evidence = evaluation.decision.evidence[0]
        assert evidence.value == value
        assert evidence.limit == 5.0
        assert evidence.window_seconds == 300.0


def test_persistence_needs_consecutive_breaches(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERROR_RATE.replace("}", ", persistence: 3}"))
    evaluations = run(
        policy,
        [{CANARY_ERRORS: 9.0}, {CANARY_ERRORS: 9.0}, {CANARY_ERRORS: 1.0}]
        + [{CANARY_ERRORS: 9.0}] * 3,
    )
    statuses = [e.results[0].status for e in evaluations]
    assert statuses == [
        TriggerStatus.BREACHING,
        TriggerStatus.BREACHING,
        TriggerStatus.OK,
        TriggerStatus.BREACHING,
        TriggerStatus.BREACHING,
        TriggerStatus.FIRING,
    ]
    assert evaluations[-1].state.of("error_rate_trigger").breach_since == 15.0


def test_highest_priority_wins_when_several_fire(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(
        ERROR_RATE
        + """
memory_trigger: {above: 100, window: 1m, action: scaling_and_rollback}
runtime_security: {unauthorized_access_attempts: 5 per minute}
latency_trigger: {threshold: 500ms, window: 1m, action: gradual_rollback}
"""
    )
    values = {
        (Signal.MEMORY_MB, Version.CANARY): 500.0,
        (Signal.LATENCY_P95_MS, Version.CANARY): 900.0,
        (Signal.UNAUTHORIZED_PER_MINUTE, Version.CANARY): 30.0,
        CANARY_ERRORS: 1.0,
    }
    (evaluation,) = run(policy, [values])
    assert evaluation.decision.action is Action.TRAFFIC_ISOLATION_AND_ROLLBACK
    values[CANARY_ERRORS] = 10.0
    (evaluation,) = run(policy, [values])
    assert evaluation.decision.action is Action.IMMEDIATE_ROLLBACK
    values[CANARY_ERRORS] = 1.0
    values[(Signal.UNAUTHORIZED_PER_MINUTE, Version.CANARY)] = 0.0
    (evaluation,) = run(policy, [values])
    assert evaluation.decision.action is Action.SCALING_AND_ROLLBACK


BASELINE = Baseline(
    timestamp=datetime(2026, 11, 1, tzinfo=UTC),
    metrics=BaselineMetrics(
        error_rate_percent=0.5, avg_latency_ms=80, p95_latency_ms=200, memory_mb=300
    ),
)


@pytest.mark.parametrize(
    ("latency", "memory", "expected"),
    [
        (259.0, 349.0, None),  # 200 * 1.3 = 260 and 300 + 50 = 350 are the limits
        (261.0, 349.0, "latency_trigger"),
        (259.0, 351.0, "memory_trigger"),
    ],
)
def test_relative_triggers_against_the_baseline(
    make_policy: Callable[..., Policy], latency: float, memory: float, expected: str | None
) -> None:
    policy = make_policy(
        """
baseline: {file: performance-baseline.json}
latency_trigger: {threshold: 30% increase from baseline, measurement_window: 3 minutes}
memory_trigger: {threshold: 50MB increase from baseline, measurement_window: 2 minutes}
"""
    )
    values = {
        (Signal.LATENCY_P95_MS, Version.CANARY): latency,
        (Signal.MEMORY_MB, Version.CANARY): memory,
    }
    (evaluation,) = run(policy, [values], baseline=BASELINE)
    assert evaluation.decision.trigger == expected
    limits = {e.trigger: e.limit for e in evaluation.decision.evidence}
    assert limits["latency_trigger"] == pytest.approx(260.0)
    assert limits["memory_trigger"] == pytest.approx(350.0)


def test_relative_trigger_against_the_stable_version(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(
        """
baseline: {compare_with: stable}
latency_trigger: {threshold: 30% increase from baseline, measurement_window: 3 minutes}
"""
    )
    stable = (Signal.LATENCY_P95_MS, Version.STABLE)
    canary = (Signal.LATENCY_P95_MS, Version.CANARY)
    (quiet, loud) = run(policy, [{stable: 100.0, canary: 129.0}, {stable: 100.0, canary: 131.0}])
    assert quiet.decision.verdict is Verdict.CONTINUE
    assert loud.decision.trigger == "latency_trigger"
    assert loud.decision.evidence[0].reference == 100.0
    assert loud.decision.evidence[0].reference_source == "stable"


def test_no_data_becomes_inconclusive_after_the_limit(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERROR_RATE)
    evaluations = run(policy, [{CANARY_ERRORS: None}] * 3)
    assert [e.results[0].status for e in evaluations] == [
        TriggerStatus.NO_DATA,
        TriggerStatus.NO_DATA,
        TriggerStatus.INCONCLUSIVE,
    ]
    assert evaluations[-1].decision.verdict is Verdict.INCONCLUSIVE
    assert "no data" in evaluations[-1].decision.reason


def test_inconclusive_can_be_made_to_roll_back(make_policy: Callable[..., Policy]) -> None:
    analysis = "persistence: 1, no_data_limit: 2, inconclusive_action: immediate_rollback"
    policy = make_policy(ERROR_RATE, analysis=analysis)
    evaluations = run(policy, [{CANARY_ERRORS: None}] * 2)
    assert evaluations[-1].decision.verdict is Verdict.ACT
    assert evaluations[-1].decision.action is Action.IMMEDIATE_ROLLBACK


def test_too_few_requests_waits_instead_of_judging(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERROR_RATE)
    (evaluation,) = run(policy, [{CANARY_ERRORS: 50.0}], requests=4)
    assert evaluation.results[0].status is TriggerStatus.WAITING
    assert evaluation.decision.verdict is Verdict.CONTINUE
    assert evaluation.state.of("error_rate_trigger").judged == 0


def test_dry_run_is_recorded_but_never_acts(make_policy: Callable[..., Policy]) -> None:
    # A policy needs one trigger that can act: memory stays healthy beside the dry run.
    policy = make_policy(
        ERROR_RATE.replace("}", ", dry_run: true}") + "memory_trigger: {above: 1e9}\n"
    )
    (evaluation,) = run(policy, [{CANARY_ERRORS: 50.0}])
    assert evaluation.results[0].status is TriggerStatus.DRY_RUN
    assert evaluation.decision.verdict is Verdict.CONTINUE
    assert evaluation.decision.action is Action.CONTINUE


def test_state_round_trips_through_a_dict(make_policy: Callable[..., Policy]) -> None:
    policy = make_policy(ERROR_RATE.replace("}", ", persistence: 3}"))
    (evaluation,) = run(policy, [{CANARY_ERRORS: 9.0}])
    restored = EngineState.from_dict(evaluation.state.as_dict())
    assert restored == evaluation.state
