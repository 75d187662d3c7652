"""How a gate result looks: a rich table for people, Markdown for the CI job summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
            style = SEVERITY_STYLE[finding.severity.value]
            table.add_row(
                escape(finding.id),
                f"[{style}]{finding.severity.value}[/]",
                escape(finding.package or "—"),
                escape(_versions(finding)),
                escape(finding.target or "—"),
            )
        console.print(table)
        if len(result.blocking) > MAX_ROWS:
            console.print(f"… and {len(result.blocking) - MAX_ROWS} more (see --output json)")
    for check in result.checks:
        mark = (
            "[dim]skip[/]"
            if check.skipped
            else "[green]pass[/]"
            if check.passed
            else "[red]FAIL[/]"
        )
        console.print(
            f"{mark} {check.name}: {escape(check.detail)}", highlight=False, soft_wrap=True
        )
    for note in result.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    ignored = f" · {len(result.ignored)} ignored" if result.ignored else ""
    deduped = (
        f" · {result.duplicates_removed} duplicates merged" if result.duplicates_removed else ""
    )
    console.print(f"counts (found/limit): {_counts(result)}{ignored}{deduped}", highlight=False)
    if result.passed:
        suffix = " (dry run: it would have blocked)" if result.dry_run else ""
        console.print(f"[bold green]gate passed[/]{suffix}")
    else:
        console.print(
            f"[bold red]deployment blocked[/]: {result.reason} ({result.trigger})", highlight=False
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
