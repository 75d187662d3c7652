"""The backtest picture shows what the text says: its times, the limits in use, no empty panel."""

from __future__ import annotations

import asyncio
import math
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from artifacts import artifact_path
from rollguard.controller.assemble import policy_baseline
from rollguard.controller.backtest import BacktestResult, run_backtest
from rollguard.controller.backtest_plot import backtest_figure
from rollguard.metrics.replay import ReplayProvider
from rollguard.policy import load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

THRESHOLD_ONLY = """\
name: plain
target: {deployment: plain, executor: {type: noop}}
metrics: {provider: replay, file: series.csv}
analysis: {interval: 5s, persistence: 2, min_requests: 20}
error_rate_trigger: {threshold: 5%, measurement_window: 10s, action: immediate_rollback}
"""


def _series(path: Path, *, first: int) -> Path:
    """Rows from ``first`` s every 5 s; the canary's errors jump to 10 % after first + 100 s."""
    rng = np.random.default_rng(5)
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for t in range(first, first + 300, 5):
        rows.append(f"{t},stable,2000,{rng.binomial(2000, 0.01)},120,200")
        rate = 0.1 if t > first + 100 else 0.01
        rows.append(f"{t},canary,500,{rng.binomial(500, rate)},121,201")
    path.write_text("\n".join(rows) + "\n")
    return path


def _figure(policy_file: Path, csv: Path) -> tuple[BacktestResult, Figure]:
    policy = load_policy(policy_file)
    provider = ReplayProvider.from_file(csv)
    baseline = policy_baseline(policy, base_dir=policy_file.parent, override=None)
    result = asyncio.run(
        run_backtest(policy, provider, baseline=baseline, base_dir=policy_file.parent)
    )
    return result, backtest_figure(result, provider)


def _labels(figure: Figure) -> list[list[str]]:
    return [[str(line.get_label()) for line in ax.get_lines()] for ax in figure.axes]


def test_the_decision_line_sits_where_the_text_says(tmp_path: Path) -> None:
    csv = _series(tmp_path / "series.csv", first=600)
    (tmp_path / "plain.yaml").write_text(THRESHOLD_ONLY)
    result, figure = _figure(tmp_path / "plain.yaml", csv)
    try:
        first = result.as_dict()["first_action"]
        assert first is not None
        for ax in figure.axes:
            marker = [line for line in ax.get_lines() if "immediate_rollback" in line.get_label()]
            assert len(marker) == 1
            assert list(marker[0].get_xdata()) == [first["time"], first["time"]]
        # The x-axis is the recording's own time: the first row is at 600, not 0.
        canary = next(line for line in figure.axes[0].get_lines() if "canary" in line.get_label())
        assert canary.get_xdata()[0] == 600
        # A policy without a sequential test gets no evidence panel.
        assert len(figure.axes) == 2
        assert any("limit 5" in label for label in _labels(figure)[0])
        figure.savefig(artifact_path("backtest-threshold.png"), dpi=100)
    finally:
        plt.close(figure)


def test_a_sequential_policy_draws_e_values_against_one_over_alpha(tmp_path: Path) -> None:
    csv = _series(tmp_path / "series.csv", first=5)
    _, figure = _figure(EXAMPLES / "sequential-policy.yaml", csv)
    try:
        assert len(figure.axes) == 3
        errors, _, evidence = _labels(figure)
        # error_rate_trigger is judged by its sequential test only: no 5% line it does not use.
        flat = [line for line in figure.axes[0].get_lines() if set(line.get_ydata()) == {5.0}]
        assert flat == []
        assert not [label for label in errors if "limit" in label]
        bounds = [line for line in figure.axes[2].get_lines() if "1/alpha" in line.get_label()]
        assert bounds
        for line in bounds:
            (level, _) = line.get_ydata()
            # alpha 0.01 split over the policy's sequential triggers: 1/alpha is at least 100.
            assert level >= 100
            assert math.isclose(level, float(str(line.get_label()).split("= ")[1]), rel_tol=1e-3)
        assert any("e-value" in label for label in evidence)
        figure.savefig(artifact_path("backtest-sequential.png"), dpi=100)
    finally:
        plt.close(figure)


def test_plot_says_where_it_wrote(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    csv = _series(tmp_path / "series.csv", first=5)
    plot = tmp_path / "picture.svg"
    done = subprocess.run(
        [
            *rollguard_cmd,
            "backtest",
            "--policy",
            str(EXAMPLES / "sequential-policy.yaml"),
            "--series",
            str(csv),
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"wrote {plot}" in done.stdout
    assert plot.read_text(encoding="utf-8").lstrip().startswith("<?xml")
