"""``rollguard backtest`` with bucket columns: the sequential latency trigger on replays."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from replay_series import write_bucket_series

Run = Callable[..., subprocess.CompletedProcess[str]]
Invoke = Callable[..., Any]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"
SLOW_AFTER = 100


def test_a_30_percent_slower_canary_fires_the_latency_trigger(tmp_path: Path, run_cli: Run) -> None:
    csv = write_bucket_series(tmp_path / "slow.csv", canary_slowdown=1.3, slow_after=SLOW_AFTER)
    plot = tmp_path / "slow.png"
    done = run_cli(
        "backtest",
        "--policy",
        str(EXAMPLE),
        "--series",
        str(csv),
        "-o",
        "json",
        "--plot",
        str(plot),
    )
    assert done.returncode == 1, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # p95 per row from its buckets
    data = json.loads(done.stdout)
    first = data["first_action"]
    assert first["trigger"] == "latency_trigger"
    assert first["action"] == "gradual_rollback_with_traffic_shifting"
    assert SLOW_AFTER < first["time"] <= SLOW_AFTER + 60
    assert first["evidence"]["method"] == "sequential"
    assert first["evidence"]["value"] >= first["evidence"]["limit"]
    # before the slowdown the trigger was judged, and found nothing
    before = [d for d in data["decisions"] if d["time"] <= SLOW_AFTER]
    assert before
    assert {d["triggers"]["latency_trigger"]["status"] for d in before} == {"ok"}


@pytest.mark.parametrize("seed", [11, 12])
def test_an_a_a_series_stays_quiet_while_the_latency_trigger_is_judged(
    tmp_path: Path, invoke_cli: Invoke, seed: int
) -> None:
    csv = write_bucket_series(tmp_path / "same.csv", seed=seed)
    done = invoke_cli("backtest", "--policy", str(EXAMPLE), "--series", str(csv), "-o", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["first_action"] is None
    assert data["evaluations"] == 60
    statuses = [d["triggers"]["latency_trigger"] for d in data["decisions"]]
    assert {s["status"] for s in statuses} == {"ok"}  # measured every time, never no data
    assert all(s["value"] is not None and s["value"] < s["limit"] for s in statuses)


def test_the_text_output_names_the_latency_trigger(tmp_path: Path, invoke_cli: Invoke) -> None:
    csv = write_bucket_series(tmp_path / "slow.csv", canary_slowdown=1.3, slow_after=SLOW_AFTER)
    done = invoke_cli("backtest", "--policy", str(EXAMPLE), "--series", str(csv))
    assert done.returncode == 1
    assert "by latency_trigger" in done.stdout
    assert "share of slow requests" in done.stdout


def test_a_non_cumulative_bucket_row_is_exit_2_with_its_line(
    tmp_path: Path, invoke_cli: Invoke
) -> None:
    csv = write_bucket_series(tmp_path / "broken.csv", end_seconds=10)
    lines = csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[-2] = str(int(cells[-3]) - 1)  # le_10 below le_5: not cumulative
    lines[3] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    done = invoke_cli("backtest", "--policy", str(EXAMPLE), "--series", str(csv))
    assert done.returncode == 2
    assert f"{csv}:4: le_10: expected at least le_5" in done.stderr
