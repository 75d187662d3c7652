"""The drill at function level: which trigger, what it feeds, what it concludes."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from rollguard.audit.base import MemoryAuditSink
from rollguard.baseline import Baseline, load_baseline
from rollguard.controller.drill import DrillResult, pick_trigger, record_drill, run_drill
from rollguard.errors import ExitCode, UsageError
from rollguard.executors.recording import ASSUMED
from rollguard.policy import load_policy
from rollguard.policy.model import Policy
from rollguard.testing import RecordingExecutor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _policy(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "target: {deployment: shop}\n"
        "metrics: {provider: prometheus, address: 'http://127.0.0.1:9090'}\n" + text
    )
    return load_policy(path)


def _drill(
    policy: Policy,
    name: str | None = None,
    *,
    executor: RecordingExecutor | None = None,
    baseline: Baseline | None = None,
) -> DrillResult:
    rule = pick_trigger(policy, name)
    return asyncio.run(
        run_drill(
            policy,
            rule,
            executor=executor or RecordingExecutor(canary_weight=policy.rollback.canary_weight),
            executed=False,
            baseline=baseline,
        )
    )


def test_the_default_is_the_highest_priority_rollback_trigger(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "seed-policy.yaml", tmp_path / "seed.yaml")
    seed = load_policy(tmp_path / "seed.yaml")
    assert pick_trigger(seed, None).name == "error_rate_trigger"
    gradual_first = _policy(
        tmp_path,
        "latency_trigger: {above: 500, action: gradual_rollback}\n"
        "memory_trigger: {above: 900, action: traffic_isolation_and_rollback}\n",
    )
    # isolation (priority 40) outranks gradual (20) although it comes later
    assert pick_trigger(gradual_first, None).name == "memory_trigger"


def test_a_policy_without_rollback_triggers_is_refused(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "error_rate_trigger: {above: 5, action: deployment_block}\n")
    with pytest.raises(UsageError, match="no rollback trigger to drill"):
        pick_trigger(policy, None)
    with pytest.raises(UsageError, match="blocks deployments instead of rolling back"):
        pick_trigger(policy, "error_rate_trigger")


def test_a_gradual_drill_walks_every_step_to_zero(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        "rollback: {canary_weight: 40}\n"
        "error_rate_trigger: {above: 5}\n"
        "latency_trigger: {above: 500, action: gradual_rollback, persistence: 3}\n",
    )
    executor = RecordingExecutor(canary_weight=40)
    result = _drill(policy, "latency_trigger", executor=executor)
    assert result.passed, result.reason
    assert result.evaluations == 3  # the trigger's own persistence, not the policy's 2
    steps = [("set_canary_weight", p) for p in (30, 20, 10, 0)]
    assert executor.calls == [*steps, ("rollback", None)]  # then the release undone
    assert result.breach.value is not None
    assert result.breach.value > 500
    assert result.final_status == {
        "canary_weight": 0,
        "canary_state": "retired",
        "assumed": ASSUMED,
    }


def test_a_sequential_trigger_against_the_baseline_needs_one(tmp_path: Path) -> None:
    baseline_file = tmp_path / "baseline.json"
    baseline_file.write_text(
        json.dumps(
            {
                "timestamp": "2026-11-01T00:00:00Z",
                "metrics": {"error_rate_percent": 2.0, "avg_latency_ms": 90, "p95_latency_ms": 180},
            }
        )
    )
    policy = _policy(
        tmp_path,
        "baseline: {file: baseline.json}\n"
        "error_rate_trigger: {increase_percent: 50, detection: {method: sequential}}\n",
    )
    with pytest.raises(UsageError, match="no baseline was loaded"):
        _drill(policy)
    result = _drill(policy, baseline=load_baseline(baseline_file))
    assert result.passed, result.reason
    assert result.breach.method == "sequential"
    statistic = result.decision["evidence"][0]["statistic"]
    assert statistic["e_value"] >= statistic["threshold"]


def test_a_trigger_that_cannot_fire_is_reported_inert(tmp_path: Path) -> None:
    # An error rate never exceeds 100 %: 99.5 points over the stable's 0.5 % can never breach
    # (a policy refuses a fixed threshold of 100 %; one relative to a reference can reach it).
    policy = _policy(tmp_path, "error_rate_trigger: {increase: 99.5, compare_with: stable}\n")
    executor = RecordingExecutor()
    result = _drill(policy, executor=executor)
    assert not result.fired
    assert result.exit_code is ExitCode.INCONCLUSIVE
    assert result.reason.startswith("trigger did not fire on a breach")
    assert result.decision["evidence"][0]["value"] == 100.0
    assert executor.calls == []  # nothing acted


def test_a_dry_run_trigger_does_not_count_as_functional(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        "error_rate_trigger: {above: 5, dry_run: true}\n"
        "memory_trigger: {above: 500}\n",  # a policy must have one trigger that can act
    )
    result = _drill(policy, "error_rate_trigger")
    assert not result.fired
    assert "dry_run: true" in result.reason


def test_a_failing_action_is_a_failed_drill_on_record(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "error_rate_trigger: {above: 5}\n")
    result = _drill(policy, executor=RecordingExecutor(fail=frozenset({"rollback"})))
    assert result.fired
    assert not result.action_ok
    assert result.exit_code is ExitCode.ACTION_FAILED
    assert "rollback refused" in result.reason
    sink = MemoryAuditSink()
    record_drill(policy, result, audit=sink)
    [entry] = sink.records
    assert (entry.kind, entry.outcome, entry.trigger) == ("drill", "failure", "error_rate_trigger")
    assert entry.executor_output["executed"] is False
    assert entry.executor_output["final"] == {
        "canary_weight": 20,
        "canary_state": "serving",
        "assumed": ASSUMED,  # a recording executor reads nothing back
    }
