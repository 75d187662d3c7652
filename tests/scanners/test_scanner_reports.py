"""Every real scanner report in ../shared/fixtures parses to the counts its SOURCES.md gives."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rollguard.errors import InputError
from rollguard.scanners.reports import load_report, parse_report

# (folder/file, tool, format, counts by severity, counts by kind) — from each SOURCES.md.
CASES = [
    ("trivy/alpine-39.json.golden", "trivy", "trivy-json", {"critical": 2, "medium": 4}),
    ("trivy/debian-buster.json.golden", "trivy", "trivy-json", {"critical": 1, "low": 1}),
    (
        "trivy/fluentd-multiple-lockfiles.json.golden",
        "trivy",
        "trivy-json",
        {"critical": 1, "high": 1, "low": 1},
    ),
    ("trivy/pip.json.golden", "trivy", "trivy-json", {"high": 1, "medium": 1}),
    ("trivy/trivy-action-alpine-3.10.json", "trivy", "trivy-json", {"critical": 1}),
    (
        "trivy/trivy-action-config-scan.json",
        "trivy",
        "trivy-json",
        {"high": 5, "medium": 1, "low": 2},
    ),
    ("trivy/alpine-310.sarif.golden", "trivy", "sarif", {"medium": 4}),
    ("trivy/trivy-action-config-scan.sarif", "trivy", "sarif", {"high": 5, "medium": 1, "low": 2}),
    ("grype/TestJsonImgsPresenter.golden", "grype", "grype-json", {"critical": 1, "low": 1}),
    ("grype/chainguard-ruby-test.json", "grype", "grype-json", {"high": 3}),
    ("grype/ghsa-test.json", "grype", "grype-json", {"medium": 2}),
    # Grype's SARIF carries the CVSS score (8.2, 8.5) as security-severity: both high.
    ("grype/TestSarifPresenter_image.golden", "grype", "sarif", {"high": 2}),
    ("sarif/scorecard-check3.sarif", "scorecard", "sarif", {"high": 1, "medium": 1}),
    ("sarif/scorecard-check8.sarif", "scorecard", "sarif", {"high": 2, "low": 4}),
]


@pytest.mark.parametrize(("name", "tool", "fmt", "counts"), CASES)
def test_fixture_counts_match_sources(
    fixtures_dir: Path, name: str, tool: str, fmt: str, counts: dict[str, int]
) -> None:
    report = load_report(fixtures_dir / name)
    assert report.tool == tool
    assert report.format == fmt
    assert Counter(finding.severity.value for finding in report.findings) == counts


def test_trivy_vulnerability_fields(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "pip.json.golden")
    first = report.findings[0]
    assert (first.id, first.package, first.installed, first.fixed, first.target) == (
        "CVE-2019-14806",
        "Werkzeug",
        "0.11",
        "0.15.3",
        "requirements.txt",
    )


def test_trivy_config_scan_findings_are_misconfigurations(trivy_dir: Path) -> None:
    json_report = load_report(trivy_dir / "trivy-action-config-scan.json")
    sarif_report = load_report(trivy_dir / "trivy-action-config-scan.sarif")
    assert {finding.kind for finding in json_report.findings} == {"misconfiguration"}
    # The JSON and SARIF of the same scan name the same checks at the same places.
    assert {f.key for f in json_report.findings} == {f.key for f in sarif_report.findings}


def test_trivy_sarif_reads_package_and_versions_from_the_message(trivy_dir: Path) -> None:
    report = load_report(trivy_dir / "alpine-310.sarif.golden")
    keys = {(f.id, f.package, f.installed, f.fixed) for f in report.findings}
    assert ("CVE-2019-1549", "libssl1.1", "1.1.1c-r0", "1.1.1d-r0") in keys
    assert ("CVE-2019-1551", "libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2") in keys


def test_grype_sarif_and_json_name_the_same_vulnerabilities(grype_dir: Path) -> None:
    sarif = load_report(grype_dir / "TestSarifPresenter_image.golden")
    grype = load_report(grype_dir / "TestJsonImgsPresenter.golden")
    assert {f.key for f in sarif.findings} == {f.key for f in grype.findings}
    fixed = {f.id: f.fixed for f in sarif.findings}
    assert fixed == {"CVE-1999-0001": "1.2.1, 2.1.3, 3.4.0", "CVE-1999-0002": ""}


def test_grype_fix_only_when_fixed(grype_dir: Path) -> None:
    report = load_report(grype_dir / "chainguard-ruby-test.json")
    by_package = {(f.id, f.package): f.fixed for f in report.findings}
    assert by_package[("CVE-2023-28755", "ruby-3.0")] == "3.0.6-r0"
    assert by_package[("CVE-2023-28755", "uri")] == ""  # fix state "unknown"


# --- bad input: one clear message, never a traceback -------------------------------


def test_truncated_report_is_refused_with_its_position(trivy_dir: Path, tmp_path: Path) -> None:
    whole = (trivy_dir / "pip.json.golden").read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.json:\d+:\d+: not valid JSON.*truncated"):
        load_report(cut)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "the report is empty"),
        ("<html>502 Bad Gateway</html>", "not valid JSON"),
        ('{"findings": []}', r"unknown report format \(top-level keys: findings\)"),
        ("[1, 2]", r"unknown report format \(a JSON list\)"),
        ('{"version": "2.0.0", "runs": []}', r"version: expected SARIF 2\.1\.0"),
    ],
)
def test_bad_reports(raw: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_report(raw, source="r.json")


def test_cyclonedx_bom_is_named_and_refused(trivy_dir: Path) -> None:
    with pytest.raises(InputError, match="CycloneDX BOM"):
        load_report(trivy_dir / "npm-cyclonedx.json.golden")


def test_sarif_without_any_severity_is_refused() -> None:
    raw = """{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "lint",
      "rules": [{"id": "R1"}]}}, "results": [{"ruleId": "R1", "message": {"text": "x"}}]}]}"""
    with pytest.raises(
        InputError, match=r"runs\[0\]\.results\[0\] \(rule R1\): expected a severity"
    ):
        parse_report(raw, source="lint.sarif")


def test_sarif_level_is_used_when_no_score() -> None:
    raw = """{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "lint",
      "rules": [{"id": "R1", "defaultConfiguration": {"level": "error"}}]}},
      "results": [{"ruleId": "R1"}, {"ruleId": "R1", "level": "note"},
                  {"ruleId": "R1", "kind": "pass"},
                  {"ruleId": "R1", "suppressions": [{"kind": "inSource"}]}]}]}"""
    report = parse_report(raw, source="lint.sarif")
    assert [f.severity.value for f in report.findings] == ["high", "low"]


@pytest.mark.parametrize(
    ("score", "severity"),
    [("9.0", "critical"), ("8.9", "high"), ("7.0", "high"), ("4.0", "medium"), ("0.1", "low")],
)
def test_security_severity_buckets(score: str, severity: str) -> None:
    raw = f"""{{"version": "2.1.0", "runs": [{{"tool": {{"driver": {{"name": "x"}}}},
      "results": [{{"ruleId": "CVE-2024-0001", "level": "note",
                    "properties": {{"security-severity": "{score}"}}}}]}}]}}"""
    assert parse_report(raw).findings[0].severity.value == severity


def test_bad_security_severity_is_refused() -> None:
    raw = """{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
      "results": [{"ruleId": "R", "properties": {"security-severity": "high"}}]}]}"""
    with pytest.raises(InputError, match=r"a score from 0\.0 to 10\.0"):
        parse_report(raw)


def test_trivy_unknown_severity_word_is_refused() -> None:
    raw = """{"SchemaVersion": 2, "Results": [{"Target": "t", "Vulnerabilities": [
      {"VulnerabilityID": "CVE-2024-1", "Severity": "SEVERE"}]}]}"""
    with pytest.raises(InputError, match=r"Vulnerabilities\[0\]\.Severity: expected one of"):
        parse_report(raw)


def test_grype_match_without_vulnerability_is_refused() -> None:
    with pytest.raises(InputError, match=r"matches\[0\]\.vulnerability: expected an object"):
        parse_report('{"matches": [{"artifact": {}}], "source": {}}')


@pytest.mark.parametrize(
    ("name", "unique"),
    [
        ("trivy/alpine-39.json.golden", {"critical": 1, "medium": 2}),
        ("trivy/alpine-310.sarif.golden", {"medium": 2}),
        ("grype/chainguard-ruby-test.json", {"high": 2}),
    ],
)
def test_unique_ids_match_sources(fixtures_dir: Path, name: str, unique: dict[str, int]) -> None:
    """SOURCES.md's "unique" counts collapse by id; rollguard keeps one per package (gate.md)."""
    report = load_report(fixtures_dir / name)
    ids = {(f.severity.value, f.id) for f in report.findings}
    assert Counter(severity for severity, _ in ids) == unique


@pytest.mark.parametrize(
    ("result", "rule", "message"),
    [
        ('{"ruleId": "R1"}', '{"id": "R1", "defaultConfiguration": "high"}', "expected a severity"),
        ('{"ruleId": "R1", "level": ["error"]}', '{"id": "R1"}', r"level: expected one of error"),
    ],
)
def test_sarif_level_of_the_wrong_type_is_refused(result: str, rule: str, message: str) -> None:
    """A string defaultConfiguration or a list level used to raise AttributeError/TypeError."""
    raw = f"""{{"version": "2.1.0", "runs": [{{"tool": {{"driver": {{"name": "lint",
      "rules": [{rule}]}}}}, "results": [{result}]}}]}}"""
    with pytest.raises(InputError, match=message):
        parse_report(raw, source="lint.sarif")


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        (
            '{"matches": [{"vulnerability": {"id": "CVE-1", "severity": "High",'
            ' "fix": {"versions": 5, "state": "fixed"}}, "artifact": {"name": "a",'
            ' "version": "1"}}], "source": {}}',
            "Grype JSON",
        ),
        ('{"version": "2.1.0", "runs": [{"tool": 5, "results": []}]}', "SARIF"),
    ],
)
def test_a_field_of_the_wrong_type_deep_down_is_one_message(raw: str, label: str) -> None:
    """Found by mutating the fixtures' fields: AttributeError/TypeError used to escape."""
    with pytest.raises(InputError, match=f"x.json: not a valid {label} report"):
        parse_report(raw, source="x.json")
