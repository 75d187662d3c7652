"""The page opened late still shows the last hour; sequential triggers read as evidence.

``serve`` runs ``cart`` (healthy, then paused so its count stops) and ``seq``
(a sequential error-rate test that gathers evidence and rolls back) before any
browser looks. The page must then chart every evaluation `serve` kept, draw
the sequential trigger's e-value against 1/alpha without the signal's unit, and
show no traffic split for the ``noop`` executor, which reads none back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from serve_harness import HEADER, TOKEN, Served, sequential_policy, start_serve, write_policies

from chromium import artifact_path, band_problems, chromium_page, layout_problems
from rollguard.demo import router
from rollguard.demo.servers import ThreadServer, serve_in_thread
from rollguard.executors.recording import ASSUMED as NOOP
from rollguard.server.history import MAX_EVENTS
from support import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _dense(seconds: int, bad_after: int) -> str:
    """A row every 0.1 s for each version: the sequential test reads each interval's rows."""
    rows = [HEADER]
    for tenth in range(1, seconds * 10 + 1):
        at = tenth / 10
        rows.append(f"{at:.1f},stable,100,1,120,300")
        rows.append(f"{at:.1f},canary,100,{12 if at > bad_after else 1},125,305")
    return "\n".join(rows) + "\n"


STEPS = """\
name: steps-policy
target: {{deployment: steps, executor: {{type: local, router: '{router}'}}}}
metrics: {{provider: replay, file: bad.csv}}
analysis: {{interval: 0.1s, persistence: 2, min_requests: 20, no_data_limit: 3}}
rollback: {{canary_weight: 20, steps: [50, 100], step_wait: 0.3s,
           recovered_below_error_rate_percent: 0}}
error_rate_trigger: {{threshold: 5%, measurement_window: 10s, action: gradual_rollback}}
"""
ALPHA = "\N{GREEK SMALL LETTER ALPHA}"
#: Points of a path: "M x,y" then "L x,y" per point.
POINT = re.compile(r"[ML]-?[\d.]+,-?[\d.]+")


@contextmanager
def front_stopped(server: ThreadServer) -> Iterator[None]:
    try:
        yield
    finally:
        server.stop()


def _check_history_answers(served: Served, counts: dict[str, int]) -> None:
    history = served.client.get("/api/v1/deployments/cart/history")
    assert history.status_code == 200
    body = history.json()
    for series in body["triggers"]:
        assert len(series["at"]) == counts["cart"] <= body["capacity"]
    # Bounded whatever runs: rows per trigger, events, and so bytes.
    assert body["capacity"] == 3600
    assert len(body["events"]) <= MAX_EVENTS
    assert len(history.content) < 64 * body["capacity"] * len(body["triggers"]) + 40_000
    seq = served.client.get("/api/v1/deployments/seq/history").json()
    [test] = seq["triggers"]
    assert test["method"] == "sequential"
    assert max(v for v in test["value"] if v is not None) >= 100  # crossed 1/alpha
    assert set(test["limit"]) == {100.0}
    assert "decision" in [event["kind"] for event in seq["events"]]


def _check_sequential_reads_as_evidence(page: Page, evaluations: int) -> None:
    card = page.locator('article[data-deployment="seq"]')
    sequential = card.locator('figure[data-trigger="error_rate_trigger"]')
    assert sequential.get_attribute("data-method") == "sequential"
    assert sequential.get_attribute("data-points") == str(evaluations)
    caption = sequential.locator("figcaption").inner_text()
    assert "sequential" in caption.lower()
    assert f"1/{ALPHA} = 100" in caption
    assert "%" not in caption  # evidence has no unit
    assert sequential.locator('[data-testid="limit-line"]').count() == 1
    assert sequential.locator('[data-testid="decision-marker"]').count() >= 1
    assert sequential.locator("path.reference").count() == 0
    ticks = sequential.locator("text.tick").evaluate_all("ts => ts.map(t => t.textContent)")
    assert [tick for tick in ticks[:2] if "%" in tick] == []
    cells = card.locator("table.signals tbody tr").first.locator("td").all_inner_texts()
    assert "sequential" in cells[0].lower()
    assert cells[1].startswith("e-value ")
    assert cells[2] == f"1/{ALPHA} = 100"


def _check_traffic_steps(served: Served, page: Page) -> None:
    """The real router's split, read back after each step of the gradual rollback."""
    events = served.client.get("/api/v1/deployments/steps/history").json()["events"]
    assert [e["canary_weight"] for e in events if e["kind"] == "weight"] == [10, 0]
    card = page.locator('article[data-deployment="steps"]')
    assert "stable 100%" in card.locator('[data-testid="split"]').inner_text()
    chart = card.locator('figure[data-trigger="error_rate_trigger"]')
    assert chart.locator('[data-testid="step-marker"]').count() == 2
    assert chart.locator('[data-testid="decision-marker"]').count() >= 1


@pytest.mark.real_server
def test_a_page_opened_late_charts_the_last_hour(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    (folder / "shop.yaml").unlink()
    (folder / "seq.csv").write_text(_dense(600, bad_after=40))
    (folder / "seq.yaml").write_text(sequential_policy("seq.csv"))
    front = serve_in_thread(
        router.create_app("http://127.0.0.1:9", "http://127.0.0.1:9", canary_percent=20)
    )
    (folder / "steps.yaml").write_text(STEPS.format(router=front.url))
    with front_stopped(front), start_serve(folder) as served:
        served.wait_status("seq", "rolled_back", timeout=60)
        served.wait_status("steps", "rolled_back", timeout=60)
        # Past 64 rows: the history ring has grown at least once, keeping every row in order.
        wait_until(lambda: served.detail("cart")["evaluations"] >= 70, what="70 evaluations")
        paused = served.client.post(
            "/api/v1/deployments/cart/pause", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert paused.status_code == 200, paused.text
        counts = {name: int(served.detail(name)["evaluations"]) for name in ("cart", "seq")}
        _check_history_answers(served, counts)

        with chromium_page(tmp_path, width=1280, height=1000) as page:
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(served.url + "/", wait_until="load")
            cart = page.locator('article[data-deployment="cart"]')
            figure = cart.locator('figure[data-trigger="error_rate_trigger"]')
            figure.wait_for()
            # Every evaluation before the page opened, none after (the watch is paused).
            assert figure.get_attribute("data-points") == str(counts["cart"])
            drawn = figure.locator("path.value").get_attribute("d") or ""
            assert len(POINT.findall(drawn)) == counts["cart"]
            _check_sequential_reads_as_evidence(page, counts["seq"])
            _check_traffic_steps(served, page)
            # The noop executor reads no split back: none is drawn.
            assert cart.locator(".split").count() == 0
            note = cart.locator('[data-testid="no-split"]').inner_text()
            assert note == f"traffic split not reported ({NOOP})"
            page.screenshot(path=artifact_path("serve-page-history-1280.png"), full_page=True)
            assert layout_problems(page) == []
            # The sequential chart's band is the e-values below 1/alpha, as the others' are
            # the values up to their limit.
            assert band_problems(page) == []
            assert errors == []
