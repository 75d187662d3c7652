"""``rollguard watch`` end to end over a recorded series: exit codes and JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

POLICY = """\
target: {deployment: shop}
metrics: {provider: replay, file: series.csv}
baseline: {compare_with: stable}
error_rate_trigger: {threshold: 5%, measurement_window: 1 minute, action: immediate_rollback}
latency_trigger: {threshold: 30% increase from baseline, measurement_window: 1 minute}
"""


def write_series(folder: Path, *, canary_errors_after_300s: int | None) -> None:
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for t in range(5, 605, 5):
        rows.append(f"{t},stable,400,2,120,300")
        if canary_errors_after_300s is None and t > 300:
            continue  # the canary's series stops: no data
        errors = canary_errors_after_300s if t > 300 and canary_errors_after_300s else 1
        rows.append(f"{t},canary,100,{errors},130,305")
    (folder / "series.csv").write_text("\n".join(rows) + "\n")
    (folder / "policy.yaml").write_text(POLICY)


def watch(folder: Path, cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, "watch", "--policy", str(folder / "policy.yaml"), "--for", "10m", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("errors", "code", "outcome", "trigger"),
    [
        (12, 1, "rolled_back", "error_rate_trigger"),
        (1, 0, "healthy", None),
        (None, 4, "inconclusive", "error_rate_trigger"),
    ],
)
def test_exit_code_and_final_json_follow_the_outcome(
    tmp_path: Path,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
    errors: int | None,
    code: int,
    outcome: str,
    trigger: str | None,
) -> None:
    write_series(tmp_path, canary_errors_after_300s=errors)
    done = watch(tmp_path, rollguard_cmd, cli_env)
    assert done.returncode == code, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(line["type"] == "evaluation" for line in lines[:-1])
    final = lines[-1]
    assert final["type"] == "result"
    assert final["outcome"] == outcome
    assert final["trigger"] == trigger
    for key in ("action", "reason", "evidence", "started_at", "decided_at"):
        assert key in final
    if outcome == "rolled_back":
        evidence = {item["trigger"]: item for item in final["evidence"]}
        assert evidence["error_rate_trigger"]["value"] > 5
        assert evidence["latency_trigger"]["reference_source"] == "stable"
        assert final["decided_at"] is not None


def test_bad_duration_is_a_usage_error(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_series(tmp_path, canary_errors_after_300s=1)
    done = subprocess.run(
        [*rollguard_cmd, "watch", "--policy", str(tmp_path / "policy.yaml"), "--for", "soon"],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert done.returncode == 2
    assert "expected a duration" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_broken_replay_file_names_its_line(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_series(tmp_path, canary_errors_after_300s=1)
    series = tmp_path / "series.csv"
    lines = series.read_text().splitlines()
    lines[3] = "15,canary,lots,1,130,305"
    series.write_text("\n".join(lines) + "\n")
    done = watch(tmp_path, rollguard_cmd, cli_env)
    assert done.returncode == 2
    assert "series.csv:4" in done.stderr
    assert "Traceback" not in done.stderr


def test_under_github_actions_a_summary_and_an_annotation_are_written(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_series(tmp_path, canary_errors_after_300s=12)
    summary = tmp_path / "summary.md"
    env = {**cli_env, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    done = watch(tmp_path, rollguard_cmd, env)
    assert done.returncode == 1
    assert "::error title=rollguard watch::shop: rolled_back (immediate_rollback)" in done.stderr
    text = summary.read_text()
    assert "## rollguard watch `shop`: rolled back" in text
    assert "| error_rate_trigger | error_rate_percent | 6.5 | 5 | 60s |" in text
