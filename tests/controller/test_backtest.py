"""Backtests through the engine: first action, timeline, sparse rows, gaps, RFC 3339."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from rollguard.controller.backtest import BacktestResult, run_backtest
from rollguard.metrics.recording import parse_recording
from rollguard.metrics.replay import ReplayProvider
from rollguard.policy import load_policy
from rollguard.policy.model import Policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"
HEADER = "time,version,requests,errors,latency_p95_ms,memory_mb"


def series(
    *,
    canary_rate_after: float,
    onset: float = 300.0,
    step: int = 5,
    seconds: int = 600,
    stable_gap: tuple[float, float] | None = None,
    seed: int = 1,
) -> str:
    """A recording at 100 canary and 400 stable requests/s, 1% errors until ``onset``."""
    rng = np.random.default_rng(seed)
    rows = [HEADER]
    for t in range(step, seconds + step, step):
        if stable_gap is None or not stable_gap[0] <= t <= stable_gap[1]:
            rows.append(f"{t},stable,{400 * step},{rng.binomial(400 * step, 0.01)},120,200")
        rate = 0.01 if t <= onset else canary_rate_after
        rows.append(f"{t},canary,{100 * step},{rng.binomial(100 * step, rate)},121,201")
    return "\n".join(rows) + "\n"


def backtest(text: str, policy: Policy | None = None) -> BacktestResult:
    provider = ReplayProvider(parse_recording(text, source="series.csv"))
    return asyncio.run(run_backtest(policy or load_policy(EXAMPLE), provider))


def test_a_fault_at_five_minutes_is_caught_within_a_few_intervals() -> None:
    result = backtest(series(canary_rate_after=0.05))
    data = result.as_dict()
    first = data["first_action"]
    assert first is not None
    assert 300 < first["time"] <= 330
    assert first["trigger"] == "error_rate_trigger"
    assert first["action"] == "immediate_rollback"
    assert first["evidence"]["method"] == "sequential"
    assert data["evaluations"] == len(data["decisions"])
    assert data["decisions"][-1]["verdict"] == "act"


def test_a_healthy_recording_takes_no_action_and_judges_to_the_end() -> None:
    result = backtest(series(canary_rate_after=0.01))
    data = result.as_dict()
    assert data["first_action"] is None
    assert data["evaluations"] == 120
    assert data["decisions"][-1]["time"] == 600.0


def test_sparse_rows_stretch_the_interval_to_the_row_step() -> None:
    result = backtest(series(canary_rate_after=0.05, step=30))
    assert result.interval_seconds == 30.0
    first = result.as_dict()["first_action"]
    assert first is not None
    assert 300 < first["time"] <= 360


@pytest.mark.parametrize(("canary_rate_after", "acts"), [(0.03, False), (0.08, True)])
def test_a_stable_gap_hands_the_trigger_to_its_threshold_rule(
    canary_rate_after: float, acts: bool
) -> None:
    # without the stable the test has nothing to compare with; the rule's own 5% judges
    result = backtest(series(canary_rate_after=canary_rate_after, stable_gap=(250, 600)))
    data = result.as_dict()
    assert (data["first_action"] is not None) is acts
    late = result.evaluations[-1]
    rule = next(r for r in late.results if r.trigger == "error_rate_trigger")
    assert rule.evidence.method == "threshold"
    assert rule.evidence.fallback.startswith("stable requests: no stable rows")
    assert rule.status.value == ("firing" if acts else "ok")


def test_rfc3339_times_come_back_as_rfc3339() -> None:
    text = series(canary_rate_after=0.10, seconds=120, onset=0)
    lines = text.splitlines()
    rows = [HEADER]
    for line in lines[1:]:
        t, rest = line.split(",", 1)
        rows.append(f"2026-01-01T00:{int(t) // 60:02d}:{int(t) % 60:02d}Z,{rest}")
    first = backtest("\n".join(rows) + "\n").as_dict()["first_action"]
    assert first is not None
    assert str(first["time"]).startswith("2026-01-01T00:00:")
