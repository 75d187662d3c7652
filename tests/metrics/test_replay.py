"""The replay provider: a good recording measured by hand, and every malformed case."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from rollguard.errors import InputError
from rollguard.metrics.recording import parse_recording
from rollguard.metrics.replay import ReplayProvider
from rollguard.signals import Measurement, Phase, Query, Signal, Version

GOOD = """\
# a canary that starts failing at t=20
time,version,requests,errors,latency_p95_ms,memory_mb,latency_p50_ms,cpu_percent,unauthorized
10,stable,100,1,120,256,40,20,0
10,canary,20,0,130,260,42,22,0
20,stable,100,2,118,256,41,20,0
20,canary,20,1,150,270,45,30,1
30,stable,100,1,121,257,40,21,0
30,canary,40,10,400,300,,40,5
"""


@pytest.fixture
def provider(tmp_path: Path) -> ReplayProvider:
    path = tmp_path / "run.csv"
    path.write_text(GOOD)
    return ReplayProvider.from_file(path)


def measure(
    provider: ReplayProvider, signal: Signal, version: Version, window: float, now: float
) -> Measurement:
    (measured,) = asyncio.run(provider.measure([Query(signal, version, window)], now=now))
    return measured


def test_time_range_for_a_backtest_clock(provider: ReplayProvider) -> None:
    assert provider.times == [10.0, 20.0, 30.0]
    assert (provider.start, provider.end) == (10.0, 30.0)
    assert len(provider.rows) == 6
    assert provider.rows[-1].line == 8


def test_error_rate_sums_errors_over_requests_in_the_window(provider: ReplayProvider) -> None:
    # window (10, 30]: canary rows at 20 and 30: 11 errors / 60 requests
    rate = measure(provider, Signal.ERROR_RATE_PERCENT, Version.CANARY, 20, 30)
    assert rate.value == pytest.approx(11 / 60 * 100)
    assert rate.requests == 60
    assert measure(provider, Signal.REQUESTS, Version.CANARY, 20, 30).value == 60
    assert measure(provider, Signal.ERRORS, Version.CANARY, 20, 30).value == 11
    # the whole stable run: 4 / 300
    stable = measure(provider, Signal.ERROR_RATE_PERCENT, Version.STABLE, 60, 30)
    assert stable.value == pytest.approx(4 / 300 * 100)


def test_latency_is_the_requests_weighted_mean_of_interval_quantiles(
    provider: ReplayProvider,
) -> None:
    p95 = measure(provider, Signal.LATENCY_P95_MS, Version.CANARY, 20, 30)
    assert p95.value == pytest.approx((150 * 20 + 400 * 40) / 60)
    assert p95.requests == 60
    # the 30 s row has no p50: only the 20 s row counts
    p50 = measure(provider, Signal.LATENCY_P50_MS, Version.CANARY, 20, 30)
    assert p50.value == 45
    assert p50.requests == 20


def test_gauges_rates_and_per_minute_counts(provider: ReplayProvider) -> None:
    assert measure(provider, Signal.MEMORY_MB, Version.CANARY, 20, 30).value == 300
    assert measure(provider, Signal.CPU_PERCENT, Version.CANARY, 20, 30).value == 35
    # 6 attempts over two 10 s intervals: 18 per minute
    unauthorized = measure(provider, Signal.UNAUTHORIZED_PER_MINUTE, Version.CANARY, 20, 30)
    assert unauthorized.value == pytest.approx(18)


def test_no_rows_stale_rows_and_missing_columns_are_no_data(provider: ReplayProvider) -> None:
    early = measure(provider, Signal.ERROR_RATE_PERCENT, Version.CANARY, 5, 5)
    assert early.phase is Phase.NO_DATA
    assert "no canary rows with time in (0, 5]" in early.reason
    stale = measure(provider, Signal.ERROR_RATE_PERCENT, Version.CANARY, 60, 60)
    assert stale.phase is Phase.NO_DATA
    assert "30s old" in stale.reason
    connections = measure(provider, Signal.CONNECTIONS, Version.CANARY, 20, 30)
    assert connections.phase is Phase.NO_DATA
    assert "no connections column" in connections.reason
    vulnerabilities = measure(provider, Signal.VULNERABILITIES_CRITICAL, Version.CANARY, 20, 30)
    assert vulnerabilities.phase is Phase.NO_DATA


def test_a_version_with_no_rows_and_zero_requests_are_no_data() -> None:
    recording = parse_recording(
        "time,version,requests,errors,latency_p95_ms,memory_mb\n5,stable,0,0,,100\n"
    )
    provider = ReplayProvider(recording)
    canary = measure(provider, Signal.ERROR_RATE_PERCENT, Version.CANARY, 60, 5)
    assert canary.phase is Phase.NO_DATA
    idle = measure(provider, Signal.ERROR_RATE_PERCENT, Version.STABLE, 60, 5)
    assert idle.phase is Phase.NO_DATA
    assert idle.reason == "no requests in the window"
    assert measure(provider, Signal.LATENCY_P95_MS, Version.STABLE, 60, 5).phase is Phase.NO_DATA
    assert measure(provider, Signal.MEMORY_MB, Version.STABLE, 60, 5).value == 100


def test_rfc3339_times() -> None:
    recording = parse_recording(
        "time,version,requests,errors,latency_p95_ms,memory_mb\n"
        "2025-06-26T10:00:00Z,stable,10,1,100,1\n"
        "2025-06-26T10:00:05+00:00,stable,10,0,100,1\n"
    )
    provider = ReplayProvider(recording)
    assert recording.rfc3339
    assert provider.end - provider.start == 5
    rate = measure(provider, Signal.ERROR_RATE_PERCENT, Version.STABLE, 60, provider.end)
    assert rate.value == pytest.approx(5.0)


HEADER = "time,version,requests,errors,latency_p95_ms,memory_mb\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "run.csv:1: header: empty file"),
        (
            "time,version,requests,latency_p95_ms,memory_mb\n",
            "run.csv:1: header: missing column 'errors'",
        ),
        (
            HEADER.replace("memory_mb", "memory_mb,cpu_pct"),
            "run.csv:1: header: unknown column 'cpu_pct'",
        ),
        (HEADER.replace("memory_mb", "memory_mb,errors"), "column 'errors' appears twice"),
        (
            HEADER + "1,stable,10,1,100,50\n2,stable,ten,1,100,50\n",
            "run.csv:3: requests: expected a number, got 'ten'",
        ),
        (
            HEADER + "1,stable,10,-1,100,50\n",
            "run.csv:2: errors: expected a non-negative count, got '-1'",
        ),
        (
            HEADER + "1,stable,10,1,NaN,50\n",
            "run.csv:2: latency_p95_ms: expected a finite number, got 'NaN'",
        ),
        (HEADER + "1,stable,10,1,100,inf\n", "run.csv:2: memory_mb: expected a finite number"),
        (
            HEADER + "1,blue,10,1,100,50\n",
            "run.csv:2: version: expected stable or canary, got 'blue'",
        ),
        (
            HEADER + "1,stable,10,11,100,50\n",
            "run.csv:2: errors: expected at most requests (10), got 11",
        ),
        (HEADER + "1,stable,10,1,100\n", "run.csv:2: expected 6 fields, got 5"),
        (
            HEADER + "1,stable,,1,100,50\n",
            "run.csv:2: requests: expected a value, the cell is empty",
        ),
        (
            HEADER + "yesterday,stable,10,1,100,50\n",
            "run.csv:2: time: expected seconds since start or an RFC 3339",
        ),
        (HEADER + "-5,stable,10,1,100,50\n", "run.csv:2: time: expected seconds since start >= 0"),
        (
            HEADER + "2025-06-26T10:00:00,stable,10,1,100,50\n",
            "run.csv:2: time: expected a UTC offset",
        ),
        (
            HEADER + "1,stable,10,1,100,50\n2025-06-26T10:00:00Z,stable,10,1,100,50\n",
            "run.csv:3: time: expected seconds since start like the first row",
        ),
        (
            HEADER + "5,stable,10,1,100,50\n\n4,stable,10,1,100,50\n",
            "run.csv:4: time: expected rows in time order",
        ),
        (
            HEADER + "5,stable,10,1,100,50\n5,stable,10,1,100,50\n",
            "run.csv:3: time: a second stable row for the same time",
        ),
    ],
)
def test_malformed_files_name_file_line_and_column(
    refused_recording: Callable[[str], str], text: str, expected: str
) -> None:
    assert expected in refused_recording(text)


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read recording: No such file"):
        ReplayProvider.from_file(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # One far-away row made backtest tick forever (1e18 + 5 == 1e18 in floats).
        ("0,stable,1,0,1,1\n1e18,stable,1,0,1,1\n", r"run\.csv:3: time: the rows span"),
        (
            "2025-06-26T10:00:00Z,stable,1,0,1,1\n9999-12-31T00:00:00Z,stable,1,0,1,1\n",
            "a recording covers at most 366.0 days",
        ),
        # Within a year, but a million steps of the rows' own spacing.
        (
            "".join(f"{t},stable,1,0,1,1\n" for t in range(5)) + "1000000,stable,1,0,1,1\n",
            r"rows every 1s over 11\.6 days make 1,000,000 steps; a backtest walks at most 150,000",
        ),
    ],
)
def test_a_recording_too_long_to_walk_is_refused(rows: str, message: str) -> None:
    header = "time,version,requests,errors,latency_p95_ms,memory_mb\n"
    with pytest.raises(InputError, match=message):
        parse_recording(header + rows, source="run.csv")
