"""Names from the trail reach a report's reader as text, never as markup.

``report --format md`` wrote ``<img src=x onerror=...>`` from a trigger name
as it was; a viewer that renders the Markdown ran it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit_records import day, record_watch
from rollguard.audit.factory import open_store
from rollguard.reports.build import build, render_report
from rollguard.reports.compute import ComplianceReport
from rollguard.reports.render import md_text

HOSTILE = {
    "trigger": '<img src=x onerror="alert(1)">',
    "severity": "[click](javascript:alert(1))|\n| injected | 99 |",
    "deployment": "\x1b]0;pwned\x07shop",
}


@pytest.fixture
def report(tmp_path: Path) -> ComplianceReport:
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        record_watch(store, watch_id="ok", start=day(2))
        record_watch(store, watch_id="bad", start=day(3), detect_after=30, **HOSTILE)
        return build(store, since="2026-11-01T00:00:00Z", until=datetime(2026, 11, 30, tzinfo=UTC))
    finally:
        store.close()


def test_markdown_shows_hostile_names_as_text(report: ComplianceReport) -> None:
    markdown = render_report(report, format="md")
    assert "<img" not in markdown
    assert '&lt;img src=x onerror="alert(1)"&gt;' in markdown
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown)  # no link, only its text
    assert "\\[click\\](javascript:alert(1))" in markdown
    assert "\x1b" not in markdown
    # A value cannot add a row to a table: one line per row, cells escaped.
    assert "| injected | 99 |" not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| \\[click")]
    assert rows == ["| \\[click\\](javascript:alert(1))\\|\\\\n\\| injected \\| 99 \\| | 1 |"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("error_rate_trigger", "error_rate_trigger"),
        ("a & b", "a &amp; b"),
        ("`code`", "\\`code\\`"),
        ("**bold**", "\\*\\*bold\\*\\*"),
        ("line\r\nbreak", "line\\\\r\\\\nbreak"),
        ("\u2028", "\\\\u2028"),
    ],
)
def test_md_text(value: str, shown: str) -> None:
    assert md_text(value) == shown


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_shows_hostile_names_as_text(report: ComplianceReport) -> None:
    page = render_report(report, format="html")
    parsed = _Tags()
    parsed.feed(page)
    assert "img" not in parsed.tags
    assert "script" not in parsed.tags
    shown = "".join(parsed.text)
    assert HOSTILE["trigger"] in shown  # the name is there, as text
    assert not re.search(r"<a [^>]*href=.?javascript", page)
