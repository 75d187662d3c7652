"""Grype's JSON report (``grype IMAGE -o json``).

One finding per ``matches[]`` entry: the id and severity from
``vulnerability``, the package from ``artifact``. Grype's ``Negligible``
counts as low. The target is the artifact's first location (the file the
package was found in), else the scanned source's ``userInput``.
"""

from __future__ import annotations

from typing import Any

from rollguard.scanners.findings import Finding, Report, expect, required_severity, text

TOOL = "grype"


def looks_like(document: Any) -> bool:
    """Grype's JSON: a mapping with ``matches`` (and usually ``descriptor.name == grype``)."""
    return isinstance(document, dict) and "matches" in document and "source" in document


def parse(document: Any, path: str) -> Report:
    """Every match of a Grype JSON report; raise InputError naming the bad entry."""
    matches = document.get("matches") or []
    expect(isinstance(matches, list), path, "matches", "a list")
    scanned = _source_target(document.get("source"))
    findings = []
    for index, match in enumerate(matches):
        where = f"matches[{index}]"
        expect(isinstance(match, dict), path, where, "an object")
        vulnerability = match.get("vulnerability")
        artifact = match.get("artifact")
        expect(isinstance(vulnerability, dict), path, f"{where}.vulnerability", "an object")
        expect(isinstance(artifact, dict), path, f"{where}.artifact", "an object")
        vuln_id = text(vulnerability.get("id"))
        expect(bool(vuln_id), path, f"{where}.vulnerability.id", "a vulnerability id")
        severity = required_severity(
            vulnerability.get("severity"),
            path,
            f"{where}.vulnerability.severity",
            "Critical, High, Medium, Low, Negligible, Unknown",
        )
        findings.append(
            Finding(
                id=vuln_id,
                severity=severity,
                package=text(artifact.get("name")),
                installed=text(artifact.get("version")),
                fixed=_fixed(vulnerability.get("fix")),
                target=_location(artifact) or scanned,
                title=text(vulnerability.get("description")).split("\n", 1)[0][:120],
                tool=TOOL,
                source=path,
            )
        )
    return Report(path=path, tool=TOOL, format="grype-json", findings=tuple(findings))


def _fixed(fix: Any) -> str:
    if not isinstance(fix, dict) or text(fix.get("state")) != "fixed":
        return ""
    versions = fix.get("versions") or []
    return ", ".join(str(version) for version in versions)


def _location(artifact: dict[str, Any]) -> str:
    locations = artifact.get("locations") or []
    if isinstance(locations, list) and locations and isinstance(locations[0], dict):
        return text(locations[0].get("path"))
    return ""


def _source_target(source: Any) -> str:
    if not isinstance(source, dict):
        return ""
    target = source.get("target")
    if isinstance(target, dict):
        return text(target.get("userInput"))
    return text(target)
