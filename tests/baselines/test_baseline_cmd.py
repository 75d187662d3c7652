"""``rollguard baseline create|show`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "rollguard", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_create_from_artillery_then_show(tmp_path: Path, fixtures_dir: Path) -> None:
    report = fixtures_dir / "artillery" / "report-viewer-test_report_v2.json"
    done = _run(tmp_path, "baseline", "create", "--from-artillery", str(report))
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "performance-baseline.json").read_text())
    assert set(written) >= {"timestamp", "metrics", "thresholds"}
    assert written["metrics"]["error_rate_percent"] == 0.0
    assert written["metrics"]["p95_latency_ms"] == 34.8
    shown = _run(tmp_path, "baseline", "show", "performance-baseline.json", "--output", "json")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["metrics"]["requests"] == 1200


def test_thresholds_come_from_the_policy(tmp_path: Path, fixtures_dir: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "target: {deployment: web}\nmetrics: {provider: replay, file: r.csv}\n"
        "baseline: {file: performance-baseline.json}\n"
        "error_rate_trigger: {threshold: 2%, measurement_window: 5m}\n"
        "latency_trigger: {threshold: 20% increase from baseline, measurement_window: 3m}\n"
    )
    report = fixtures_dir / "k6" / "k6-reporter-simple.json"
    done = _run(tmp_path, "baseline", "create", "--from-k6", str(report), "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    thresholds = json.loads((tmp_path / "performance-baseline.json").read_text())["thresholds"]
    assert thresholds["max_error_rate"] == 2.0
    assert thresholds["max_latency_increase_percent"] == 20.0
    assert "above max_error_rate 2%" in done.stdout  # 39.7 % errors: warned, still written


def test_empty_run_is_exit_2_without_traceback(tmp_path: Path, fixtures_dir: Path) -> None:
    report = fixtures_dir / "artillery" / "artillery-test-scripts-report-v1-minimal.json"
    done = _run(tmp_path, "baseline", "create", "--from-artillery", str(report), "-o", "b.json")
    assert done.returncode == 2
    assert "no measurable requests" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["baseline", "create", "report.json"],
        ["baseline", "create", "--from-k6", "--from-locust", "report.json"],
        ["baseline", "create", "--from-k6"],
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str]) -> None:
    done = _run(tmp_path, *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_show_invalid_baseline(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"timestamp": "2026-01-01T00:00:00Z", "metrics": {}}')
    done = _run(tmp_path, "baseline", "show", "b.json")
    assert done.returncode == 2
    assert "metrics.error_rate_percent" in done.stderr


def test_create_from_metrics_through_the_replay_provider(tmp_path: Path) -> None:
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb,latency_mean_ms"]
    for minute in range(1, 11):
        rows.append(f"{minute * 60},stable,1000,{minute % 3},180,{200 + minute},90")
        rows.append(f"{minute * 60},canary,1000,50,400,300,200")
    (tmp_path / "recorded.csv").write_text("\n".join(rows) + "\n")
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "target: {deployment: web}\nmetrics: {provider: replay, file: recorded.csv}\n"
    )
    done = _run(
        tmp_path, "baseline", "create", "--from-metrics", "--policy", str(policy), "--window", "5m"
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "performance-baseline.json").read_text())["metrics"]
    # The last 5 minutes of stable: minutes 6..10, errors 0+1+2+0+1 = 4 of 5000.
    assert metrics["error_rate_percent"] == pytest.approx(0.08)
    assert metrics["p95_latency_ms"] == 180
    assert metrics["avg_latency_ms"] == 90
    assert metrics["memory_mb"] == 210
    assert metrics["requests"] == 5000
