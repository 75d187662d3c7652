"""The pre-deployment gate: reports + limits + ignores + baseline → :class:`GateResult`.

:func:`evaluate_gate` does no I/O and reads no clock (``now`` is passed in),
so the CLI, the controller and the tests get the same verdict from the same
inputs. A blocked result carries the decision fields (action,
trigger, reason, severity, notification, evidence) through
:meth:`GateResult.decision`, ready for the audit trail and the
``security_alert`` notification.

Checks, in the order they are reported:

- ``vulnerabilities``: findings deduplicated across reports (same id, same
  package, same installed version; the highest severity any report gave
  wins), minus unexpired ignores, counted by severity and compared with the
  policy's ``security_trigger`` limits (a count above its limit blocks). With
  a ``security_trigger`` in the policy and no report, the gate blocks: a gate
  that has not seen a scan must not pass it.
- ``baseline``: present, valid against the ``performance-baseline.json`` schema, and not older
  than ``baseline.max_age``. Missing, invalid and stale baselines all block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollguard.baseline import Baseline, load_baseline
from rollguard.engine.decision import CONTINUE, Decision, Evidence, Verdict
from rollguard.errors import InputError
from rollguard.policy.actions import DEFAULT_SEVERITY, Action, Severity
from rollguard.policy.triggers import SecurityTriggerSpec
from rollguard.scanners.findings import SEVERITY_ORDER, Finding, Report, VulnSeverity
from rollguard.scanners.ignores import IgnoreEntry, apply_ignores

_LIMITED = (VulnSeverity.CRITICAL, VulnSeverity.HIGH, VulnSeverity.MEDIUM, VulnSeverity.LOW)


@dataclass(frozen=True)
class BaselineInput:
    """A baseline file as the gate sees it: loaded, or why it could not be."""

    path: str
    baseline: Baseline | None = None
    problem: str | None = None  # "missing" or the validation error


def read_baseline(path: str | Path) -> BaselineInput:
    """Load a baseline for the gate; a missing or invalid file is a result, not an error."""
    if not Path(path).exists():
        return BaselineInput(str(path), problem="missing")
    try:
        return BaselineInput(str(path), baseline=load_baseline(path))
    except InputError as exc:
        return BaselineInput(str(path), problem=str(exc))


@dataclass(frozen=True)
class Check:
    """One gate check: passed or not, why, and the evidence behind it."""

    name: str
    passed: bool
    reason: str  # a snake_case code, e.g. "critical_vulnerabilities"
    detail: str  # one sentence for people
    evidence: tuple[Evidence, ...] = ()
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "skipped": self.skipped,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GateResult:
    """Everything the gate decided; ``passed`` is False when any check blocks."""

    passed: bool
    action: Action
    trigger: str | None
    reason: str
    severity: Severity
    notification: str | None
    checks: tuple[Check, ...]
    counts: dict[str, int]
    limits: dict[str, int | None]
    findings: tuple[Finding, ...]  # after dedupe and ignores
    blocking: tuple[Finding, ...]
    ignored: tuple[tuple[Finding, IgnoreEntry], ...] = ()
    notes: tuple[str, ...] = ()
    duplicates_removed: int = 0
    dry_run: bool = False
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

    def decision(self) -> Decision:
        """The result as an engine :class:`Decision`, for the audit trail and notifiers."""
        if self.passed and not self.dry_run:
            return CONTINUE
        return Decision(
            verdict=Verdict.ACT,
            action=self.action,
            trigger=self.trigger,
            reason=self.reason,
            severity=self.severity,
            notification=self.notification,
            evidence=self.evidence,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "dry_run": self.dry_run,
            "action": self.action.value,
            "trigger": self.trigger,
            "reason": self.reason,
            "severity": self.severity.value,
            "notification": self.notification,
            "counts": self.counts,
            "limits": self.limits,
            "blocking": [finding.as_dict() for finding in self.blocking],
            "checks": [check.as_dict() for check in self.checks],
            "ignored": [
                {**finding.as_dict(), "ignore_reason": entry.reason, "expires": str(entry.expires)}
                for finding, entry in self.ignored
            ],
            "notes": list(self.notes),
            "duplicates_removed": self.duplicates_removed,
            "evidence": [item.as_dict() for item in self.evidence],
        }


def deduplicate(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per (id, package, installed version); merge what reports disagree on."""
    merged: dict[tuple[str, str, str, str], Finding] = {}
    for finding in findings:
        seen = merged.get(finding.key)
        if seen is None:
            merged[finding.key] = finding
            continue
        worst = min(seen.severity, finding.severity, key=SEVERITY_ORDER.index)
        sources = seen.source if finding.source in seen.source.split(", ") else None
        merged[finding.key] = replace(
            seen,
            severity=worst,
            fixed=seen.fixed or finding.fixed,
            title=seen.title or finding.title,
            target=seen.target or finding.target,
            source=sources or f"{seen.source}, {finding.source}",
        )
    return list(merged.values())


def evaluate_gate(
    *,
    reports: Sequence[Report],
    security: SecurityTriggerSpec | None,
    ignores: Sequence[IgnoreEntry] = (),
    baseline: BaselineInput | None = None,
    baseline_max_age_seconds: float | None = None,
    now: datetime,
) -> GateResult:
    """Judge a deployment before it starts. Pure: same inputs, same result."""
    spec = security or SecurityTriggerSpec()
    notes: list[str] = []
    if security is None and reports:
        notes.append("the policy has no security_trigger: using the default (0 critical)")
    raw = [finding for report in reports for finding in report.findings]
    unique = deduplicate(raw)
    outcome = apply_ignores(unique, ignores, today=now.astimezone(UTC).date())
    notes.extend(outcome.notes)
    counts = {severity.value: 0 for severity in SEVERITY_ORDER}
    for finding in outcome.kept:
        counts[finding.severity.value] += 1
    limits: dict[str, int | None] = {
        "critical": spec.critical_vulnerabilities,
        "high": spec.high_vulnerabilities,
        "medium": spec.medium_vulnerabilities,
        "low": spec.low_vulnerabilities,
    }
    vuln_check, blocking = _vulnerability_check(reports, security, outcome.kept, counts, limits)
    checks = [vuln_check]
    if baseline is not None:
        checks.append(_baseline_check(baseline, baseline_max_age_seconds, now))
    else:
        checks.append(
            Check("baseline", True, "baseline_not_checked", "no baseline given", skipped=True)
        )
    failed = [check for check in checks if not check.passed]
    dry_run = bool(failed) and spec.dry_run
    if dry_run:
        notes.append("security_trigger is a dry run: the gate would have blocked")
    first = failed[0] if failed else None
    action = spec.action if first else Action.CONTINUE
    return GateResult(
        passed=not failed or dry_run,
        action=action,
        trigger=None if first is None else _trigger_name(first),
        reason=first.reason if first else "all_checks_passed",
        severity=DEFAULT_SEVERITY[action],
        notification=spec.notification if first else None,
        checks=tuple(checks),
        counts=counts,
        limits=limits,
        findings=tuple(_sorted(outcome.kept)),
        blocking=tuple(_sorted(blocking)),
        ignored=outcome.ignored,
        notes=tuple(notes),
        duplicates_removed=len(raw) - len(unique),
        dry_run=dry_run,
        evidence=tuple(item for check in failed for item in check.evidence),
    )


def _trigger_name(check: Check) -> str:
    return "security_trigger" if check.name == "vulnerabilities" else check.name


def _sorted(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.index(f.severity), f.id, f.package))


def _vulnerability_check(
    reports: Sequence[Report],
    security: SecurityTriggerSpec | None,
    kept: Sequence[Finding],
    counts: dict[str, int],
    limits: dict[str, int | None],
) -> tuple[Check, list[Finding]]:
    if not reports:
        if security is None:
            return Check("vulnerabilities", True, "no_reports", "no report given", skipped=True), []
        return Check(
            "vulnerabilities",
            False,
            "vulnerability_report_missing",
            "the policy limits vulnerabilities but no scanner report was given (--vuln-report)",
        ), []
    over = [
        severity
        for severity in _LIMITED
        if (limit := limits[severity.value]) is not None and counts[severity.value] > limit
    ]
    evidence = tuple(
        Evidence(
            trigger="security_trigger",
            signal=f"vulnerabilities_{severity.value}",
            value=float(counts[severity.value]),
            limit=float(limit),
            threshold=float(limit),
            comparison="above",
            window_seconds=0.0,
            reason=f"{counts[severity.value]} {severity.value} (at most {limit} allowed)",
        )
        for severity in over
        if (limit := limits[severity.value]) is not None
    )
    summary = ", ".join(f"{counts[s.value]} {s.value}" for s in SEVERITY_ORDER if counts[s.value])
    if not over:
        detail = f"{summary or 'no findings'} across {len(reports)} report(s): within limits"
        return Check("vulnerabilities", True, "within_limits", detail), []
    first = over[0]
    detail = "; ".join(item.reason for item in evidence) + " — deployment blocked"
    blocking = [finding for finding in kept if finding.severity in over]
    return Check(
        "vulnerabilities", False, f"{first.value}_vulnerabilities", detail, evidence
    ), blocking


def _baseline_check(given: BaselineInput, max_age_seconds: float | None, now: datetime) -> Check:
    if given.problem == "missing":
        return Check(
            "baseline", False, "baseline_missing", f"performance baseline missing: {given.path}"
        )
    if given.baseline is None:
        return Check("baseline", False, "baseline_invalid", f"baseline invalid: {given.problem}")
    stamp = given.baseline.timestamp
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    age = (now - stamp).total_seconds()
    evidence = Evidence(
        trigger="baseline",
        signal="baseline_age_seconds",
        value=age,
        limit=max_age_seconds,
        threshold=max_age_seconds or 0.0,
        comparison="above",
        window_seconds=0.0,
        reason=f"baseline made {_age(age)} ago",
    )
    if max_age_seconds is not None and age > max_age_seconds:
        detail = f"baseline {given.path} is {_age(age)} old (max_age {_age(max_age_seconds)})"
        return Check("baseline", False, "baseline_stale", detail, (evidence,))
    limit = f", max_age {_age(max_age_seconds)}" if max_age_seconds is not None else ""
    return Check("baseline", True, "baseline_ok", f"{given.path}: made {_age(age)} ago{limit}")


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
