"""The pure gate: dedupe across reports, limits, ignores (and their expiry), baseline checks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from rollguard.engine.decision import Verdict
from rollguard.errors import InputError
from rollguard.policy.actions import Action, Severity
from rollguard.policy.triggers import SecurityTriggerSpec
from rollguard.scanners.gate import evaluate_gate, read_baseline
from rollguard.scanners.ignores import IgnoreEntry, load_ignores
from rollguard.scanners.reports import load_report

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SEED = SecurityTriggerSpec.model_validate(
    {"critical_vulnerabilities": "0 tolerance", "high_vulnerabilities": "10 maximum"}
)


def test_critical_blocks_with_the_seed_decision(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "trivy-action-alpine-3.10.json")
    result = evaluate_gate(reports=[report], security=SEED, now=NOW)
    assert not result.passed
    assert result.counts["critical"] == 1
    assert [f.id for f in result.blocking] == ["CVE-2021-36159"]
    decision = result.decision()
    assert decision.verdict is Verdict.ACT
    assert decision.action is Action.DEPLOYMENT_BLOCK
    assert decision.reason == "critical_vulnerabilities"
    assert decision.trigger == "security_trigger"
    assert decision.severity is Severity.CRITICAL
    assert decision.notification == "security_alert"
    assert decision.evidence[0].value == 1.0
    assert decision.evidence[0].limit == 0.0


def test_within_limits_passes(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "pip.json.golden")  # 1 high, 1 medium
    result = evaluate_gate(reports=[report], security=SEED, now=NOW)
    assert result.passed
    assert result.blocking == ()
    assert result.decision().verdict is Verdict.CONTINUE
    assert result.counts == {"critical": 0, "high": 1, "medium": 1, "low": 0, "unknown": 0}


def test_high_over_its_maximum_blocks(grype_dir: Path) -> None:
    report = load_report(grype_dir / "chainguard-ruby-test.json")  # 3 high
    strict = SecurityTriggerSpec(critical_vulnerabilities=0, high_vulnerabilities=2)
    result = evaluate_gate(reports=[report], security=strict, now=NOW)
    assert not result.passed
    assert result.reason == "high_vulnerabilities"
    assert len(result.blocking) == 3
    lenient = SecurityTriggerSpec(critical_vulnerabilities=0, high_vulnerabilities=3)
    assert evaluate_gate(reports=[report], security=lenient, now=NOW).passed


def test_dedupe_across_json_and_sarif_of_the_same_scan(grype_dir: Path) -> None:
    reports = [
        load_report(grype_dir / "TestJsonImgsPresenter.golden"),  # critical 1, low 1
        load_report(grype_dir / "TestSarifPresenter_image.golden"),  # same two, both "high"
    ]
    result = evaluate_gate(reports=reports, security=SEED, now=NOW)
    assert result.duplicates_removed == 2
    assert len(result.findings) == 2
    # When reports disagree, the worst severity any of them gave is kept.
    assert {f.id: f.severity.value for f in result.findings} == {
        "CVE-1999-0002": "critical",
        "CVE-1999-0001": "high",
    }
    assert "," in result.findings[0].source  # both files named


def test_same_id_on_two_packages_is_two_findings(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "alpine-39.json.golden")
    result = evaluate_gate(reports=[report, report], security=SEED, now=NOW)
    assert result.duplicates_removed == 6  # the second copy adds nothing
    assert result.counts["critical"] == 2  # CVE-2019-14697 in musl and in musl-utils
    assert {f.package for f in result.blocking} == {"musl", "musl-utils"}


def test_ignore_unexpired_drops_and_expired_counts_again(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "trivy-action-alpine-3.10.json")
    live = IgnoreEntry(id="CVE-2021-36159", reason="apk not in runtime", expires=date(2026, 6, 1))
    result = evaluate_gate(reports=[report], security=SEED, ignores=[live], now=NOW)
    assert result.passed  # expiry day itself still ignores
    assert result.counts["critical"] == 0
    assert [f.id for f, _ in result.ignored] == ["CVE-2021-36159"]

    stale = IgnoreEntry(id="CVE-2021-36159", reason="apk not in runtime", expires=date(2026, 5, 31))
    result = evaluate_gate(reports=[report], security=SEED, ignores=[stale], now=NOW)
    assert not result.passed
    assert result.counts["critical"] == 1
    assert any("expired on 2026-05-31" in note and "counted again" in note for note in result.notes)


def test_ignore_limited_to_a_package(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "alpine-39.json.golden")
    entry = IgnoreEntry(id="CVE-2019-14697", reason="x", expires=date(2027, 1, 1), package="musl")
    result = evaluate_gate(reports=[report], security=SEED, ignores=[entry], now=NOW)
    assert [f.package for f in result.blocking] == ["musl-utils"]


def test_policy_with_limits_and_no_report_blocks() -> None:
    result = evaluate_gate(reports=[], security=SEED, now=NOW)
    assert not result.passed
    assert result.reason == "vulnerability_report_missing"


def test_dry_run_passes_but_says_it_would_block(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "trivy-action-alpine-3.10.json")
    spec = SecurityTriggerSpec(critical_vulnerabilities=0, dry_run=True)
    result = evaluate_gate(reports=[report], security=spec, now=NOW)
    assert result.passed
    assert result.dry_run
    assert result.decision().action is Action.DEPLOYMENT_BLOCK


# --- baseline ---------------------------------------------------------------------


def _baseline(path: Path, timestamp: str) -> Path:
    body = {
        "timestamp": timestamp,
        "metrics": {"error_rate_percent": 0.5, "avg_latency_ms": 80, "p95_latency_ms": 200},
        "thresholds": {"max_error_rate": 5},
    }
    path.write_text(json.dumps(body))
    return path


@pytest.mark.parametrize(
    ("stamp", "max_age", "reason"),
    [
        ("2026-06-01T10:00:00Z", 3 * 3600.0, "baseline_ok"),
        ("2026-05-01T10:00:00Z", 7 * 86400.0, "baseline_stale"),
        ("2026-05-01T10:00:00Z", None, "baseline_ok"),
    ],
)
def test_baseline_age(tmp_path: Path, stamp: str, max_age: float | None, reason: str) -> None:
    given = read_baseline(_baseline(tmp_path / "b.json", stamp))
    result = evaluate_gate(
        reports=[], security=None, baseline=given, baseline_max_age_seconds=max_age, now=NOW
    )
    check = next(c for c in result.checks if c.name == "baseline")
    assert check.reason == reason
    assert result.passed is (reason == "baseline_ok")


def test_baseline_missing_and_invalid_block(tmp_path: Path) -> None:
    missing = evaluate_gate(
        reports=[], security=None, baseline=read_baseline(tmp_path / "nope.json"), now=NOW
    )
    assert (missing.passed, missing.reason, missing.trigger) == (
        False,
        "baseline_missing",
        "baseline",
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"timestamp": "2026-06-01T00:00:00Z", "metrics": {"avg_latency_ms": 1}}')
    invalid = evaluate_gate(reports=[], security=None, baseline=read_baseline(bad), now=NOW)
    assert invalid.reason == "baseline_invalid"
    assert "metrics.error_rate_percent" in invalid.checks[1].detail


# --- ignore file ------------------------------------------------------------------


def test_ignore_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "ignore.yaml"
    path.write_text(
        "ignores:\n"
        "  - id: CVE-2021-36159\n"
        "    reason: apk-tools is removed in the final stage\n"
        "    expires: 2026-12-31\n"
    )
    [entry] = load_ignores(path)
    assert entry.expires == date(2026, 12, 31)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "ignores:\n  - id: CVE-1\n    expires: 2026-01-01\n",
            r":2: ignores\[0\]\.reason: required",
        ),
        ("ignores:\n  - id: CVE-1\n    reason: ok\n", r":2: ignores\[0\]\.expires: required"),
        (
            "ignores:\n  - id: CVE-1\n    reason: ok\n    expires: someday\n",
            r":4: ignores\[0\]\.expires: ",
        ),
        ("ignores:\n  - id: CVE-1\n    reason: '  '\n    expires: 2026-01-01\n", "reason must"),
        ("ignores:\n  - id: CVE-1\n    reason: ok\n    expires: 2026-01-01\n    pkg: x\n", "pkg"),
        ("ignores: 3\n", "expected a list of entries"),
        ("ignores: [\n", r"ignore\.yaml:2:1: not valid YAML: [^\n]*'<stream end>'$"),
    ],
)
def test_bad_ignore_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "ignore.yaml"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        load_ignores(path)


def test_reports_without_security_trigger_use_the_seed_default(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "debian-buster.json.golden")  # 1 critical, 1 low
    result = evaluate_gate(reports=[report], security=None, now=NOW)
    assert not result.passed
    assert result.limits["critical"] == 0
    assert any("no security_trigger" in note for note in result.notes)


def test_nothing_to_check_passes_with_both_checks_skipped() -> None:
    result = evaluate_gate(reports=[], security=None, now=NOW)
    assert result.passed
    assert [check.skipped for check in result.checks] == [True, True]
