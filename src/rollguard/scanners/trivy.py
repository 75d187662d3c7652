"""Trivy's JSON report (``trivy image|fs --format json``), schema version 2.

Read: ``Results[].Vulnerabilities[]`` (one finding per entry, so the same CVE
in two packages is two findings), ``Results[].Misconfigurations[]`` whose
``Status`` is ``FAIL``, and ``Results[].Secrets[]`` — as Trivy's own
``--exit-code`` counts every scanner's findings, so does the gate. The
pre-0.20 layout (a bare list of results) is read too.
"""

from __future__ import annotations

from typing import Any

from rollguard.scanners.findings import (
    Finding,
    Report,
    VulnSeverity,
    expect,
    required_severity,
    text,
)

TOOL = "trivy"


def looks_like(document: Any) -> bool:
    """Trivy's JSON: a mapping with ``SchemaVersion`` and ``Results``, or the old bare list."""
    if isinstance(document, dict):
        return "Results" in document and ("SchemaVersion" in document or "Trivy" in document)
    return (
        isinstance(document, list)
        and bool(document)
        and all(isinstance(item, dict) and "Target" in item for item in document)
    )


def parse(document: Any, path: str) -> Report:
    """Every finding of a Trivy JSON report; raise InputError naming the bad entry."""
    results = document.get("Results") if isinstance(document, dict) else document
    if results is None:  # a clean scan of nothing has no Results at all
        results = []
    expect(isinstance(results, list), path, "Results", "a list of scan results")
    findings: list[Finding] = []
    for index, result in enumerate(results):
        where = f"Results[{index}]"
        expect(isinstance(result, dict), path, where, "an object")
        target = text(result.get("Target"))
        findings += _vulnerabilities(result, target, path, where)
        findings += _misconfigurations(result, target, path, where)
        findings += _secrets(result, target, path, where)
    return Report(path=path, tool=TOOL, format="trivy-json", findings=tuple(findings))


def _entries(result: dict[str, Any], key: str, path: str, where: str) -> list[dict[str, Any]]:
    entries = result.get(key) or []
    expect(isinstance(entries, list), path, f"{where}.{key}", "a list")
    for index, entry in enumerate(entries):
        expect(isinstance(entry, dict), path, f"{where}.{key}[{index}]", "an object")
    return entries


def _severity(entry: dict[str, Any], path: str, where: str) -> VulnSeverity:
    return required_severity(
        entry.get("Severity"), path, f"{where}.Severity", "CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN"
    )


def _vulnerabilities(result: dict[str, Any], target: str, path: str, where: str) -> list[Finding]:
    out = []
    for index, entry in enumerate(_entries(result, "Vulnerabilities", path, where)):
        here = f"{where}.Vulnerabilities[{index}]"
        vuln_id = text(entry.get("VulnerabilityID"))
        expect(bool(vuln_id), path, f"{here}.VulnerabilityID", "a vulnerability id")
        out.append(
            Finding(
                id=vuln_id,
                severity=_severity(entry, path, here),
                package=text(entry.get("PkgName")),
                installed=text(entry.get("InstalledVersion")),
                fixed=text(entry.get("FixedVersion")),
                target=target,
                title=text(entry.get("Title")),
                tool=TOOL,
                source=path,
            )
        )
    return out


def _misconfigurations(result: dict[str, Any], target: str, path: str, where: str) -> list[Finding]:
    out = []
    for index, entry in enumerate(_entries(result, "Misconfigurations", path, where)):
        if text(entry.get("Status")).upper() not in ("FAIL", ""):
            continue  # PASS and EXCEPTION entries are not findings
        here = f"{where}.Misconfigurations[{index}]"
        check_id = text(entry.get("ID")) or text(entry.get("AVDID"))
        expect(bool(check_id), path, f"{here}.ID", "a check id")
        line = (entry.get("CauseMetadata") or {}).get("StartLine")
        out.append(
            Finding(
                id=check_id,
                severity=_severity(entry, path, here),
                package="",
                installed="",
                fixed="",
                target=f"{target}:{line}" if isinstance(line, int) and line > 0 else target,
                title=text(entry.get("Title")),
                tool=TOOL,
                source=path,
                kind="misconfiguration",
            )
        )
    return out


def _secrets(result: dict[str, Any], target: str, path: str, where: str) -> list[Finding]:
    out = []
    for index, entry in enumerate(_entries(result, "Secrets", path, where)):
        here = f"{where}.Secrets[{index}]"
        line = entry.get("StartLine")
        out.append(
            Finding(
                id=text(entry.get("RuleID")) or "secret",
                severity=_severity(entry, path, here),
                package="",
                installed="",
                fixed="",
                target=f"{target}:{line}" if isinstance(line, int) and line > 0 else target,
                title=text(entry.get("Title")),  # never the secret's text itself
                tool=TOOL,
                source=path,
                kind="secret",
            )
        )
    return out
