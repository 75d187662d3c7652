"""The live page as people see it at desktop widths, in each state a deployment can be in.

One ``serve`` holds: shop (rolled back), cart (healthy), slow (a gradual rollback
waiting between steps: rolling back), gap (its data stops: inconclusive) and a
broken policy. Each width gets a screenshot in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_harness import HEADER, Served, recording, start_serve, write_policies

from chromium import artifact_path, band_problems, chromium_page, layout_problems, low_contrast

SLOW = """\
name: slow-policy
target: {deployment: slow, executor: {type: noop}}
metrics: {provider: replay, file: bad.csv}
analysis: {interval: 0.1s, persistence: 2, min_requests: 20, no_data_limit: 3}
rollback: {canary_weight: 20, steps: [50, 100], step_wait: 1h}
error_rate_trigger: {threshold: 5%, measurement_window: 10s, action: gradual_rollback}
latency_trigger:
  {threshold: 50% increase from stable, measurement_window: 10s, action: gradual_rollback}
"""

GAP = """\
name: gap-policy
target: {deployment: gap, executor: {type: noop}}
metrics: {provider: replay, file: gap.csv}
analysis: {interval: 0.1s, persistence: 2, min_requests: 20, no_data_limit: 3}
error_rate_trigger: {threshold: 5%, measurement_window: 10s, action: immediate_rollback}
latency_trigger: {threshold: 800ms, measurement_window: 10s, action: gradual_rollback}
"""

#: A number shown in a signals cell must carry its unit.
WITH_UNIT = re.compile(r"^(—|-?[\d.]+(%| ms| MB|/min)?)( \(\w+\))?$")


@pytest.fixture(scope="module")
def every_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("states")
    write_policies(folder)
    rows = recording(seconds=7200, bad_after=None).splitlines()[1:]
    # Data for the first 20 s of replay time, then none for two hours: inconclusive.
    kept = [row for row in rows if int(row.split(",")[0]) <= 20 or int(row.split(",")[0]) > 7000]
    (folder / "gap.csv").write_text("\n".join([HEADER, *kept]) + "\n")
    (folder / "gap.yaml").write_text(GAP)
    (folder / "slow.yaml").write_text(SLOW)
    with start_serve(folder) as served:
        served.wait_status("shop", "rolled_back")
        served.wait_status("gap", "inconclusive")
        served.wait_status("slow", "acting")
        yield served


@pytest.mark.real_server
@pytest.mark.parametrize("width", [1280, 1920])
def test_page_reads_whole_in_every_state(every_state: Served, tmp_path: Path, width: int) -> None:
    errors: list[str] = []
    with chromium_page(tmp_path, width=width, height=1000) as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(every_state.url + "/", wait_until="load")
        for name in ("shop", "cart", "slow"):
            page.locator(f'article[data-deployment="{name}"] [data-testid="charts"]').wait_for()
        # A few polls so each chart has a line, not a dot.
        page.wait_for_function(
            "document.querySelectorAll('article[data-deployment=\"cart\"] path.value')"
            ".length && document.querySelector('article[data-deployment=\"cart\"] path.value')"
            ".getAttribute('d').split('L').length > 2",
            timeout=20_000,
        )
        page.screenshot(path=artifact_path(f"serve-page-{width}.png"), full_page=True)
        assert layout_problems(page) == []
        assert low_contrast(page) == []
        # Every chart shades its fault-free band behind the lines, up to its limit line;
        # slow's latency limit is relative (stable's 120 ms + 50 %).
        assert band_problems(page) == []
        slow = page.locator('article[data-deployment="slow"]')
        latency = slow.locator('figure[data-trigger="latency_trigger"] figcaption').inner_text()
        assert "limit 180 ms" in latency
        # A status badge reads on one line, inside its cell.
        broken = page.locator(".badge").evaluate_all(
            "bs => bs.filter(b => b.getBoundingClientRect().height >"
            " 2 * parseFloat(getComputedStyle(b).fontSize) + 4 || b.getBoundingClientRect().right"
            " > b.parentElement.getBoundingClientRect().right + 1).map(b => b.textContent)"
        )
        assert broken == []
        statuses = {
            name: page.locator(f'article[data-deployment="{name}"]').get_attribute("data-status")
            for name in ("shop", "cart", "slow", "gap")
        }
        assert statuses == {
            "shop": "rolled_back",
            "cart": "watching",
            "slow": "acting",
            "gap": "inconclusive",
        }
        # Every value, limit and reference carries its unit.
        cells = page.locator("table.signals tbody td:nth-child(-n+3):not(:first-child)")
        texts = cells.evaluate_all("cs => cs.map(c => c.textContent)")
        assert texts
        assert [text for text in texts if not WITH_UNIT.match(text)] == []
        assert any(text.endswith("%") for text in texts)
        assert any(text.endswith(" ms") for text in texts)
        # Each chart has its limit line; the rolled-back one marks the decision.
        shop = page.locator('article[data-deployment="shop"]')
        assert shop.locator('[data-testid="limit-line"]').count() >= 1
        assert shop.locator('[data-testid="decision-marker"]').count() >= 1
        assert shop.locator("svg[role=img][aria-label]").count() >= 1
        # An inconclusive end is not a "continue" decision; counts are in words.
        gap = page.locator('article[data-deployment="gap"] [data-testid="decision"]').inner_text()
        assert "continue" not in gap.lower()
        assert "inconclusive" in gap.lower()
        # Its timeline does not call the verdict "continue" either, and the data it had
        # before going quiet is still charted, against its limit.
        card = page.locator('article[data-deployment="gap"]')
        assert "continue:" not in card.locator('[data-testid="timeline"]').inner_text()
        first = card.locator('figure[data-trigger="error_rate_trigger"]')
        assert int(first.get_attribute("data-points") or 0) > 0
        assert first.locator('[data-testid="limit-line"]').count() == 1
        summary = page.locator("#summary").inner_text()
        assert "1 policy error" in summary
        assert "policy errors" not in summary
        assert "(s)" not in page.locator("body").inner_text()
        # Times carry their date.
        first = page.locator("#audit tbody td").first.inner_text()
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", first), first
        assert "broken.yaml" in page.locator("#policy-errors").inner_text()
    assert errors == []
