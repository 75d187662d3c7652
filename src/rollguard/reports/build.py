"""Build the report from a store: read the period's entries, verify, compute, render."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Literal

from rollguard.reports import render
from rollguard.reports.compute import ComplianceReport, compute
from rollguard.reports.views import ReportSource
from rollguard.timestamps import now_rfc3339, rfc3339


def build(
    store: ReportSource,
    *,
    since: str,
    until: datetime | None = None,
    deployment: str | None = None,
    namespace: str | None = None,
) -> ComplianceReport:
    """The report for entries from ``since`` (RFC 3339) up to now; verify covers the whole chain.

    ``deployment`` and ``namespace`` narrow the figures to one deployment (its
    name in every namespace, or in ``namespace``) or to one namespace.
    """
    end = rfc3339(until) if until is not None else now_rfc3339()
    # Details (evidence) are read for decisions only: they say why each rollback fired.
    decisions = {
        entry.id: entry
        for entry in store.list(
            since=since, kind="decision", deployment=deployment, namespace=namespace
        )
    }
    entries = [
        decisions.get(entry.id, entry)
        for entry in store.list(
            since=since, details=False, deployment=deployment, namespace=namespace
        )
        if entry.record.timestamp <= end
    ]
    return compute(entries, period_start=since, period_end=end, verify=store.verify())


def render_report(report: ComplianceReport, *, format: Literal["md", "html", "json"]) -> str:
    """Markdown, HTML or JSON (every figure and checklist line, for machines) text."""
    if format == "json":
        return json.dumps(dataclasses.asdict(report), indent=2) + "\n"
    return render.markdown(report) if format == "md" else render.html(report)
