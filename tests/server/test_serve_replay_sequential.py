"""A sequential trigger in ``serve`` over a recording played 20x real time.

The recording has a row every 5 s; the policy evaluates every 0.1 s, which at 20x
is 2 s of the recording. The test must get each row's counts once: the interval
is widened to one row step (5 s of the recording, 0.25 s of wall time) and each
evaluation reads the rows since the previous one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serve_harness import recording, sequential_policy, start_serve


@pytest.mark.real_server
def test_rows_five_seconds_apart_feed_the_sequential_test_at_20x(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(recording(seconds=3600, bad_after=60))
    (tmp_path / "seq.yaml").write_text(sequential_policy("bad.csv"))
    with start_serve(tmp_path) as served:
        detail: dict[str, Any] = served.wait_status("seq", "rolled_back", timeout=60)
        history = served.client.get("/api/v1/deployments/seq/history").json()
    decision = detail["last_decision"]
    assert decision["trigger"] == "error_rate_trigger"
    assert "cannot be fed" not in decision["reason"]
    assert decision["reason"].startswith("sequential test"), decision["reason"]
    # Every evaluation was the sequential test's, none a fallback to the threshold.
    [series] = history["triggers"]
    assert series["method"] == "sequential"
    assert all(value is not None for value in series["value"])
    stats = next(e for e in decision["evidence"] if e["trigger"] == "error_rate_trigger")
    statistic = stats["statistic"]
    # One 5 s row of 100 canary requests per interval: each row counted once.
    assert statistic["canary_requests"] == 100 * statistic["intervals"]
    # It fired on the bad rows (after 60 s of the recording, the 13th row on).
    assert statistic["intervals"] > 12
