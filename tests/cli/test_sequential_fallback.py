"""A sequential trigger its data cannot feed falls back to its threshold rule, and says so.

A replay CSV with ``latency_p95_ms``/``latency_p50_ms`` but no ``le_`` bucket
columns (a format docs/replay-format.md allows) cannot feed the sequential
latency test of examples/sequential-policy.yaml. A canary whose latency rose
60 % must still be rolled back, by the trigger's own threshold rule (30 %
above the stable), and every place that shows the trigger must say so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

Invoke = Callable[..., Any]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"
RISE_AFTER = 120  # seconds into the recording
NO_BUCKETS = "no le_ bucket columns"


def write_series(path: Path, *, rise: float = 1.6, seconds: int = 600, seed: int = 3) -> Path:
    """Rows every 5 s; the canary's p95 and p50 rise by ``rise`` after RISE_AFTER."""
    rng = np.random.default_rng(seed)
    rows = ["time,version,requests,errors,latency_p95_ms,latency_p50_ms,memory_mb"]
    for t in range(5, seconds + 5, 5):
        for version, requests in (("stable", 400), ("canary", 100)):
            errors = rng.binomial(requests, 0.005)
            factor = rise if version == "canary" and t > RISE_AFTER else 1.0
            p95 = 200 * factor * rng.uniform(0.97, 1.03)
            p50 = 80 * factor * rng.uniform(0.97, 1.03)
            rows.append(f"{t},{version},{requests},{errors},{p95:.1f},{p50:.1f},300")
    path.write_text("\n".join(rows) + "\n")
    return path


def _replay_policy(folder: Path, csv: Path) -> Path:
    """The example, reading the recording instead of Prometheus (as `watch` would)."""
    text = EXAMPLE.read_text().replace(
        "  provider: prometheus\n  address: http://127.0.0.1:9090\n",
        f"  provider: replay\n  file: {csv.name}\n",
    )
    assert f"file: {csv.name}" in text
    path = folder / "policy.yaml"
    path.write_text(text)
    return path


def test_backtest_rolls_back_a_60_percent_rise_by_the_threshold_rule(
    tmp_path: Path, invoke_cli: Invoke
) -> None:
    csv = write_series(tmp_path / "rise.csv")
    done = invoke_cli("backtest", "--policy", str(EXAMPLE), "--series", str(csv), "-o", "json")
    assert done.returncode == 1, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    assert NO_BUCKETS in data["fallbacks"]["latency_trigger"]
    assert "error_rate_trigger" not in data["fallbacks"]  # its counts are in the file
    first = data["first_action"]
    assert first["trigger"] == "latency_trigger"
    assert first["action"] == "gradual_rollback_with_traffic_shifting"
    # the rule's 3-minute window must lean past 30 %, then 2 evaluations in a row
    assert RISE_AFTER < first["time"] <= RISE_AFTER + 180 + 2 * 5
    evidence = first["evidence"]
    assert evidence["method"] == "threshold"
    assert NO_BUCKETS in evidence["fallback"]
    assert evidence["reason"].startswith("judged by its threshold rule")
    assert evidence["value"] > evidence["limit"]  # p95 above 1.3 x the stable's
    assert evidence["reference_source"] == "stable"
    # before the rise, every evaluation judged the trigger by its threshold rule, healthy
    before = [d for d in data["decisions"] if d["time"] <= RISE_AFTER]
    assert {d["triggers"]["latency_trigger"]["status"] for d in before} == {"ok"}


def test_backtest_says_so_first_in_its_text(tmp_path: Path, invoke_cli: Invoke) -> None:
    csv = write_series(tmp_path / "rise.csv")
    done = invoke_cli("backtest", "--policy", str(EXAMPLE), "--series", str(csv))
    assert done.returncode == 1
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("latency_trigger: judged by its threshold rule")
    assert NO_BUCKETS in first_line
    said = [line for line in done.stdout.splitlines() if line.startswith("latency_trigger:")]
    assert said == [first_line]  # once; the decisions' reasons say it again, as evidence


def test_watch_says_so_on_its_first_line_and_rolls_back(tmp_path: Path, invoke_cli: Invoke) -> None:
    policy = _replay_policy(tmp_path, write_series(tmp_path / "rise.csv"))
    done = invoke_cli("watch", "--policy", str(policy), "--for", "10m", "-o", "json")
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["type"] == "fallback"
    assert lines[0]["trigger"] == "latency_trigger"
    assert NO_BUCKETS in lines[0]["reason"]
    assert [line["type"] for line in lines[1:]].count("fallback") == 0
    result = lines[-1]
    assert (result["outcome"], result["trigger"]) == ("rolled_back", "latency_trigger")
    # each evaluation's evidence says it, too
    for line in lines[1:-1]:
        latency = next(t for t in line["triggers"] if t["trigger"] == "latency_trigger")
        assert NO_BUCKETS in latency["evidence"]["fallback"]


@pytest.mark.parametrize("with_recording", [True, False])
def test_policy_explain_says_which_rule_judges(
    tmp_path: Path, invoke_cli: Invoke, with_recording: bool
) -> None:
    if with_recording:
        policy = _replay_policy(tmp_path, write_series(tmp_path / "rise.csv"))
    else:
        policy = EXAMPLE  # Prometheus: unknown before the start, so the rule is said
    done = invoke_cli("policy", "explain", str(policy))
    assert done.returncode == 0, done.stderr
    latency = next(line for line in done.stdout.splitlines() if "latency_trigger:" in line)
    if with_recording:
        assert "its threshold rule: the sequential test cannot be fed" in latency
        assert NO_BUCKETS in latency
        assert "rises more than 30% above the stable version" in latency
    else:
        assert "where the data cannot feed the test, when" in latency
        assert "rises more than 30% above the stable version" in latency
