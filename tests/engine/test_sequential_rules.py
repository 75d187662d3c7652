"""Sequential detection through the engine: queries, firing, no-data, both methods."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rollguard.engine import sequential_rules
from rollguard.engine.decision import TriggerStatus, Verdict
from rollguard.engine.evaluate import Evaluation, evaluate, required_queries
from rollguard.engine.state import EngineState
from rollguard.errors import PolicyError
from rollguard.policy import load_policy
from rollguard.policy.actions import Action
from rollguard.policy.load import parse_policy
from rollguard.policy.model import Policy
from rollguard.signals import Measurement, Query, Signal, Version

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"
BOUNDS = [0.05, 0.1, 0.25, 0.5, 1.0]


@pytest.fixture
def policy() -> Policy:
    return load_policy(EXAMPLE)


def _buckets(n: int, slow_share: float) -> dict[float, float]:
    """Cumulative buckets: half the fast requests under 0.1 s, the slow ones above 0.25 s."""
    slow = round(n * slow_share)
    fast = n - slow
    return {0.05: fast // 2, 0.1: fast, 0.25: fast, 0.5: n, 1.0: n, math.inf: n}


def _measurements(
    policy: Policy,
    now: float,
    *,
    canary: tuple[int, int],
    stable: tuple[int, int],
    slow: tuple[float, float] = (0.1, 0.1),
    missing: set[Query] | None = None,
) -> dict[Query, Measurement]:
    out: dict[Query, Measurement] = {}
    for query in required_queries(policy):
        requests, errors = canary if query.version is Version.CANARY else stable
        share = slow[0] if query.version is Version.CANARY else slow[1]
        if missing and query in missing:
            out[query] = Measurement.no_data(query, now, "scrape failed")
        elif query.signal is Signal.REQUESTS:
            out[query] = Measurement.ok(query, now, requests, requests=requests)
        elif query.signal is Signal.ERRORS:
            out[query] = Measurement.ok(query, now, errors, requests=requests)
        elif query.signal is Signal.LATENCY_BUCKETS:
            buckets = _buckets(requests, share)
            out[query] = Measurement.ok(query, now, requests, requests=requests, buckets=buckets)
        elif query.signal is Signal.ERROR_RATE_PERCENT:
            out[query] = Measurement.ok(query, now, 100 * errors / requests, requests=requests)
        elif query.signal is Signal.LATENCY_P95_MS:
            out[query] = Measurement.ok(query, now, 120.0, requests=requests)
        else:
            out[query] = Measurement.ok(query, now, 200.0)
    return out


def _run(policy: Policy, steps: int, **counts: object) -> list[Evaluation]:
    state = EngineState()
    out = []
    for i in range(steps):
        now = 5.0 * (i + 1)
        evaluation = evaluate(
            policy,
            _measurements(policy, now, **counts),  # type: ignore[arg-type]
            baseline=None,
            state=state,
            now=now,
        )
        state = evaluation.state
        out.append(evaluation)
    return out


def test_required_queries_ask_per_interval_counts_for_both_versions(policy: Policy) -> None:
    wanted = set(required_queries(policy))
    for signal in (Signal.REQUESTS, Signal.ERRORS, Signal.LATENCY_BUCKETS):
        for version in Version:
            assert Query(signal, version, policy.analysis.interval) in wanted


def test_alpha_is_shared_by_the_policys_sequential_triggers(policy: Policy) -> None:
    alphas = [sequential_rules.alpha_for(policy, r) for r in policy.rules]
    sequential = [r for r in policy.rules if sequential_rules.is_sequential(r)]
    assert len(sequential) == 2
    assert sum(a for a, r in zip(alphas, policy.rules, strict=True) if r in sequential) == (
        pytest.approx(0.01)
    )


def test_a_canary_with_eight_percent_errors_is_rolled_back_within_a_few_intervals(
    policy: Policy,
) -> None:
    evaluations = _run(policy, 10, canary=(500, 40), stable=(2000, 20))
    acted = [e for e in evaluations if e.decision.verdict is Verdict.ACT]
    assert acted, "the sequential test never fired"
    first = acted[0]
    assert first.decision.trigger == "error_rate_trigger"
    assert first.decision.action is Action.IMMEDIATE_ROLLBACK
    evidence = next(e for e in first.decision.evidence if e.trigger == "error_rate_trigger")
    assert evidence.method == "sequential"
    assert evidence.statistic["e_value"] >= 1 / sequential_rules.alpha_for(policy, policy.rules[0])
    assert "e-value" in first.decision.reason


def test_a_canary_as_good_as_stable_is_never_rolled_back(policy: Policy) -> None:
    rng = np.random.default_rng(3)
    state = EngineState()
    for i in range(200):
        now = 5.0 * (i + 1)
        errors = (int(rng.binomial(500, 0.01)), int(rng.binomial(2000, 0.01)))
        measured = _measurements(policy, now, canary=(500, errors[0]), stable=(2000, errors[1]))
        evaluation = evaluate(policy, measured, baseline=None, state=state, now=now)
        state = evaluation.state
        assert evaluation.decision.verdict is Verdict.CONTINUE
    assert state.of("error_rate_trigger").judged == 200


def test_a_slower_canary_fires_the_latency_trigger(policy: Policy) -> None:
    evaluations = _run(policy, 10, canary=(500, 5), stable=(2000, 20), slow=(0.3, 0.1))
    acted = next(e for e in evaluations if e.decision.verdict is Verdict.ACT)
    assert acted.decision.trigger == "latency_trigger"
    assert acted.decision.action is Action.GRADUAL_ROLLBACK


def test_missing_stable_counts_fall_back_to_the_threshold_rule(policy: Policy) -> None:
    interval = policy.analysis.interval
    missing = {Query(Signal.ERRORS, Version.STABLE, interval)}
    evaluations = _run(policy, 3, canary=(500, 40), stable=(2000, 20), missing=missing)
    results = [next(r for r in e.results if r.trigger == "error_rate_trigger") for e in evaluations]
    # 8% errors > the rule's own 5% threshold, for persistence 2
    assert [r.status for r in results] == [
        TriggerStatus.BREACHING,
        TriggerStatus.FIRING,
        TriggerStatus.FIRING,
    ]
    first = results[0].evidence
    assert first.fallback == "stable errors: scrape failed"
    assert first.reason.startswith("judged by its threshold rule, the sequential test cannot")
    assert first.method == "threshold"
    assert (first.value, first.limit) == (8.0, 5.0)
    assert evaluations[-1].state.of("error_rate_trigger").sequential == {}


def test_a_starved_test_does_not_blame_the_canary_for_an_incident_on_both(policy: Policy) -> None:
    """8% errors on both versions during a scrape gap: the 5% threshold that judges in
    the test's place compares with stable too, as the test would."""
    interval = policy.analysis.interval
    missing = {Query(Signal.ERRORS, Version.STABLE, interval)}
    evaluations = _run(policy, 4, canary=(500, 40), stable=(2000, 160), missing=missing)
    results = [next(r for r in e.results if r.trigger == "error_rate_trigger") for e in evaluations]
    assert [r.status for r in results] == [TriggerStatus.OK] * 4
    assert all(e.decision.verdict is Verdict.CONTINUE for e in evaluations)
    evidence = results[0].evidence
    assert evidence.fallback == "stable errors: scrape failed"
    assert (evidence.value, evidence.limit) == (8.0, 5.0)
    assert "not the canary's: stable's error_rate_percent is 8" in evidence.reason
    assert evaluations[-1].state.of("error_rate_trigger").breaches == 0


def test_a_starved_test_still_rolls_back_a_canary_worse_than_stable(policy: Policy) -> None:
    """Canary 8% against stable 6% is beyond 1.2 x stable + 0.1 points: the fallback fires."""
    interval = policy.analysis.interval
    missing = {Query(Signal.ERRORS, Version.STABLE, interval)}
    evaluations = _run(policy, 2, canary=(500, 40), stable=(2000, 120), missing=missing)
    results = [next(r for r in e.results if r.trigger == "error_rate_trigger") for e in evaluations]
    assert [r.status for r in results] == [TriggerStatus.BREACHING, TriggerStatus.FIRING]
    assert "not the canary's" not in results[1].evidence.reason


def test_without_stables_window_the_fallback_threshold_judges_alone(policy: Policy) -> None:
    """Stable's own rate unknown too: nothing shows the fault is shared, so the
    threshold's verdict stands (a scrape gap never hides a bad canary)."""
    interval = policy.analysis.interval
    rule = next(r for r in policy.rules if r.name == "error_rate_trigger")
    missing = {
        Query(Signal.ERRORS, Version.STABLE, interval),
        sequential_rules.stable_window(rule),
    }
    evaluations = _run(policy, 2, canary=(500, 40), stable=(2000, 160), missing=missing)
    results = [next(r for r in e.results if r.trigger == "error_rate_trigger") for e in evaluations]
    assert [r.status for r in results] == [TriggerStatus.BREACHING, TriggerStatus.FIRING]


def test_with_neither_the_tests_nor_the_thresholds_input_it_is_no_data_then_inconclusive(
    policy: Policy,
) -> None:
    interval = policy.analysis.interval
    rule = next(r for r in policy.rules if r.name == "error_rate_trigger")
    missing = {
        Query(Signal.ERRORS, Version.STABLE, interval),
        Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, rule.window_seconds),
    }
    evaluations = _run(policy, 3, canary=(500, 40), stable=(2000, 20), missing=missing)
    results = [next(r for r in e.results if r.trigger == "error_rate_trigger") for e in evaluations]
    assert [r.status for r in results] == [
        TriggerStatus.NO_DATA,
        TriggerStatus.NO_DATA,
        TriggerStatus.INCONCLUSIVE,
    ]
    assert "canary: scrape failed" in results[0].evidence.reason
    assert results[0].evidence.fallback == "stable errors: scrape failed"


def test_an_evaluation_inside_the_last_interval_does_not_count_requests_twice(
    policy: Policy,
) -> None:
    measured = _measurements(policy, 5.0, canary=(500, 5), stable=(2000, 20))
    first = evaluate(policy, measured, baseline=None, state=EngineState(), now=5.0)
    again = evaluate(policy, measured, baseline=None, state=first.state, now=7.0)
    before = first.state.of("error_rate_trigger").sequential
    after = again.state.of("error_rate_trigger").sequential
    assert after == before
    result = next(r for r in again.results if r.trigger == "error_rate_trigger")
    assert "has not ended" in result.evidence.reason
    assert result.status is TriggerStatus.WAITING


def test_evaluating_more_often_than_the_interval_is_never_inconclusive(policy: Policy) -> None:
    # `rollguard watch --interval 1s` on a 5 s policy: four evaluations in every interval
    # are too early to feed the test; they must not count as missing data
    state = EngineState()
    statuses = []
    for second in range(5, 31):
        measured = _measurements(policy, float(second), canary=(500, 5), stable=(2000, 20))
        evaluation = evaluate(policy, measured, baseline=None, state=state, now=float(second))
        state = evaluation.state
        result = next(r for r in evaluation.results if r.trigger == "error_rate_trigger")
        statuses.append(result.status)
    assert TriggerStatus.INCONCLUSIVE not in statuses
    assert statuses.count(TriggerStatus.OK) == 6  # at 5, 10, ..., 30 s
    assert state.of("error_rate_trigger").sequential["intervals"] == 6


def test_both_methods_fire_on_whichever_is_first() -> None:
    text = EXAMPLE.read_text().replace(
        "detection: {method: sequential, alpha: 0.01,", "detection: {method: both, alpha: 0.01,", 1
    )
    policy = parse_policy(text, source="both.yaml")
    assert policy.rules[0].detection.method == "both"
    # 8% errors: the threshold (5%, 2 in a row) and the test both see it; either may win
    evaluations = _run(policy, 10, canary=(500, 40), stable=(2000, 20))
    acted = next(e for e in evaluations if e.decision.verdict is Verdict.ACT)
    assert acted.decision.trigger == "error_rate_trigger"
    # 3% errors: below the 5% threshold, only the sequential test can fire
    evaluations = _run(policy, 40, canary=(500, 15), stable=(2000, 20))
    acted = next(e for e in evaluations if e.decision.verdict is Verdict.ACT)
    evidence = next(e for e in acted.decision.evidence if e.trigger == "error_rate_trigger")
    assert evidence.method == "sequential"


def test_sequential_detection_on_memory_is_refused() -> None:
    text = EXAMPLE.read_text().replace(
        "action: scaling_and_rollback\n",
        "action: scaling_and_rollback\n  detection: {method: sequential}\n",
    )
    with pytest.raises(PolicyError, match="sequential detection exists for"):
        parse_policy(text, source="memory.yaml")


def test_policy_explain_describes_the_sequential_test(policy: Policy) -> None:
    from rollguard.policy.explain import explain

    lines = explain(policy)
    assert "sequential test" in lines[0]
    assert "1.2 x the stable version's + 0.1 points" in lines[0]
    assert "at most 0.005" in lines[0]
    assert "sequential" not in lines[2]  # memory keeps its threshold


def test_against_a_baseline_file_errors_and_latency_use_the_known_reference() -> None:
    from datetime import UTC, datetime

    from rollguard.baseline import Baseline, BaselineMetrics
    from rollguard.policy.explain import explain

    text = EXAMPLE.read_text().replace(
        "baseline:\n  compare_with: stable\n", "baseline:\n  file: performance-baseline.json\n"
    )
    policy = parse_policy(text, source="baseline.yaml")
    assert "x the stable's" not in explain(policy)[1]  # the latency test has no stable here
    assert "above the bucket at its p95, a share above 1 x 5% + 1 points" in explain(policy)[1]
    wanted = set(required_queries(policy))
    assert Query(Signal.ERRORS, Version.STABLE, policy.analysis.interval) not in wanted
    reference = Baseline(
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        metrics=BaselineMetrics(error_rate_percent=1.0, avg_latency_ms=80, p95_latency_ms=200),
    )
    state = EngineState()
    fired = None
    for i in range(10):
        now = 5.0 * (i + 1)
        measured = _measurements(policy, now, canary=(500, 5), stable=(2000, 20), slow=(0.3, 0.1))
        evaluation = evaluate(policy, measured, baseline=reference, state=state, now=now)
        state = evaluation.state
        if evaluation.decision.verdict is Verdict.ACT:
            fired = evaluation
            break
    assert fired is not None
    assert fired.decision.trigger == "latency_trigger"  # 30% above 250 ms vs a 200 ms p95
    errors = next(r for r in fired.results if r.trigger == "error_rate_trigger")
    assert errors.status is TriggerStatus.OK
    assert errors.evidence.reference_source == "baseline"


def test_fallbacks_known_before_the_start(policy: Policy) -> None:
    def no_buckets(query: Query) -> str:
        return "no le_ columns" if query.signal is Signal.LATENCY_BUCKETS else ""

    assert sequential_rules.fallbacks(policy, baseline=None) == {}
    assert sequential_rules.fallbacks(policy, baseline=None, cannot_answer=no_buckets) == {
        "latency_trigger": "canary latency_buckets: no le_ columns"
    }
    against_baseline = policy.model_copy(
        update={"baseline": policy.baseline.model_copy(update={"compare_with": "baseline"})}
    )
    assert sequential_rules.fallbacks(against_baseline, baseline=None) == {
        "error_rate_trigger": "no baseline loaded",
        "latency_trigger": "no baseline loaded",
    }


def _error_rate_policy(detection: str) -> Policy:
    return parse_policy(
        "target: {deployment: web}\nmetrics: {provider: replay, file: s.csv}\n"
        "baseline: {compare_with: stable}\n"
        f"error_rate_trigger: {{threshold: 5%, detection: {detection}}}\n",
        source="resume.yaml",
    )


def _resumed(policy: Policy, stored: EngineState) -> Evaluation:
    counts = {"canary": (500, 15), "stable": (2000, 20)}
    return evaluate(
        policy,
        _measurements(policy, 20.0, **counts),  # type: ignore[arg-type]
        baseline=None,
        state=stored,
        now=20.0,
    )


def test_a_watch_resumed_across_the_default_change_keeps_its_mixture_state() -> None:
    """A state the mixture stored (the default before the e-detector) goes on as the
    mixture under a rule that takes the default: still updated, with the e-value of a
    watch that never stopped, never left to the threshold rule; a rule that names the
    e-detector leaves it alone and says so."""
    mixture = _error_rate_policy("{method: sequential, detector: mixture}")
    state = EngineState()
    for now in (5.0, 10.0, 15.0):
        counts = {"canary": (500, 15), "stable": (2000, 20)}
        measured = _measurements(mixture, now, **counts)  # type: ignore[arg-type]
        state = evaluate(mixture, measured, baseline=None, state=state, now=now).state
    stored = EngineState.from_dict(state.as_dict())  # as persisted before the upgrade
    assert "horizon" not in stored.of("error_rate_trigger").sequential

    unchanged = _resumed(mixture, stored).results[0].evidence
    kept = _resumed(_error_rate_policy("{method: sequential}"), stored).results[0].evidence
    assert kept.method == "sequential"
    assert not kept.fallback
    assert kept.statistic["log_e_value"] == unchanged.statistic["log_e_value"]
    assert kept.statistic["intervals"] == 4
    assert "horizon_updates" not in kept.statistic
    assert "runs the mixture, the detector its stored state began with" in kept.reason

    named = _error_rate_policy("{method: sequential, detector: e-detector}")
    refused = _resumed(named, stored).results[0].evidence
    assert refused.fallback == "the stored state belongs to another detector"


def test_a_fresh_watch_under_the_default_runs_the_e_detector() -> None:
    policy = _error_rate_policy("{method: sequential}")
    evidence = _resumed(policy, EngineState()).results[0].evidence
    assert evidence.statistic["horizon_updates"] == 720  # 60 minutes of 5 s intervals
    assert "stored state" not in evidence.reason
