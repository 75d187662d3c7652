"""Signals derived from windows of parsed scrapes, against values worked out by hand."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollguard.metrics import derive
from rollguard.metrics.exposition import parse
from rollguard.policy.model import MetricNames
from rollguard.signals import Signal

NAMES = MetricNames()
HEADER = "# TYPE http_requests_total counter\n"


def window(start: float, end: float, *scrapes: tuple[float, str]) -> derive.Window:
    return derive.Window(start, end, [(t, parse(HEADER + text)) for t, text in scrapes])


def requests(**by_code: float) -> str:
    return "".join(f'http_requests_total{{code="{code}"}} {n}\n' for code, n in by_code.items())


def value(signal: Signal, w: derive.Window) -> float:
    return derive.derive(signal, w, NAMES).value


def test_error_rate_counts_a_5xx_series_that_appears_mid_window() -> None:
    w = window(
        0,
        20,
        (0, requests(**{"200": 100})),
        (10, requests(**{"200": 150, "500": 10})),  # the 500 series is new: it was 0
        (20, requests(**{"200": 190, "500": 10, "503": 10})),
    )
    # 90 more 200s, 20 5xx: 20 / 110
    assert value(Signal.ERROR_RATE_PERCENT, w) == pytest.approx(20 / 110 * 100)
    assert derive.derive(Signal.ERROR_RATE_PERCENT, w, NAMES).requests == 110
    assert value(Signal.ERRORS, w) == 20
    assert value(Signal.REQUESTS, w) == 110


def test_a_restart_between_scrapes_is_a_counter_reset() -> None:
    w = window(
        0,
        20,
        (0, requests(**{"200": 1000, "500": 40})),
        (10, requests(**{"200": 30, "500": 5})),  # the process restarted: +30, +5
        (20, requests(**{"200": 60, "500": 10})),
    )
    # 200s: +30 after the reset, then +30; 500s: +5, then +5
    assert value(Signal.REQUESTS, w) == 70
    assert value(Signal.ERROR_RATE_PERCENT, w) == pytest.approx(10 / 70 * 100)


def test_the_step_across_the_window_start_counts_whole() -> None:
    w = window(
        5,  # the window starts halfway between the first two scrapes
        20,
        (0, requests(**{"200": 0})),
        (10, requests(**{"200": 40})),
        (20, requests(**{"200": 100, "401": 3, "403": 3})),
    )
    # from the scrape at 0 (the last at or before the start) to the one at 20: whole
    # requests, not 20 of the 40 served between 0 and 10
    assert value(Signal.REQUESTS, w) == 106
    # 6 attempts over the 20 s between the two scrapes compared: 18 per minute
    assert value(Signal.UNAUTHORIZED_PER_MINUTE, w) == pytest.approx(18)


@settings(max_examples=60, deadline=None)  # a loaded CI machine must not flake
@given(
    values=st.lists(st.integers(min_value=0, max_value=1000), min_size=3, max_size=30),
    data=st.data(),
)
def test_consecutive_windows_add_up_to_whole_counts(values: list[int], data: st.DataObject) -> None:
    """Windows cut anywhere between scrapes count every request once, in whole numbers."""
    scrapes = [(t * 5.0, requests(**{"200": v})) for t, v in enumerate(values)]
    last = scrapes[-1][0]
    cut = data.draw(st.floats(min_value=5.0, max_value=last - 5.0))

    def count(start: float, end: float) -> float:
        # what the provider hands over: the last scrape at or before start, then those inside
        before = [s for s in scrapes if s[0] <= start][-1:]
        return value(
            Signal.REQUESTS,
            window(start, end, *before, *[s for s in scrapes if start < s[0] <= end]),
        )

    whole, left, right = count(0, last), count(0, cut), count(cut, last)
    assert left + right == whole
    assert left.is_integer()
    assert right.is_integer()
    # every drop is a restart counting from zero (Prometheus' reset rule)
    assert whole == sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


def test_zero_requests_is_no_data_but_zero_unauthorized_is_zero() -> None:
    w = window(0, 20, (0, requests(**{"200": 5})), (20, requests(**{"200": 5})))
    with pytest.raises(derive.Missing, match="no requests"):
        value(Signal.ERROR_RATE_PERCENT, w)
    assert value(Signal.UNAUTHORIZED_PER_MINUTE, w) == 0
    assert value(Signal.ERRORS, w) == 0


def test_one_scrape_is_not_enough_for_a_counter() -> None:
    w = window(0, 20, (10, requests(**{"200": 5})))
    with pytest.raises(derive.Missing, match="a counter needs two to compare"):
        value(Signal.REQUESTS, w)


def test_requests_without_the_status_label_are_no_data_not_zero_errors() -> None:
    text = "http_requests_total 10\n"
    w = window(0, 20, (0, text), (20, text.replace("10", "30")))
    with pytest.raises(derive.Missing, match="no 'code' label"):
        value(Signal.ERROR_RATE_PERCENT, w)


def test_latency_from_histogram_buckets() -> None:
    def histogram(fast: float, slow: float) -> str:
        total = fast + slow
        return (
            "# TYPE http_request_duration_seconds histogram\n"
            f'http_request_duration_seconds_bucket{{le="0.1"}} {fast}\n'
            f'http_request_duration_seconds_bucket{{le="0.5"}} {fast}\n'
            f'http_request_duration_seconds_bucket{{le="1.0"}} {total}\n'
            f'http_request_duration_seconds_bucket{{le="+Inf"}} {total}\n'
            f"http_request_duration_seconds_sum {fast * 0.05 + slow * 0.7}\n"
            f"http_request_duration_seconds_count {total}\n"
        )

    w = window(0, 20, (0, histogram(100, 0)), (20, histogram(290, 10)))
    # increases: le 0.1 -> 190, 0.5 -> 190, 1 -> 200, +Inf -> 200
    # p95: rank 190 falls at the top of (0, 0.1]: 100 ms
    assert value(Signal.LATENCY_P95_MS, w) == pytest.approx(100.0)
    # p50: rank 100 in (0, 0.1]: 0.1 * 100 / 190 s
    assert value(Signal.LATENCY_P50_MS, w) == pytest.approx(100 / 190 * 100)
    # mean: (190 * 0.05 + 10 * 0.7) / 200 s
    assert value(Signal.LATENCY_MEAN_MS, w) == pytest.approx(82.5)
    buckets = derive.derive(Signal.LATENCY_BUCKETS, w, NAMES)
    assert dict(buckets.buckets) == {0.1: 190, 0.5: 190, 1.0: 200, math.inf: 200}
    assert buckets.requests == 200


def test_histogram_without_inf_bucket_is_no_data() -> None:
    text = 'http_request_duration_seconds_bucket{le="0.1"} 1\n'
    w = window(0, 20, (0, text), (20, text.replace("} 1", "} 5")))
    with pytest.raises(derive.Missing, match=r"no \+Inf bucket"):
        value(Signal.LATENCY_P95_MS, w)


def test_gauges_take_the_newest_scrape_in_the_window() -> None:
    w = window(
        0,
        20,
        (10, "process_resident_memory_bytes 104857600\nhttp_active_connections 3\n"),
        (20, "process_resident_memory_bytes 209715200\nhttp_active_connections 7\n"),
    )
    assert value(Signal.MEMORY_MB, w) == 200
    assert value(Signal.CONNECTIONS, w) == 7


def test_a_gauge_older_than_the_window_is_no_data() -> None:
    w = window(10, 20, (5, "process_resident_memory_bytes 1\n"))
    with pytest.raises(derive.Missing, match="no successful scrape"):
        value(Signal.MEMORY_MB, w)


def test_vulnerabilities_by_severity_ignore_case_and_need_a_series() -> None:
    text = 'vulnerabilities{severity="Critical"} 2\nvulnerabilities{severity="HIGH"} 11\n'
    w = window(0, 20, (20, text))
    assert value(Signal.VULNERABILITIES_CRITICAL, w) == 2
    assert value(Signal.VULNERABILITIES_HIGH, w) == 11
    only_high = window(0, 20, (20, 'vulnerabilities{severity="high"} 1\n'))
    with pytest.raises(derive.Missing, match="no matching series"):
        value(Signal.VULNERABILITIES_CRITICAL, only_high)


def test_cpu_percent_is_the_rate_of_cpu_seconds() -> None:
    w = window(
        0,
        20,
        (0, "process_cpu_seconds_total 10\n"),
        (10, "process_cpu_seconds_total 12\n"),
        (20, "process_cpu_seconds_total 14\n"),
    )
    assert value(Signal.CPU_PERCENT, w) == pytest.approx(20.0)


def test_a_metric_that_is_not_exposed_is_no_data() -> None:
    w = window(0, 20, (0, requests(**{"200": 1})), (20, requests(**{"200": 2})))
    with pytest.raises(derive.Missing, match="rollguard_suspicious_requests_total is not exposed"):
        value(Signal.SUSPICIOUS_EVENTS, w)


def test_status_patterns_match_the_whole_label_as_promql_does() -> None:
    w = window(
        0,
        10,
        (0, requests(**{"5xx": 0, "2xx": 0, "50": 0, "429": 0})),
        (10, requests(**{"5xx": 3, "2xx": 7, "50": 10, "429": 5})),
    )
    # "5.." matches HAProxy's "5xx" but not "50": 3 of 25
    assert value(Signal.ERROR_RATE_PERCENT, w) == pytest.approx(3 / 25 * 100)
    names = MetricNames(error_status_regex="5..|429")
    measured = derive.derive(Signal.ERROR_RATE_PERCENT, w, names)
    assert measured.value == pytest.approx(8 / 25 * 100)
    broken = MetricNames(error_status_regex="5..(")
    with pytest.raises(derive.Missing, match="not a regular expression"):
        derive.derive(Signal.ERROR_RATE_PERCENT, w, broken)


def test_only_a_scrape_before_the_window_is_no_data() -> None:
    w = window(10, 20, (0, requests(**{"200": 1})), (5, requests(**{"200": 2})))
    with pytest.raises(derive.Missing, match="no successful scrape in the last 10s"):
        value(Signal.REQUESTS, w)
