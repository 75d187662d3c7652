"""The page opened on many deployments asks for their last hour a few at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_harness import policy, recording, start_serve

from chromium import chromium_page

DEPLOYMENTS = 10

#: Counts the history requests in flight; each answer is held 150 ms so they overlap.
COUNT_HISTORY = """
window.__history = { now: 0, most: 0, total: 0 };
const realFetch = window.fetch.bind(window);
window.fetch = async (path, options) => {
  if (!String(path).endsWith("/history")) return realFetch(path, options);
  const seen = window.__history;
  seen.now += 1; seen.total += 1; seen.most = Math.max(seen.most, seen.now);
  try {
    await new Promise((done) => setTimeout(done, 150));
    return await realFetch(path, options);
  } finally {
    seen.now -= 1;
  }
};
"""


@pytest.mark.real_server
def test_first_load_asks_for_history_a_few_at_a_time(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "healthy.csv").write_text(recording(seconds=7200, bad_after=None))
    for number in range(DEPLOYMENTS):
        (folder / f"d{number}.yaml").write_text(policy(f"d{number}", "healthy.csv"))
    with start_serve(folder) as served, chromium_page(tmp_path) as page:
        for number in range(DEPLOYMENTS):
            served.wait_status(f"d{number}", "watching")
        page.add_init_script(COUNT_HISTORY)
        page.goto(served.url + "/", wait_until="load")
        page.wait_for_function(
            f"document.querySelectorAll('[data-testid=\"charts\"]').length === {DEPLOYMENTS}",
            timeout=30_000,
        )
        seen = page.evaluate("window.__history")
    assert seen["total"] == DEPLOYMENTS  # each deployment's last hour, asked once
    assert 1 < seen["most"] <= 4  # in parallel, but never all ten at once
