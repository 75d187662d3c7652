"""Render a :class:`ComplianceReport` as Markdown (the documented layout) or self-contained HTML.

Names and messages in a report come from the audit trail, which anyone able to
write a policy or a record fills: a trigger named ``<img src=x onerror=...>``
must reach the reader as text. HTML output is autoescaped by Jinja; Markdown
output passes every such value through :func:`md_text`.
"""

from __future__ import annotations

import html as html_text
import re
from importlib import resources

from rollguard.reports import charts
from rollguard.reports.compute import ComplianceReport

#: Markdown is read in terminals and on forges that have emoji fonts; HTML draws its marks in SVG.
MARKS = {"pass": "✅", "fail": "❌", "unknown": "❔"}
#: Characters that make Markdown text into markup: code, emphasis, links and images,
#: table cells (``_`` is left alone: GitHub ignores it inside words, as in trigger names).
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")
#: Rollbacks that get a "why it fired" chart in HTML (the newest events table is capped too).
WHY_CHARTS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def md_text(value: object) -> str:
    """``value`` as literal text in Markdown: on one line, no markup, no HTML.

    Markdown punctuation is backslash-escaped, ``&``, ``<`` and ``>`` become HTML
    entities (Markdown passes raw HTML through), and control characters and line
    breaks are shown as escapes (``\\x1b``) so a value can neither end a table row
    nor reach a terminal that prints the file.
    """
    text = _CONTROL.sub(lambda found: repr(found.group())[1:-1], str(value))
    return html_text.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False)


def markdown(report: ComplianceReport) -> str:
    """The compliance report, every line computed."""
    lines = [
        "# Automated Rollback Compliance Report",
        "",
        f"**Period**: {md_text(report.period_start[:10])} to {md_text(report.period_end[:10])}",
        "",
        "## Summary",
        f"- Total Deployments: {report.total_deployments}",
        f"- Rollback Events: {report.rollback_events}",
        f"- Rollback Rate: {_percent(report.rollback_rate_percent)}",
        f"- Failed Rollbacks: {report.failed_rollbacks}",
        f"- Blocked Deployments: {report.blocked_deployments}",
        f"- Time to Detect: mean {_secs(report.time_to_detect.mean)}, "
        f"p95 {_secs(report.time_to_detect.p95)}",
        f"- Time to Recover: mean {_secs(report.time_to_recover.mean)}, "
        f"p95 {_secs(report.time_to_recover.p95)}",
        f"- Affected Users (estimated): {report.affected_users}",
        "",
        "## Compliance Status",
    ]
    lines += [
        f"- {MARKS[i.status]} {md_text(i.name)} — {md_text(i.evidence)}" for i in report.checklist
    ]
    for title, counts in (
        ("Rollbacks by Trigger", report.by_trigger),
        ("Rollbacks by Severity", report.by_severity),
        ("Rollbacks by Action", report.by_action),
    ):
        lines += ["", f"## {title}", "", "| | count |", "| --- | ---: |"]
        rows = [f"| {md_text(name)} | {count} |" for name, count in counts.items()]
        lines += rows or ["| (none) | 0 |"]
    lines += [
        "",
        "## Audit Trail",
        f"- Entries verified: {report.verify.entries}",
        f"- Head hash: `{md_text(report.verify.head_hash).replace('`', '')}`",
        f"- Result: {md_text(report.verify.message)}",
        "",
    ]
    return "\n".join(lines)


def html(report: ComplianceReport) -> str:
    """One HTML file with inline CSS and SVG charts; opens offline."""
    from jinja2 import Environment, select_autoescape

    template_text = (
        resources.files("rollguard.reports")
        .joinpath("templates/report.html.j2")
        .read_text(encoding="utf-8")
    )
    environment = Environment(
        autoescape=select_autoescape(default=True), keep_trailing_newline=True
    )
    days, per_day = charts.per_day(
        report.rollbacks_per_day, start=report.period_start, end=report.period_end
    )
    detect = [e.detect_seconds for e in report.events if e.detect_seconds is not None]
    recover = [e.recover_seconds for e in report.events if e.recover_seconds is not None]
    return environment.from_string(template_text).render(
        report=report,
        percent=_percent,
        secs=_secs,
        chart_days=charts.bar_chart("rollbacks-per-day", "Rollbacks per day", days, per_day),
        chart_detect=charts.bar_chart(
            "time-to-detect", "Time to detect (rollbacks per bin)", *charts.histogram(detect)
        ),
        chart_recover=charts.bar_chart(
            "time-to-recover", "Time to recover (rollbacks per bin)", *charts.histogram(recover)
        ),
        whys=[
            (event, charts.why_chart(f"why-{event.entry_id}", event.why))
            for event in report.events[:WHY_CHARTS]
            if event.why is not None
        ],
        stats_rows=[
            ("Time to detect", report.time_to_detect),
            ("Time to recover", report.time_to_recover),
        ],
    )


def _percent(value: float | None) -> str:
    return "n/a (no deployments)" if value is None else f"{value:.2f}%"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}s"
