"""What every scanner's report becomes: a flat list of :class:`Finding` values.

Each parser maps its tool's severity words onto :class:`VulnSeverity`; anything
a tool marks as unknown stays ``UNKNOWN`` (shown, never counted against a
limit, never silently promoted or dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rollguard.errors import InputError


class VulnSeverity(StrEnum):
    """The four levels the policy limits, plus the scanners' "unknown"."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    UNKNOWN = "unknown"


#: Most severe first; the order tables and JSON use.
SEVERITY_ORDER: tuple[VulnSeverity, ...] = (
    VulnSeverity.CRITICAL,
    VulnSeverity.HIGH,
    VulnSeverity.MEDIUM,
    VulnSeverity.LOW,
    VulnSeverity.UNKNOWN,
)

_WORDS = {
    "critical": VulnSeverity.CRITICAL,
    "high": VulnSeverity.HIGH,
    "medium": VulnSeverity.MEDIUM,
    "moderate": VulnSeverity.MEDIUM,  # GitHub advisories
    "low": VulnSeverity.LOW,
    "negligible": VulnSeverity.LOW,  # Grype
    "unknown": VulnSeverity.UNKNOWN,
}


def severity_from_word(word: str) -> VulnSeverity | None:
    """``"CRITICAL"``, ``"High"``, ``"negligible"`` → a severity; None for other words."""
    return _WORDS.get(word.strip().lower())


def required_severity(raw: Any, path: str, where: str, words: str) -> VulnSeverity:
    """A report's severity word as a severity; raise a located InputError naming ``words``."""
    severity = severity_from_word(raw) if isinstance(raw, str) else None
    if severity is None:
        raise InputError(f"{path}: {where}: expected one of {words} (got {raw!r})")
    return severity


def severity_from_score(score: float) -> VulnSeverity:
    """A CVSS base score bucketed as GitHub code scanning does (>=9, >=7, >=4, >0)."""
    if score >= 9.0:
        return VulnSeverity.CRITICAL
    if score >= 7.0:
        return VulnSeverity.HIGH
    if score >= 4.0:
        return VulnSeverity.MEDIUM
    if score > 0.0:
        return VulnSeverity.LOW
    return VulnSeverity.UNKNOWN


@dataclass(frozen=True)
class Finding:
    """One vulnerability (or misconfiguration, or secret) in one package of one target.

    ``package`` and ``installed`` are empty when the report does not say (e.g.
    a SARIF result from a code scanner); ``fixed`` is empty when no fix exists.
    ``kind`` is ``vulnerability``, ``misconfiguration`` or ``secret``.
    """

    id: str
    severity: VulnSeverity
    package: str
    installed: str
    fixed: str
    target: str
    title: str
    tool: str
    source: str  # the report file it came from
    kind: str = "vulnerability"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity across reports: the same id on the same package and version.

        Findings without a package (misconfigurations, code findings) are told
        apart by their target instead, so two files with the same rule stay two.
        """
        if self.package:
            return (self.id.upper(), self.package, self.installed, "")
        return (self.id.upper(), "", "", self.target)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "package": self.package,
            "installed": self.installed,
            "fixed": self.fixed,
            "target": self.target,
            "title": self.title,
            "tool": self.tool,
            "source": self.source,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Report:
    """One parsed report file."""

    path: str
    tool: str  # "trivy", "grype", or the SARIF driver's name
    format: str  # "trivy-json", "grype-json", "sarif"
    findings: tuple[Finding, ...]


def expect(condition: bool, path: str, where: str, expected: str) -> None:
    """Raise one located :class:`InputError` when a report lacks what its format promises."""
    if not condition:
        raise InputError(f"{path}: {where}: expected {expected}")


def text(value: Any) -> str:
    """A report's optional string field as a string ('' when absent or not a string)."""
    return value if isinstance(value, str) else ""
