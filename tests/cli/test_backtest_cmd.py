"""``rollguard backtest`` as a user runs it: exit codes, JSON, plot, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"


def write_series(path: Path, *, bad_after: float | None) -> Path:
    rng = np.random.default_rng(5)
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for t in range(5, 305, 5):
        rows.append(f"{t},stable,2000,{rng.binomial(2000, 0.01)},120,200")
        rate = 0.1 if bad_after is not None and t > bad_after else 0.01
        rows.append(f"{t},canary,500,{rng.binomial(500, rate)},121,201")
    path.write_text("\n".join(rows) + "\n")
    return path


def run(cmd: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, "backtest", "--policy", str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_a_bad_release_exits_1_with_the_first_action_and_a_plot(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    csv = write_series(tmp_path / "bad.csv", bad_after=100)
    plot = tmp_path / "bad.png"
    done = run(rollguard_cmd, cli_env, "--series", str(csv), "-o", "json", "--plot", str(plot))
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["first_action"]["trigger"] == "error_rate_trigger"
    assert 100 < data["first_action"]["time"] <= 115
    assert data["evaluations"] == len(data["decisions"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_healthy_release_exits_0_and_says_so(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    csv = write_series(tmp_path / "good.csv", bad_after=None)
    done = run(rollguard_cmd, cli_env, "--series", str(csv))
    assert done.returncode == 0, done.stderr
    assert "No action would have been taken" in done.stdout


def test_a_broken_csv_is_one_clear_message_and_exit_2(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    csv = tmp_path / "broken.csv"
    csv.write_text("time,version,requests\n5,canary,10\n")
    done = run(rollguard_cmd, cli_env, "--series", str(csv))
    assert done.returncode == 2
    assert "broken.csv" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_plot_goes_to_exactly_the_path_given_in_the_format_its_suffix_names(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    csv = write_series(tmp_path / "bad.csv", bad_after=100)
    bare = tmp_path / "out"
    done = run(rollguard_cmd, cli_env, "--series", str(csv), "--plot", str(bare))
    assert done.returncode == 1, done.stderr
    assert bare.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # PNG without a suffix
    assert not (tmp_path / "out.png").exists()
    svg = tmp_path / "out.svg"
    done = run(rollguard_cmd, cli_env, "--series", str(csv), "--plot", str(svg))
    assert done.returncode == 1, done.stderr
    assert b"<svg" in svg.read_bytes()[:1000]


def test_a_plot_suffix_matplotlib_does_not_know_exits_2_before_any_work(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    csv = write_series(tmp_path / "bad.csv", bad_after=100)
    plot = tmp_path / "out.txt"
    done = run(rollguard_cmd, cli_env, "--series", str(csv), "-o", "json", "--plot", str(plot))
    assert done.returncode == 2
    assert f"--plot {plot}: unknown image format 'txt'" in done.stderr
    assert ".png" in done.stderr
    assert ".svg" in done.stderr
    assert done.stdout == ""  # refused before the backtest ran
    assert not plot.exists()
    assert not (tmp_path / "out.txt.png").exists()
    assert "Traceback" not in done.stderr
