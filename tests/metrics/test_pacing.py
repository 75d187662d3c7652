"""A recording played on the wall clock: each evaluation's counts are the recording's
increments since the previous evaluation, whatever the pace and the rows' spacing."""

from __future__ import annotations

import asyncio

from rollguard.metrics.pacing import ReplayPacer
from rollguard.metrics.recording import parse_recording
from rollguard.metrics.replay import ReplayProvider
from rollguard.signals import Phase, Query, Signal, Version

HEADER = "time,version,requests,errors,latency_p95_ms,memory_mb"


def _every_five_seconds(rows: int) -> ReplayProvider:
    lines = [HEADER]
    for at in range(5, 5 * rows + 5, 5):
        lines.append(f"{at},stable,100,1,120,300")
        lines.append(f"{at},canary,100,{at // 5},125,305")  # errors: the row's number
    return ReplayProvider(parse_recording("\n".join(lines) + "\n"))


def test_each_row_is_counted_once_across_evaluations_however_late() -> None:
    requests = Query(Signal.REQUESTS, Version.CANARY, 0.25)
    errors = Query(Signal.ERRORS, Version.CANARY, 0.25)
    rate = Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, 10.0)  # a threshold's window
    pacer = ReplayPacer(
        _every_five_seconds(100), start=5.0, speed=20.0, increments={requests, errors}
    )
    # Every 0.25 s of wall time (5 s of recording), late by up to 0.04 s (0.8 s) at times.
    walls = [1000.0 + 0.25 * k + (0.04 if k % 3 == 1 else 0.0) for k in range(40)]
    seen_requests = seen_errors = 0.0
    for wall in walls:
        measured = asyncio.run(pacer.measure([requests, errors, rate], now=wall))
        assert [m.query for m in measured] == [requests, errors, rate]
        fed, bad, threshold = measured
        assert fed.phase is Phase.OK, fed.reason
        assert fed.value == 100.0  # one 5 s row per evaluation, never none, never two
        seen_requests += fed.value
        seen_errors += bad.value or 0.0
        # The threshold's window stays 10 s of the recording: two rows, 200 requests.
        assert threshold.requests == 200.0 or wall == walls[0]
    # Rows 1 .. 40 (5 s .. 200 s), each once: their errors sum 1 + 2 + ... + 40.
    assert seen_requests == 100.0 * len(walls)
    assert seen_errors == sum(range(1, len(walls) + 1))
