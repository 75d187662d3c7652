"""A progressive release in ``serve`` over a recording played 20x real time.

The promotion test is fed per-interval counts like the sequential tests: each
evaluation must read the recording's rows since the previous one, so every 5 s
row of 100 canary requests counts once, and a healthy recording is promoted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_harness import recording, start_serve

POLICY = """\
name: steps-policy
target: {deployment: steps, executor: {type: noop}}
metrics: {provider: replay, file: healthy.csv}
analysis: {interval: 0.1s, min_requests: 20, no_data_limit: 3}
baseline: {compare_with: stable}
error_rate_trigger: {threshold: 5%, measurement_window: 10s, action: immediate_rollback}
promotion:
  steps: [20, 50, 100]
  min_step_duration: 0.5s
  max_step_duration: 60s
  margin_points: 5
"""


@pytest.mark.real_server
def test_a_replayed_progressive_release_counts_each_row_once_and_is_promoted(
    tmp_path: Path,
) -> None:
    (tmp_path / "healthy.csv").write_text(recording(seconds=3600, bad_after=None))
    (tmp_path / "steps.yaml").write_text(POLICY)
    with start_serve(tmp_path) as served:
        served.wait_status("steps", "promoted", timeout=60)
        entries = served.client.get("/api/v1/audit", params={"deployment": "steps"}).json()
    steps = [
        e for e in reversed(entries["entries"]) if e["kind"] == "promotion_step"
    ]  # newest first
    assert [s["executor_output"]["canary_weight"] for s in steps] == [20, 50, 100]
    for step in steps[1:]:
        [test] = step["executor_output"]["evidence"]
        assert test["e_value"] >= test["threshold"]
        # one 5 s row of 100 canary requests per interval fed: none skipped, none twice
        assert test["intervals"] > 0
        assert test["canary_requests"] == 100 * test["intervals"]
        assert test["canary_events"] == test["intervals"]
