"""The live page in real headless Chromium: a rollback shows up without a reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_harness import TOKEN, Served

from chromium import artifact_path, chromium_page


@pytest.mark.real_server
def test_page_shows_the_rollback_live(served: Served, tmp_path: Path) -> None:
    messages: list[str] = []
    failed: list[str] = []
    with chromium_page(tmp_path) as page:
        page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(served.url + "/", wait_until="load")
        shop = page.locator('article[data-deployment="shop"]')
        # No reload: the page polls the API and redraws when shop is rolled back.
        shop.locator('[data-testid="status"]', has_text="ROLLED BACK").wait_for(timeout=20_000)
        assert shop.get_attribute("data-status") == "rolled_back"
        assert (
            "Decision: immediate_rollback" in shop.locator('[data-testid="decision"]').inner_text()
        )
        # The noop executor reads no split back: the page says so instead of drawing one.
        assert "not reported" in shop.locator('[data-testid="no-split"]').inner_text()
        timeline = shop.locator('[data-testid="timeline"]').inner_text()
        assert "immediate_rollback" in timeline
        signals = shop.locator("table.signals").inner_text()
        assert "error_rate_trigger" in signals
        assert "firing" in signals
        cart = page.locator('article[data-deployment="cart"]')
        assert cart.get_attribute("data-status") == "watching"
        assert "broken.yaml:4:3" in page.locator("#policy-errors").inner_text()
        page.locator("#audit tbody tr", has_text="action_result").first.wait_for(timeout=10_000)
        # An operator's abort, made through the API, also appears without a reload.
        served.client.post(
            "/api/v1/deployments/cart/abort", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        cart.locator('[data-testid="status"]', has_text="ABORTED").wait_for(timeout=10_000)
        page.screenshot(path=artifact_path("serve-page-rollback.png"), full_page=True)
        hosts = page.evaluate(
            "[...document.querySelectorAll('script[src], link[rel=stylesheet]')]"
            ".map(e => e.src || e.href)"
        )
    assert all(url.startswith(served.url) for url in hosts), hosts
    assert not failed, failed
    assert not [m for m in messages if m.startswith("error")], messages
