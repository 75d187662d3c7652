"""``rollguard gate`` end to end: real reports in, exit code and output out."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

Run = Callable[..., subprocess.CompletedProcess[str]]
Invoke = Callable[..., Any]

SEED_SECURITY = """
security_trigger:
  critical_vulnerabilities: 0 tolerance
  high_vulnerabilities: 10 maximum
  action: immediate_deployment_block
  notification: security_alert
"""


def _policy(tmp_path: Path, *, baseline: bool = False, extra: str = "") -> Path:
    text = "target: {deployment: web}\nmetrics: {provider: replay, file: r.csv}\n"
    if baseline:
        text += "baseline: {file: performance-baseline.json, max_age: 7d}\n"
    path = tmp_path / "policy.yaml"
    path.write_text(text + SEED_SECURITY + extra)
    return path


def _baseline(tmp_path: Path, *, age: timedelta) -> Path:
    stamp = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "timestamp": stamp,
        "metrics": {"error_rate_percent": 0.4, "avg_latency_ms": 90, "p95_latency_ms": 210},
        "thresholds": {"max_error_rate": 5},
    }
    path = tmp_path / "performance-baseline.json"
    path.write_text(json.dumps(body))
    return path


def test_blocks_on_critical_with_table(run_cli: Run, tmp_path: Path, fixtures_dir: Path) -> None:
    policy = _policy(tmp_path)
    report = fixtures_dir / "trivy" / "trivy-action-alpine-3.10.json"
    done = run_cli("gate", "--policy", str(policy), "--vuln-report", str(report))
    assert done.returncode == 3, done.stderr
    assert "CVE-2021-36159" in done.stdout
    assert "apk-tools" in done.stdout
    assert "2.10.6-r0 → 2.10.7-r0" in done.stdout
    assert "deployment blocked: critical_vulnerabilities" in done.stdout


def test_json_output_after_dedupe_and_ignores(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    policy = _policy(tmp_path, baseline=True)
    _baseline(tmp_path, age=timedelta(hours=2))
    ignore = tmp_path / "ignore.yaml"
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    ignore.write_text(
        f"ignores:\n  - id: CVE-1999-0002\n    reason: test package\n    expires: {expires}\n"
    )
    done = invoke_cli(
        "gate",
        "--policy",
        str(policy),
        "--vuln-report",
        str(fixtures_dir / "grype" / "TestJsonImgsPresenter.golden"),
        "--vuln-report",
        str(fixtures_dir / "grype" / "TestSarifPresenter_image.golden"),
        "--ignore-file",
        str(ignore),
        "--output",
        "json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert body["passed"] is True
    # 4 raw findings, 2 duplicates merged, 1 ignored: one high (worst of "Low" and CVSS 8.2).
    assert body["counts"] == {"critical": 0, "high": 1, "medium": 0, "low": 0, "unknown": 0}
    assert body["duplicates_removed"] == 2
    assert body["blocking"] == []
    assert [check["name"] for check in body["checks"]] == ["vulnerabilities", "baseline"]
    assert all(check["passed"] for check in body["checks"])
    assert body["ignored"][0]["id"] == "CVE-1999-0002"


def test_expired_ignore_blocks_and_says_so(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text(
        "ignores:\n  - id: CVE-2021-36159\n    reason: accepted in Q1\n    expires: 2020-01-01\n"
    )
    policy = _policy(tmp_path, extra="  ignore_file: ignore.yaml\n")
    report = fixtures_dir / "trivy" / "trivy-action-alpine-3.10.json"
    args = ["--policy", str(policy), "--vuln-report", str(report), "--output", "json"]
    done = invoke_cli("gate", *args)
    assert done.returncode == 3
    body = json.loads(done.stdout)
    assert body["counts"]["critical"] == 1
    assert any("expired on 2020-01-01" in note for note in body["notes"])
    assert body["reason"] == "critical_vulnerabilities"
    assert body["action"] == "deployment_block"
    assert body["notification"] == "security_alert"


def test_stale_and_missing_baseline_block(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    policy = _policy(tmp_path, baseline=True)
    report = str(fixtures_dir / "trivy" / "pip.json.golden")
    missing = invoke_cli(
        "gate", "--policy", str(policy), "--vuln-report", report, "--output", "json"
    )
    assert missing.returncode == 3
    assert json.loads(missing.stdout)["reason"] == "baseline_missing"
    _baseline(tmp_path, age=timedelta(days=8))
    stale = invoke_cli("gate", "--policy", str(policy), "--vuln-report", report, "--output", "json")
    assert stale.returncode == 3
    assert json.loads(stale.stdout)["reason"] == "baseline_stale"
    _baseline(tmp_path, age=timedelta(days=1))
    fresh = invoke_cli("gate", "--policy", str(policy), "--vuln-report", report)
    assert fresh.returncode == 0, fresh.stdout
    assert "gate passed" in fresh.stdout


def test_bad_report_is_exit_2_without_traceback(run_cli: Run, tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    bad = tmp_path / "scan.json"
    bad.write_text('{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabi')
    done = run_cli("gate", "--policy", str(policy), "--vuln-report", str(bad))
    assert done.returncode == 2
    assert "scan.json:1:" in done.stderr
    assert "truncated" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_tool_report_is_exit_2(run_cli: Run, tmp_path: Path, fixtures_dir: Path) -> None:
    policy = _policy(tmp_path)
    k6 = fixtures_dir / "k6" / "k6-reporter-simple.json"
    done = run_cli("gate", "--policy", str(policy), "--vuln-report", str(k6))
    assert done.returncode == 2
    assert "unknown report format" in done.stderr
    assert "Traceback" not in done.stderr


def test_github_actions_summary_and_annotations(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    policy = _policy(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    report = fixtures_dir / "trivy" / "alpine-39.json.golden"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    done = invoke_cli("gate", "--policy", str(policy), "--vuln-report", str(report), env=env)
    assert done.returncode == 3
    assert "::error title=rollguard gate%3A critical_vulnerabilities::2 critical" in done.stdout
    assert "::error title=rollguard gate%3A blocking finding::CVE-2019-14697" in done.stdout
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, never overwritten
    assert "## rollguard gate: blocked" in text
    assert "| CVE-2019-14697 | critical | musl-utils |" in text


def test_no_github_output_outside_actions(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    policy = _policy(tmp_path)
    summary = tmp_path / "summary.md"
    report = fixtures_dir / "trivy" / "alpine-39.json.golden"
    env = {"GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": str(summary)}
    done = invoke_cli("gate", "--policy", str(policy), "--vuln-report", str(report), env=env)
    assert done.returncode == 3
    assert "::error" not in done.stdout
    assert not summary.exists()


def test_json_mode_keeps_annotations_off_stdout(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    policy = _policy(tmp_path)
    report = fixtures_dir / "trivy" / "alpine-39.json.golden"
    env = {"GITHUB_ACTIONS": "true"}
    done = invoke_cli(
        "gate", "--policy", str(policy), "--vuln-report", str(report), "--output", "json", env=env
    )
    assert json.loads(done.stdout)["passed"] is False
    assert "::error" in done.stderr


def test_every_verdict_is_audited_and_a_block_is_notified(
    run_cli: Run, tmp_path: Path, fixtures_dir: Path
) -> None:
    from rollguard.audit.factory import open_store

    policy = _policy(
        tmp_path,
        extra="notifications:\n  channels: {log: {type: log}}\n  routes: {security_alert: [log]}\n",
    )
    report = fixtures_dir / "trivy" / "trivy-action-alpine-3.10.json"
    blocked = run_cli("gate", "--policy", str(policy), "--vuln-report", str(report))
    assert blocked.returncode == 3, blocked.stderr
    assert "[security_alert] rollguard: deployment of web blocked" in blocked.stderr
    store = open_store("sqlite:///.rollguard/audit.db", base_dir=tmp_path)
    try:
        (entry,) = store.list(kind="gate")
        assert entry.record.outcome == "blocked"
        assert entry.record.action == "deployment_block"
        assert entry.record.deployment == "web"
        assert entry.record.evidence["counts"]["critical"] >= 1
        assert store.verify().ok
    finally:
        store.close()


def test_sarif_without_severities_is_exit_2(invoke_cli: Invoke, tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    sarif = tmp_path / "lint.sarif"
    sarif.write_text(
        '{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "lint", "rules": '
        '[{"id": "R1"}]}}, "results": [{"ruleId": "R1", "message": {"text": "x"}}]}]}'
    )
    done = invoke_cli("gate", "--policy", str(policy), "--vuln-report", str(sarif))
    assert done.returncode == 2
    assert "lint.sarif: runs[0].results[0] (rule R1): expected a severity" in done.stderr


def test_ignore_file_without_reason_is_exit_2(
    invoke_cli: Invoke, tmp_path: Path, fixtures_dir: Path
) -> None:
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text("ignores:\n  - id: CVE-2021-36159\n    expires: 2030-01-01\n")
    policy = _policy(tmp_path)
    report = fixtures_dir / "trivy" / "trivy-action-alpine-3.10.json"
    args = ["--policy", str(policy), "--vuln-report", str(report), "--ignore-file", str(ignore)]
    done = invoke_cli("gate", *args)
    assert done.returncode == 2
    assert "ignore.yaml:2: ignores[0].reason: required" in done.stderr
