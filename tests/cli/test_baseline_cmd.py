"""``rollguard baseline create|show`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]
Invoke = Callable[..., Any]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in-process commands from tmp_path, as a user would from their checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_create_from_artillery_then_show(
    invoke_cli: Invoke, in_tmp: Path, fixtures_dir: Path
) -> None:
    tmp_path = in_tmp
    report = fixtures_dir / "artillery" / "report-viewer-test_report_v2.json"
    done = invoke_cli("baseline", "create", "--from-artillery", str(report))
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "performance-baseline.json").read_text())
    assert set(written) >= {"timestamp", "metrics", "thresholds"}
    assert written["metrics"]["error_rate_percent"] == 0.0
    assert written["metrics"]["p95_latency_ms"] == 34.8
    shown = invoke_cli("baseline", "show", "performance-baseline.json", "--output", "json")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["metrics"]["requests"] == 1200


def test_thresholds_come_from_the_policy(
    invoke_cli: Invoke, in_tmp: Path, fixtures_dir: Path
) -> None:
    tmp_path = in_tmp
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "target: {deployment: web}\nmetrics: {provider: replay, file: r.csv}\n"
        "baseline: {file: performance-baseline.json}\n"
        "error_rate_trigger: {threshold: 2%, measurement_window: 5m}\n"
        "latency_trigger: {threshold: 20% increase from baseline, measurement_window: 3m}\n"
    )
    report = fixtures_dir / "k6" / "k6-reporter-simple.json"
    done = invoke_cli("baseline", "create", "--from-k6", str(report), "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    thresholds = json.loads((tmp_path / "performance-baseline.json").read_text())["thresholds"]
    assert thresholds["max_error_rate"] == 2.0
    assert thresholds["max_latency_increase_percent"] == 20.0
    assert "above max_error_rate 2%" in done.stdout  # 39.7 % errors: warned, still written


def test_empty_run_is_exit_2_without_traceback(
    run_cli: Run, tmp_path: Path, fixtures_dir: Path
) -> None:
    report = fixtures_dir / "artillery" / "artillery-test-scripts-report-v1-minimal.json"
    done = run_cli("baseline", "create", "--from-artillery", str(report), "-f", "b.json")
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
def test_usage_errors(invoke_cli: Invoke, args: list[str]) -> None:
    done = invoke_cli(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_show_invalid_baseline(invoke_cli: Invoke, in_tmp: Path) -> None:
    tmp_path = in_tmp
    (tmp_path / "b.json").write_text('{"timestamp": "2026-01-01T00:00:00Z", "metrics": {}}')
    done = invoke_cli("baseline", "show", "b.json")
    assert done.returncode == 2
    assert "metrics.error_rate_percent" in done.stderr


def test_create_from_metrics_through_the_replay_provider(invoke_cli: Invoke, in_tmp: Path) -> None:
    tmp_path = in_tmp
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb,latency_mean_ms"]
    for minute in range(1, 11):
        rows.append(f"{minute * 60},stable,1000,{minute % 3},180,{200 + minute},90")
        rows.append(f"{minute * 60},canary,1000,50,400,300,200")
    (tmp_path / "recorded.csv").write_text("\n".join(rows) + "\n")
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "target: {deployment: web}\nmetrics: {provider: replay, file: recorded.csv}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    done = invoke_cli(
        "baseline", "create", "--from-metrics", "--policy", str(policy), "--window", "5m"
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "performance-baseline.json").read_text())["metrics"]
    # The last 5 minutes of stable: minutes 6..10, errors 0+1+2+0+1 = 4 of 5000.
    assert metrics["error_rate_percent"] == pytest.approx(0.08)
    assert metrics["p95_latency_ms"] == 180
    assert metrics["avg_latency_ms"] == 90
    assert metrics["memory_mb"] == 210
    assert metrics["requests"] == 5000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-f", "no-such-folder/b.json"], "cannot write no-such-folder/b.json"),
        (["--memory-mb", "-5"], "--memory-mb: expected megabytes, 0 or more; got -5"),
        (["--memory-mb", "nan"], "--memory-mb: expected megabytes, 0 or more; got nan"),
    ],
)
def test_bad_out_or_memory_is_one_message_and_exit_2(
    run_cli: Run, fixtures_dir: Path, extra: list[str], message: str
) -> None:
    """Both used to end in a traceback (OSError, pydantic ValidationError) with exit 1."""
    report = fixtures_dir / "k6" / "k6-reporter-simple.json"
    done = run_cli("baseline", "create", "--from-k6", str(report), *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_nan_in_a_report_is_not_a_measurement(invoke_cli: Invoke, in_tmp: Path) -> None:
    """json.loads reads a bare NaN; the reader must refuse it, not write it to the baseline."""
    report = in_tmp / "summary.json"
    report.write_text(
        '{"metrics": {"http_reqs": {"count": 10}, "http_req_failed": {"value": 0.1},'
        ' "http_req_duration": {"avg": NaN, "p(95)": 2}}}'
    )
    done = invoke_cli("baseline", "create", "--from-k6", str(report))
    assert done.returncode == 2
    assert "http_req_duration: expected avg and p(95)" in done.stderr
    assert not (in_tmp / "performance-baseline.json").exists()


def test_a_field_of_the_wrong_type_is_one_message(invoke_cli: Invoke, in_tmp: Path) -> None:
    """Found by mutating the fixtures: aggregate.codes as a number raised AttributeError."""
    report = in_tmp / "report.json"
    report.write_text('{"aggregate": {"latency": {"median": 1, "p95": 2}, "codes": 5}}')
    done = invoke_cli("baseline", "create", "--from-artillery", str(report))
    assert done.returncode == 2
    assert "report.json: not a valid artillery report: a field has an unexpected type" in (
        done.stderr
    )


def test_create_from_metrics_through_a_query_provider(invoke_cli: Invoke, in_tmp: Path) -> None:
    """The providers that run the policy's queries feed the same path (here: real programs)."""
    (in_tmp / "stats.py").write_text(
        "import sys\n"
        "stats = {'requests': 400, 'errors': 4, 'p95': 38.5, 'mean': 21.25}\n"
        "print(stats[sys.argv[2]] if sys.argv[1] == 'v1' else '')\n"
    )

    def run(name: str) -> str:
        return f"['{sys.executable}', stats.py, $version, {name}]"

    policy = in_tmp / "p.yaml"
    policy.write_text(
        "target: {deployment: web}\n"
        "metrics:\n  provider: command\n  versions: {stable: v1, canary: v2}\n  queries:\n"
        f"    requests: {run('requests')}\n    errors: {run('errors')}\n"
        f"    latency_p95_ms: {run('p95')}\n    latency_mean_ms: {run('mean')}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    done = invoke_cli("baseline", "create", "--from-metrics", "--policy", str(policy))
    assert done.returncode == 0, done.stderr
    written = json.loads((in_tmp / "performance-baseline.json").read_text())
    assert written["metrics"]["error_rate_percent"] == pytest.approx(1.0)
    assert (written["metrics"]["p95_latency_ms"], written["metrics"]["avg_latency_ms"]) == (
        38.5,
        21.25,
    )
    assert written["metrics"]["requests"] == 400
    assert written["source"] == "metrics:command:stable:30m"
