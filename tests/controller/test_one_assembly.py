"""watch, serve, drill and backtest assemble one watch loop: they see the same triggers.

One policy with runtime security (an access log next to a replay recording)
goes through each command's own entry point; every trigger must be judged on
data in each, the access-log triggers included (``serve`` and ``backtest``
once built the bare provider and judged those on nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollguard.audit.base import MemoryAuditSink
from rollguard.cli.options import OutputFormat
from rollguard.cli.watch_run import run_watch
from rollguard.controller.backtest import run_backtest
from rollguard.controller.drill import pick_trigger, run_drill
from rollguard.engine.evaluate import Evaluation
from rollguard.executors.recording import RecordingExecutor
from rollguard.generate.source import load_source
from rollguard.metrics.replay import ReplayProvider
from rollguard.policy import load_policy
from rollguard.server.wiring import default_factory

POLICY = """\
name: shop-policy
target: {deployment: shop, executor: {type: noop}}
metrics: {provider: replay, file: series.csv}
analysis: {interval: 5s}
error_rate_trigger: {threshold: 5%, window: 1m}
runtime_security:
  suspicious_patterns: immediate_detection
  unauthorized_access_attempts: 5 per minute
  access_log: access.log
"""

BENIGN = (
    '10.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /search?q=shoes HTTP/1.1" '
    '200 512 "-" "Mozilla/5.0"\n'
)

EVERY_TRIGGER = {
    "error_rate_trigger",
    "runtime_security.suspicious_patterns",
    "runtime_security.unauthorized_access_attempts",
}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for t in range(5, 305, 5):
        rows += [f"{t},stable,400,1,120,300", f"{t},canary,100,0,120,300"]
    (tmp_path / "series.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "access.log").write_text(BENIGN * 3)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _judged(evaluation: Evaluation) -> set[str]:
    return {r.trigger for r in evaluation.results if r.evidence.value is not None}


async def _watch(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> set[str]:
    await run_watch(
        load_policy(policy_file),
        base_dir=policy_file.parent,
        duration_seconds=0,
        interval_seconds=None,
        baseline_file=None,
        output=OutputFormat.JSON,
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first = next(line for line in lines if line["type"] == "evaluation")
    return {t["trigger"] for t in first["triggers"] if t["evidence"]["value"] is not None}


async def _serve(policy_file: Path) -> set[str]:
    seen: list[Evaluation] = []
    build = default_factory(MemoryAuditSink())
    watcher = build(load_source(policy_file), seen.append)
    try:
        await watcher.run(duration_seconds=0)
    finally:
        await watcher.provider.aclose()
    return _judged(seen[0])


async def _backtest(policy_file: Path) -> set[str]:
    provider = ReplayProvider.from_file(policy_file.parent / "series.csv")
    result = await run_backtest(load_policy(policy_file), provider, base_dir=policy_file.parent)
    return _judged(result.evaluations[0])


async def _drill(policy_file: Path) -> set[str]:
    policy = load_policy(policy_file)
    rule = pick_trigger(policy, "runtime_security.suspicious_patterns")
    result = await run_drill(
        policy,
        rule,
        executor=RecordingExecutor(canary_weight=policy.rollback.canary_weight),
        executed=False,
        baseline=None,
        base_dir=policy_file.parent,
    )
    assert result.passed, result.reason
    return {name for name, value in result.decision["triggers"].items() if value is not None}


async def test_watch_serve_drill_and_backtest_judge_the_same_triggers(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = {
        "watch": await _watch(policy_file, capsys),
        "serve": await _serve(policy_file),
        "backtest": await _backtest(policy_file),
        "drill": await _drill(policy_file),
    }
    assert seen == dict.fromkeys(seen, EVERY_TRIGGER)
