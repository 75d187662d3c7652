"""The page shows a progressive release: its step, the evidence toward "no worse", the next step.

A real ``serve`` steps a real HAProxy (progressive_serve.py); ``confirm_step``
keeps the release at 10 % while its evidence grows past 1/beta, and an
operator's pause then holds it. The page, in headless Chromium, must say all of
that in its own element, fit the width, keep its contrast and log no error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from progressive_serve import canary_weight, haproxy_executor, live, write_folder
from serve_harness import TOKEN, start_serve

from chromium import artifact_path, chromium_page, layout_problems, low_contrast
from servers.haproxy import HaproxyServer
from support import wait_until

BETA = "\N{GREEK SMALL LETTER BETA}"


@pytest.mark.real_server
def test_the_page_shows_the_step_its_evidence_and_who_holds_it(
    tmp_path: Path, canary_haproxy: HaproxyServer
) -> None:
    folder = write_folder(tmp_path, haproxy_executor(canary_haproxy), hook="{command: [/bin/true]}")
    with start_serve(folder, factory=live) as served:
        wait_until(lambda: canary_weight(canary_haproxy) == 10, what="the first step, 10%")

        def accepted() -> bool:
            promotion = served.detail("shop").get("promotion")
            return isinstance(promotion, dict) and bool(promotion["accepted"])

        wait_until(accepted, timeout=30, what="evidence past 1/beta at 10%")
        paused = served.client.post(
            "/api/v1/deployments/shop/pause",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"reason": "change freeze"},
        )
        assert paused.status_code == 200, paused.text
        with chromium_page(tmp_path, width=1280, height=1000) as page:
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(served.url + "/", wait_until="load")
            box = page.locator('article[data-deployment="shop"] [data-testid="promotion"]')
            box.wait_for()
            page.wait_for_function(
                "() => document.querySelector('[data-testid=promotion]')"
                ".textContent.includes('held by')"
            )
            text = box.inner_text()
            assert "Promotion: step 1 of 4, canary 10%" in text
            assert "next step 25%" in text
            assert "held by operator (change freeze)" in text
            [test] = box.locator("li").all()
            assert test.get_attribute("data-test") == "error_rate_percent:stable"
            assert test.get_attribute("data-met") == "true"
            assert f"of 1/{BETA} = 100" in test.inner_text()
            assert test.locator('[role="meter"].met').count() == 1
            verdict = box.locator('[data-testid="promotion-verdict"]').inner_text()
            assert verdict.startswith("No worse: every test at or above 1/beta = 100")
            page.screenshot(path=artifact_path("serve-page-promotion-1280.png"), full_page=True)
            assert layout_problems(page) == []
            assert low_contrast(page) == []
            assert errors == []
