"""How a gate result looks: a rich table for people, Markdown for the CI job summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rollguard.cli import out
from rollguard.cli.github import GitHubActions, markdown_cell
from rollguard.scanners.findings import SEVERITY_ORDER, Finding
from rollguard.scanners.gate import GateResult

SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "unknown": "dim",
}
#: Rows shown in a terminal or a job summary; the JSON output always has them all.
MAX_ROWS = 50


def _versions(finding: Finding) -> str:
    if not finding.installed and not finding.fixed:
        return "—"
    return f"{finding.installed or '?'} → {finding.fixed or 'no fix'}"


def _counts(result: GateResult) -> str:
    parts = []
    for severity in SEVERITY_ORDER:
        limit = result.limits.get(severity.value)
        bound = f"/{limit}" if limit is not None else ""
        parts.append(f"{severity.value} {result.counts[severity.value]}{bound}")
    return " · ".join(parts)


def print_text(result: GateResult, console: Console) -> None:
    """Blocking findings first, then each check, then the one-line verdict."""
    if result.blocking:
        table = Table(title="Blocking findings", title_justify="left")
        for column in ("id", "severity", "package", "installed → fixed", "target"):
            table.add_column(column, overflow="fold")
        for finding in result.blocking[:MAX_ROWS]:
            table.add_row(
                out.styled(finding.id),
                out.styled(finding.severity.value, SEVERITY_STYLE[finding.severity.value]),
                out.styled(finding.package or "—"),
                out.styled(_versions(finding)),
                out.styled(finding.target or "—"),
            )
        console.print(table)
        if len(result.blocking) > MAX_ROWS:
            console.print(
                out.line(f"… and {len(result.blocking) - MAX_ROWS} more (see --output json)")
            )
    for check in result.checks:
        mark = (
            ("skip", out.DIM)
            if check.skipped
            else ("pass", out.OK)
            if check.passed
            else ("FAIL", "red")
        )
        console.print(out.line(mark, f" {check.name}: {check.detail}"))
    for note in result.notes:
        console.print(out.line(("note", out.WARN), f" {note}"))
    ignored = f" · {len(result.ignored)} ignored" if result.ignored else ""
    deduped = (
        f" · {result.duplicates_removed} duplicates merged" if result.duplicates_removed else ""
    )
    console.print(out.line(f"counts (found/limit): {_counts(result)}{ignored}{deduped}"))
    if result.passed:
        suffix = " (dry run: it would have blocked)" if result.dry_run else ""
        console.print(out.line(("gate passed", "bold green"), suffix))
    else:
        console.print(
            out.line(("deployment blocked", out.BAD), f": {result.reason} ({result.trigger})")
        )


def markdown(result: GateResult) -> str:
    """The job summary: verdict, checks, counts, blocking findings."""
    verdict = "passed ✅" if result.passed else f"blocked ❌ (`{result.reason}`)"
    lines = [
        f"## rollguard gate: {verdict}",
        "",
        "| check | result | detail |",
        "| --- | --- | --- |",
    ]
    for check in result.checks:
        state = "skipped" if check.skipped else "pass" if check.passed else "**FAIL**"
        lines.append(f"| {check.name} | {state} | {markdown_cell(check.detail)} |")
    lines += ["", f"Counts (found/limit): {_counts(result)}", ""]
    if result.blocking:
        lines += [
            "| id | severity | package | installed → fixed | target |",
            "| --- | --- | --- | --- | --- |",
        ]
        for finding in result.blocking[:MAX_ROWS]:
            cells = [finding.id, finding.severity.value, finding.package or "—"]
            cells += [_versions(finding), finding.target or "—"]
            lines.append("| " + " | ".join(markdown_cell(cell) for cell in cells) + " |")
        if len(result.blocking) > MAX_ROWS:
            lines.append(f"\n… and {len(result.blocking) - MAX_ROWS} more.")
    lines += [f"- {markdown_cell(note)}" for note in result.notes]
    return "\n".join(lines)


def annotate(result: GateResult, github: GitHubActions) -> None:
    """One error per failed check, a warning per note (expired ignores, unused ones)."""
    for check in result.checks:
        if not check.passed:
            github.error(check.detail, title=f"rollguard gate: {check.reason}")
    for finding in result.blocking[:10]:
        github.error(
            f"{finding.id} ({finding.severity.value}) in {finding.package or finding.target}"
            f" {_versions(finding)}",
            title="rollguard gate: blocking finding",
        )
    for note in result.notes:
        github.warning(note, title="rollguard gate")
    github.summary(markdown(result))
