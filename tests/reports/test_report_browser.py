"""The HTML report as people see it in headless Chromium: layout, marks, charts, dark and print.

Screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit_records import day, record_watch
from chromium import artifact_path, chromium_page, layout_problems, low_contrast
from rollguard.audit.factory import open_store
from rollguard.reports.build import build, render_report

UNTIL = datetime(2026, 11, 30, tzinfo=UTC)


def _report(tmp_path: Path, recover: list[float], name: str) -> Path:
    """An HTML report of one healthy watch and a rollback per ``recover`` time."""
    store = open_store(f"sqlite:///{tmp_path / f'{name}.db'}")
    if recover:
        record_watch(store, watch_id="ok", start=day(2))
    for n, seconds in enumerate(recover):
        record_watch(
            store,
            watch_id=f"r{n}",
            start=day(3 + n % 20),
            detect_after=30 + 7 * n,
            recover_after=seconds,
            outcome="failure" if n == 0 else "success",
            evidence=_evidence(n),
        )
    report = build(store, since="2026-11-01T00:00:00Z", until=UNTIL)
    store.close()
    page = tmp_path / f"{name}.html"
    page.write_text(render_report(report, format="html"), encoding="utf-8")
    return page


def _evidence(n: int) -> dict[str, object]:
    """A threshold trigger's evidence, or (every third rollback) a sequential test's."""
    if n % 3 == 2:
        return {
            "signal": "error_rate_percent",
            "method": "sequential",
            "value": 3.1e5,
            "statistic": {"e_value": 3.1e5, "threshold": 200.0},
        }
    return {
        "signal": "error_rate_percent",
        "value": 6.5 + n,
        "limit": 5.0,
        "reference": 1.0,
        "reference_source": "stable",
        "method": "threshold",
    }


#: Checks whose later lines start left of the check's name, by more than the space after the
#: mark (empty when none).
HANGING = """lis => lis.filter(li => {
  const name = li.querySelector('strong').getBoundingClientRect().left;
  const range = document.createRange();
  range.setStart(li.querySelector('strong'), 0);
  range.setEnd(li, li.childNodes.length);
  return [...range.getClientRects()].some(r => r.width > 0 && r.left < name - 6);
}).map(li => li.dataset.check)"""

NARROW = [4.01, 4.02, 4.02, 4.05, 4.07, 4.09]
WIDE = [0.4, 3.0, 45.0, 300.0, 1800.0, 2900.0, 6.5, 6.5]


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize(("name", "recover"), [("narrow", NARROW), ("wide", WIDE)])
def test_report_reads_whole_at_desktop_widths(
    tmp_path: Path, width: int, name: str, recover: list[float]
) -> None:
    html = _report(tmp_path, recover, name)
    with chromium_page(tmp_path, width=width, height=900) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(html.as_uri())
        page.screenshot(path=artifact_path(f"report-{name}-{width}.png"), full_page=True)
        assert layout_problems(page) == []
        assert low_contrast(page) == []
        # Marks are drawn (SVG + a word), never emoji a machine may lack a font for.
        text = page.locator("body").inner_text()
        assert not {"✅", "❌", "❔"} & set(text)
        marks = page.locator("#checklist [data-mark]")
        assert marks.count() == 6
        assert page.locator("#checklist [data-mark] svg").count() == 6
        assert (
            page.locator('#checklist [data-check="No failed rollbacks"]')
            .inner_text()
            .startswith("fail")
        )
        # Count axes tick at whole numbers only.
        ticks = page.locator("svg.chart [data-tick]").evaluate_all(
            "ts => ts.map(t => t.textContent)"
        )
        assert ticks
        assert all(tick.isdigit() for tick in ticks), ticks
        # The time-to-recover bins differ from one another and hold every rollback.
        bars = page.locator("#time-to-recover rect.bar").evaluate_all(
            "bs => bs.map(b => [b.dataset.label, Number(b.dataset.value)])"
        )
        labels = [label for label, _ in bars]
        assert len(set(labels)) == len(labels) > 1, labels
        assert sum(value for _, value in bars) == len(recover)
        # Each rollback has its "why" chart: the canary past the limit line, with units.
        whys = page.locator("figure.why-figure")
        assert whys.count() == len(recover)
        first = whys.first.locator("svg")
        limit = float(str(first.locator("line.limit").get_attribute("data-limit")))
        canary = float(str(first.locator('rect[data-label="canary"]').get_attribute("data-value")))
        assert canary > limit
        assert "limit 5%" in str(first.text_content())
        sequential = page.locator('figure.why-figure[data-entry] rect[data-label="e-value"]')
        assert sequential.count() == sum(1 for n in range(len(recover)) if n % 3 == 2)
        assert errors == []


def test_narrow_spread_gets_bins_that_tell_it_apart(tmp_path: Path) -> None:
    html = _report(tmp_path, NARROW, "narrow").read_text(encoding="utf-8")
    assert "4.010-4.020s" in html or "4.01-4.02s" in html
    assert "≤0.0s" not in html


def test_dark_mode_keeps_text_readable(tmp_path: Path) -> None:
    html = _report(tmp_path, WIDE, "dark")
    with chromium_page(tmp_path, width=1280, height=900) as page:
        page.emulate_media(color_scheme="dark")
        page.goto(html.as_uri())
        page.screenshot(path=artifact_path("report-dark-1280.png"), full_page=True)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(255, 255, 255)"
        assert low_contrast(page) == []


def test_print_is_black_on_white_and_fits_the_page(tmp_path: Path) -> None:
    html = _report(tmp_path, WIDE, "print")
    with chromium_page(tmp_path, width=794, height=1123) as page:  # A4 at 96 dpi
        page.emulate_media(media="print", color_scheme="dark")
        page.goto(html.as_uri())
        page.screenshot(path=artifact_path("report-print.png"), full_page=True)
        colours = page.evaluate(
            "(s => [s.color, s.backgroundColor])(getComputedStyle(document.body))"
        )
        assert colours == ["rgb(0, 0, 0)", "rgb(255, 255, 255)"]
        assert layout_problems(page) == []
        # A check that wraps on paper continues under its name, not under its mark.
        stray = page.locator("#checklist li").evaluate_all(HANGING)
        assert stray == []
        page.pdf(path=str(artifact_path("report.pdf")))


def test_an_empty_trail_reads_empty_never_green(tmp_path: Path) -> None:
    html = _report(tmp_path, [], "empty")
    with chromium_page(tmp_path, width=1280, height=900) as page:
        page.goto(html.as_uri())
        page.screenshot(path=artifact_path("report-empty.png"), full_page=True)
        verify = page.locator("#verify")
        assert verify.get_attribute("data-ok") == "empty"
        assert "empty" in verify.inner_text()
        text = page.locator("body").inner_text()
        assert "Audit trail complete" not in text
        assert "✅" not in text
        assert page.locator('[data-mark="pass"]').count() == 0
