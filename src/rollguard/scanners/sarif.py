"""SARIF 2.1.0 from any producer (Trivy, Grype, Scorecard, CodeQL, Semgrep, ...).

Severity of a result, first found wins:

1. ``properties.security-severity`` (a CVSS-like score, on the result or its
   rule), bucketed as GitHub does: >= 9 critical, >= 7 high, >= 4 medium,
   > 0 low;
2. the SARIF ``level`` (the result's, else its rule's
   ``defaultConfiguration.level``): error → high, warning → medium,
   note → low, none → unknown.

A result with neither is refused: the SARIF default level ("warning") is a
guess a gate should not make. Results of kind ``pass``, ``notApplicable`` or
``informational``, and results suppressed in the source, are not findings.

Package, installed and fixed versions are read where producers put them:
``Package:`` / ``Installed Version:`` / ``Fixed Version:`` lines in the
message (Trivy) or rule help (Grype), or the rule's ``properties.purls``
(Grype). Grype names rules ``<id>-<package>``; the vulnerability id is taken
from the front so findings deduplicate with Grype's and Trivy's JSON.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from rollguard.scanners.findings import (
    Finding,
    Report,
    VulnSeverity,
    expect,
    severity_from_score,
    text,
)

_LEVELS = {
    "error": VulnSeverity.HIGH,
    "warning": VulnSeverity.MEDIUM,
    "note": VulnSeverity.LOW,
    "none": VulnSeverity.UNKNOWN,
}
_NOT_FINDINGS = {"pass", "notApplicable", "informational"}
_VULN_ID = re.compile(
    r"^(CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|GO-\d{4}-\d{4,}|PYSEC-\d{4}-\d+|RUSTSEC-\d{4}-\d+)",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^\s*(Package|Installed Version|Version|Fixed Version|Fix Version):[ \t]*(.*?)\s*$",
    re.MULTILINE,
)


def looks_like(document: Any) -> bool:
    """A SARIF log: a mapping with a ``runs`` list and a SARIF version or schema."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("runs"), list)
        and ("version" in document or "sarif" in text(document.get("$schema")).lower())
    )


def parse(document: dict[str, Any], path: str) -> Report:
    """Every failing result of every run; raise InputError naming the bad result."""
    version = document.get("version")
    expect(version == "2.1.0", path, "version", f"SARIF 2.1.0 (got {version!r})")
    findings: list[Finding] = []
    tools: list[str] = []
    for run_index, run in enumerate(document["runs"]):
        where = f"runs[{run_index}]"
        expect(isinstance(run, dict), path, where, "an object")
        driver: Any = (run.get("tool") or {}).get("driver")
        expect(isinstance(driver, dict), path, f"{where}.tool.driver", "an object")
        tool = text(driver.get("name")).lower() or "sarif"
        tools.append(tool)
        rules = driver.get("rules") or []
        expect(isinstance(rules, list), path, f"{where}.tool.driver.rules", "a list")
        by_id = {rule.get("id"): rule for rule in rules if isinstance(rule, dict)}
        results = run.get("results") or []
        expect(isinstance(results, list), path, f"{where}.results", "a list")
        for index, result in enumerate(results):
            here = f"{where}.results[{index}]"
            expect(isinstance(result, dict), path, here, "an object")
            if result.get("kind") in _NOT_FINDINGS or _suppressed(result):
                continue
            rule = _rule(result, rules, by_id)
            findings.append(_finding(result, rule, tool, path, here))
    tool_name = tools[0] if len(set(tools)) == 1 else "sarif"
    return Report(path=path, tool=tool_name, format="sarif", findings=tuple(findings))


def _rule(result: dict[str, Any], rules: list[Any], by_id: dict[Any, Any]) -> dict[str, Any]:
    index = result.get("ruleIndex")
    if isinstance(index, int) and 0 <= index < len(rules) and isinstance(rules[index], dict):
        found: dict[str, Any] = rules[index]
        return found
    rule_id = result.get("ruleId") or (result.get("rule") or {}).get("id")
    by_name: dict[str, Any] = by_id.get(rule_id, {})
    return by_name


def _suppressed(result: dict[str, Any]) -> bool:
    suppressions = result.get("suppressions") or []
    return any(
        isinstance(item, dict) and item.get("status", "accepted") == "accepted"
        for item in suppressions
    )


def _severity(result: dict[str, Any], rule: dict[str, Any], path: str, where: str) -> VulnSeverity:
    for holder in (result, rule):
        properties = holder.get("properties") or {}
        raw = properties.get("security-severity") if isinstance(properties, dict) else None
        if raw is None:
            continue
        try:
            score = float(raw)
        except (TypeError, ValueError):
            score = -1.0
        expect(
            0.0 <= score <= 10.0,
            path,
            f"{where}.properties.security-severity",
            f"a score from 0.0 to 10.0 (got {raw!r})",
        )
        return severity_from_score(score)
    configuration = rule.get("defaultConfiguration")
    default_level = configuration.get("level") if isinstance(configuration, dict) else None
    level: Any = result.get("level") or default_level
    rule_id = result.get("ruleId") or rule.get("id") or "?"
    expect(
        level is not None,
        path,
        f"{where} (rule {rule_id})",
        "a severity: properties.security-severity on the result or its rule, "
        "or a level (result.level or the rule's defaultConfiguration.level)",
    )
    expect(
        isinstance(level, str) and level in _LEVELS,
        path,
        f"{where}.level",
        f"one of error, warning, note, none (got {level!r})",
    )
    return _LEVELS[level]


def _finding(
    result: dict[str, Any], rule: dict[str, Any], tool: str, path: str, where: str
) -> Finding:
    rule_id = text(result.get("ruleId")) or text(rule.get("id"))
    expect(bool(rule_id), path, f"{where}.ruleId", "a rule id")
    match = _VULN_ID.match(rule_id)
    message = text((result.get("message") or {}).get("text"))
    labels = _labels(message) or _labels(text((rule.get("help") or {}).get("text")))
    package = labels.get("Package", "")
    installed = labels.get("Installed Version") or labels.get("Version", "")
    if not package:
        package, installed = _from_purl(rule)
    tags = (rule.get("properties") or {}).get("tags") or []
    kind = "vulnerability"
    if "misconfiguration" in tags:
        kind = "misconfiguration"
    elif "secret" in tags:
        kind = "secret"
    title = text((rule.get("shortDescription") or {}).get("text")) or message.split("\n", 1)[0]
    return Finding(
        id=match.group(1) if match else rule_id,
        severity=_severity(result, rule, path, where),
        package=package,
        installed=installed,
        fixed=_version_list(labels.get("Fixed Version") or labels.get("Fix Version", "")),
        target=_target(result),
        title=title[:120],
        tool=tool,
        source=path,
        kind=kind,
    )


def _labels(message: str) -> dict[str, str]:
    return dict(_LABEL.findall(message))


def _version_list(raw: str) -> str:
    """``1.2.1,2.1.3`` → ``1.2.1, 2.1.3``: the same spelling as the JSON parsers."""
    return ", ".join(part.strip() for part in raw.split(",") if part.strip())


def _from_purl(rule: dict[str, Any]) -> tuple[str, str]:
    """``pkg:deb/debian/openssl@1.1.1?arch=amd64`` → ("openssl", "1.1.1")."""
    purls = (rule.get("properties") or {}).get("purls") or []
    if not purls or not isinstance(purls[0], str):
        return "", ""
    body = purls[0].split("?", 1)[0].split("#", 1)[0]
    name, _, version = body.rpartition("/")[2].partition("@")
    return unquote(name), unquote(version)


def _target(result: dict[str, Any]) -> str:
    for location in result.get("locations") or []:
        physical = location.get("physicalLocation") or {} if isinstance(location, dict) else {}
        uri = text((physical.get("artifactLocation") or {}).get("uri"))
        if uri:
            line = (physical.get("region") or {}).get("startLine")
            return f"{unquote(uri)}:{line}" if isinstance(line, int) and line > 1 else unquote(uri)
    return ""
