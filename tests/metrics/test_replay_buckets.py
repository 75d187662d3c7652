"""Histogram bucket columns in the replay CSV: parsing, window sums, quantiles, bad files."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from replay_series import DEFAULT_BOUNDS, bucket_column, cumulative_counts
from rollguard.metrics.recording import parse_recording
from rollguard.metrics.replay import ReplayProvider
from rollguard.signals import Measurement, Phase, Query, Signal, Version

INF = math.inf

# latency_p95_ms is optional once buckets are given; here it is present but
# ignored, since the quantiles come from the buckets.
BUCKETED = """\
time,version,requests,errors,memory_mb,le_0.1,le_0.25,le_+Inf,latency_p95_ms
10,canary,100,0,50,60,90,100,
20,canary,50,1,50,10,40,50,
30,canary,40,0,50,,,,999
"""


def measure(
    provider: ReplayProvider, signal: Signal, version: Version, window: float, now: float
) -> Measurement:
    (measured,) = asyncio.run(provider.measure([Query(signal, version, window)], now=now))
    return measured


@pytest.fixture
def provider() -> ReplayProvider:
    return ReplayProvider(parse_recording(BUCKETED, source="run.csv"))


def test_rows_keep_their_cumulative_counts_in_seconds(provider: ReplayProvider) -> None:
    assert provider.recording.bounds == (0.1, 0.25, INF)
    first, second, third = provider.rows
    assert first.buckets == ((0.1, 60), (0.25, 90), (INF, 100))
    assert second.buckets == ((0.1, 10), (0.25, 40), (INF, 50))
    assert third.buckets == ()  # empty cells: not measured in that interval


def test_latency_buckets_are_per_bucket_sums_over_the_window(provider: ReplayProvider) -> None:
    both = measure(provider, Signal.LATENCY_BUCKETS, Version.CANARY, 20, 20)
    assert both.phase is Phase.OK
    assert dict(both.buckets) == {0.1: 70, 0.25: 130, INF: 150}
    assert both.value == both.requests == 150
    newest = measure(provider, Signal.LATENCY_BUCKETS, Version.CANARY, 10, 20)
    assert dict(newest.buckets) == {0.1: 10, 0.25: 40, INF: 50}
    unmeasured = measure(provider, Signal.LATENCY_BUCKETS, Version.CANARY, 10, 30)
    assert unmeasured.phase is Phase.NO_DATA
    assert unmeasured.reason == "no bucket counts in the window"


def test_quantiles_come_from_the_buckets_like_histogram_quantile(
    provider: ReplayProvider,
) -> None:
    # 150 requests: rank 75 lies in (0.1, 0.25] holding 60, 5 of them in: 0.1 + 0.15 x 5/60
    p50 = measure(provider, Signal.LATENCY_P50_MS, Version.CANARY, 20, 20)
    assert p50.value == pytest.approx(112.5)
    assert p50.requests == 150
    # rank 142.5 lies above the last finite bound: Prometheus answers that bound
    p95 = measure(provider, Signal.LATENCY_P95_MS, Version.CANARY, 20, 20)
    assert p95.value == pytest.approx(250.0)
    # the 999 ms latency_p95_ms cell of the unbucketed row is not used
    assert measure(provider, Signal.LATENCY_P95_MS, Version.CANARY, 10, 30).phase is (Phase.NO_DATA)


def test_without_an_inf_column_the_requests_close_the_histogram() -> None:
    recording = parse_recording(
        "time,version,requests,errors,latency_p95_ms,memory_mb,le_0.5,le_0.1\n"
        "5,stable,10,0,,1,9,4\n"
    )
    assert recording.rows[0].buckets == ((0.1, 4), (0.5, 9), (INF, 10))
    provider = ReplayProvider(recording)
    assert measure(provider, Signal.LATENCY_P95_MS, Version.STABLE, 60, 5).value == 500.0


def test_a_file_without_buckets_has_no_bucket_data_but_keeps_its_quantile_column() -> None:
    recording = parse_recording(
        "time,version,requests,errors,latency_p95_ms,memory_mb\n"
        "5,stable,10,0,120,1\n10,stable,30,0,200,1\n",
        source="plain.csv",
    )
    provider = ReplayProvider(recording)
    buckets = measure(provider, Signal.LATENCY_BUCKETS, Version.STABLE, 60, 10)
    assert buckets.phase is Phase.NO_DATA
    assert buckets.reason == "plain.csv has no le_ bucket columns"
    p95 = measure(provider, Signal.LATENCY_P95_MS, Version.STABLE, 60, 10)
    assert p95.value == pytest.approx((120 * 10 + 200 * 30) / 40)


def test_sums_of_sampled_histograms_are_the_histogram_of_all_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = [rng.lognormal(np.log(0.1), 0.5, size=n) for n in (4000, 2500)]
    columns = [bucket_column(b) for b in (*DEFAULT_BOUNDS, INF)]
    lines = [",".join(["time", "version", "requests", "errors", "memory_mb", *columns])]
    for t, latencies in zip((5, 10), samples, strict=True):
        counts = cumulative_counts(latencies)
        lines.append(",".join([str(t), "canary", str(len(latencies)), "0", "1", *map(str, counts)]))
    path = tmp_path / "sampled.csv"
    path.write_text("\n".join(lines) + "\n")
    provider = ReplayProvider.from_file(path)

    everything = np.concatenate(samples)
    measured = measure(provider, Signal.LATENCY_BUCKETS, Version.CANARY, 10, 10)
    assert list(measured.buckets) == [*DEFAULT_BOUNDS, INF]
    assert list(measured.buckets.values()) == cumulative_counts(everything)
    # interpolating inside (0.1, 0.25] lands within 10% of the sample's own p95
    p95 = measure(provider, Signal.LATENCY_P95_MS, Version.CANARY, 10, 10)
    assert p95.value is not None
    truth_ms = float(np.quantile(everything, 0.95)) * 1000
    assert 100 < p95.value <= 250
    assert p95.value == pytest.approx(truth_ms, rel=0.1)


HEADER = "time,version,requests,errors,memory_mb,le_0.1,le_0.25,le_+Inf\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "time,version,requests,errors,memory_mb\n",
            "run.csv:1: header: missing column 'latency_p95_ms'",
        ),
        (
            HEADER.replace("le_0.25", "le_abc"),
            "run.csv:1: header: column 'le_abc': expected le_ and a bucket upper bound in "
            "seconds >= 0 (e.g. le_0.25, le_+Inf)",
        ),
        (HEADER.replace("le_0.25", "le_-1"), "run.csv:1: header: column 'le_-1': expected le_"),
        (HEADER.replace("le_0.25", "le_NaN"), "run.csv:1: header: column 'le_NaN': expected"),
        (
            HEADER.replace("le_0.25", "le_0.10"),
            "run.csv:1: header: column 'le_0.10': the same bucket as 'le_0.1'",
        ),
        (HEADER.replace("le_0.25", "le_0.1"), "run.csv:1: header: column 'le_0.1' appears twice"),
        (
            "time,version,requests,errors,memory_mb,le_+Inf\n",
            "run.csv:1: header: column 'le_+Inf': expected at least one finite bucket bound",
        ),
        (
            HEADER.replace("le_0.25", "lt_0.25"),
            "run.csv:1: header: unknown column 'lt_0.25' (known: time, version",
        ),
        (
            HEADER + "1,stable,10,0,1,4,5,10\n2,stable,10,0,1,5,4,10\n",
            "run.csv:3: le_0.25: expected at least le_0.1 (5): bucket counts are cumulative, "
            "got '4'",
        ),
        (
            HEADER + "1,stable,10,0,1,4,5,9\n",
            "run.csv:2: le_+Inf: expected requests (10): the +Inf bucket counts every request, "
            "got '9'",
        ),
        (
            "time,version,requests,errors,memory_mb,le_0.1\n1,stable,10,0,1,11\n",
            "run.csv:2: le_0.1: expected at most requests (10), got '11'",
        ),
        (HEADER + "1,stable,10,0,1,-1,5,10\n", "run.csv:2: le_0.1: expected a non-negative count"),
        (HEADER + "1,stable,10,0,1,x,5,10\n", "run.csv:2: le_0.1: expected a number, got 'x'"),
        (HEADER + "1,stable,10,0,1,nan,5,10\n", "run.csv:2: le_0.1: expected a finite number"),
        (
            HEADER + "1,stable,10,0,1,4,,10\n",
            "run.csv:2: le_0.25: expected a count like the row's other bucket cells",
        ),
    ],
)
def test_malformed_buckets_name_file_line_and_column(
    refused_recording: Callable[[str], str], text: str, expected: str
) -> None:
    assert expected in refused_recording(text)


def test_fractional_counts_from_prometheus_increase_are_accepted() -> None:
    recording = parse_recording(
        HEADER + "1,stable,10.5,0,1,4.25,4.2500000000001,10.5\n", source="run.csv"
    )
    assert recording.rows[0].buckets[-1] == (INF, 10.5)
