"""Windowed maths against values computed by hand from Prometheus' rules."""

from __future__ import annotations

import math

import pytest

from rollguard.metrics import series
from rollguard.metrics.series import Point, Ring


def points(*pairs: tuple[float, float]) -> list[Point]:
    return [Point(t, value) for t, value in pairs]


# --- counter resets -------------------------------------------------------------------


def test_counter_delta_without_reset_is_last_minus_first() -> None:
    assert series.counter_delta(points((0, 3), (10, 7), (20, 12))) == 9


def test_counter_delta_counts_the_new_value_after_a_reset() -> None:
    # 10 -> 25 (+15), reset to 5 (+5: the counter restarted from 0), 5 -> 15 (+10)
    assert series.counter_delta(points((0, 10), (10, 25), (20, 5), (30, 15))) == 30


def test_counter_delta_over_two_resets() -> None:
    # +10, reset to 0 (+0), +4, reset to 2 (+2)
    samples = points((0, 0), (1, 10), (2, 0), (3, 4), (4, 2))
    assert series.counter_delta(samples) == 16


def test_growth_per_second() -> None:
    assert series.Growth(30, 20).per_second == 1.5


# --- Prometheus increase() / rate() extrapolation -----------------------------------------


def test_increase_extrapolates_to_both_edges_when_samples_reach_them() -> None:
    # window (0, 60]; samples every 10 s from 5 to 55, a reset at 35.
    samples = points((5, 10), (15, 20), (25, 30), (35, 5), (45, 15), (55, 25))
    # delta 45 over 50 s sampled; 5 s to each edge < 1.1 * 10 s, so extrapolate
    # to the full 60 s: 45 * 60 / 50 = 54.
    assert series.increase(samples, start=0, end=60) == pytest.approx(54.0)
    assert series.rate(samples, start=0, end=60) == pytest.approx(0.9)


def test_increase_never_extrapolates_below_the_counters_zero() -> None:
    # delta 20 over 20 s; towards the start the counter would hit 0 after 1 s
    # (first value 1 at slope 1/s), so only 1 s is added there, 5 s at the end.
    samples = points((5, 1), (15, 11), (25, 21))
    assert series.increase(samples, start=0, end=30) == pytest.approx(20 * 26 / 20)


def test_increase_extrapolates_half_a_step_where_the_series_starts_or_ends_inside() -> None:
    # window (0, 100]; samples only from 40 to 60: 40 s to each edge >= 11 s, so
    # half a step (5 s) is added at the end, and 0 s at the start (value 0 there).
    samples = points((40, 0), (50, 10), (60, 20))
    assert series.increase(samples, start=0, end=100) == pytest.approx(20 * 25 / 20)


def test_increase_of_a_single_sample_is_no_value() -> None:
    assert series.increase(points((5, 1)), start=0, end=10) is None
    assert series.rate(points((5, 1)), start=0, end=10) is None


def test_in_window_is_left_open() -> None:
    samples = points((0, 1), (5, 2), (10, 3))
    assert series.in_window(samples, start=0, end=10) == points((5, 2), (10, 3))


# --- histogram_quantile --------------------------------------------------------------------

BUCKETS = {0.1: 10.0, 0.5: 30.0, 1.0: 38.0, math.inf: 40.0}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 0.3),  # rank 20 in (0.1, 0.5]: 0.1 + 0.4 * (10 / 20)
        (0.95, 1.0),  # rank 38 at the top of (0.5, 1]: 0.5 + 0.5 * (8 / 8)
        (0.05, 0.02),  # rank 2 in the first bucket, which starts at 0
        (0.99, 1.0),  # rank 39.6 in +Inf: the highest finite bound
        (0.9, 0.5 + 0.5 * (6 / 8)),  # rank 36
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(q: float, expected: float) -> None:
    assert series.histogram_quantile(q, BUCKETS) == pytest.approx(expected)


def test_histogram_quantile_forces_monotonic_counts() -> None:
    # 8 < 10 is raised to 10: counts 10, 10, 20, 20
    buckets = {0.1: 10.0, 0.5: 8.0, 1.0: 20.0, math.inf: 20.0}
    assert series.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert series.histogram_quantile(0.75, buckets) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "buckets",
    [
        {},
        {math.inf: 10.0},  # fewer than two buckets
        {0.1: 5.0, 1.0: 10.0},  # no +Inf bucket
        {0.1: 0.0, math.inf: 0.0},  # no observations
    ],
)
def test_histogram_quantile_is_nan_without_usable_buckets(buckets: dict[float, float]) -> None:
    assert math.isnan(series.histogram_quantile(0.95, buckets))


def test_histogram_quantile_out_of_range_q() -> None:
    assert series.histogram_quantile(-0.1, BUCKETS) == -math.inf
    assert series.histogram_quantile(1.1, BUCKETS) == math.inf
    assert math.isnan(series.histogram_quantile(math.nan, BUCKETS))


def test_histogram_quantile_with_a_non_positive_lowest_bound_returns_it() -> None:
    assert series.histogram_quantile(0.1, {0.0: 5.0, 1.0: 10.0, math.inf: 10.0}) == 0.0


def test_histogram_mean() -> None:
    assert series.histogram_mean(12.5, 50.0) == 0.25
    assert math.isnan(series.histogram_mean(0.0, 0.0))


# --- the ring --------------------------------------------------------------------------


def test_ring_drops_by_age_and_by_count() -> None:
    ring: Ring[str] = Ring(max_items=3, max_age_seconds=10)
    for at in (0, 4, 8, 12):
        ring.append(at, f"s{at}")
    assert [item for _, item in ring] == ["s4", "s8", "s12"]  # count bound
    ring.append(20, "s20")
    assert [item for _, item in ring] == ["s12", "s20"]  # age bound: 8 < 20 - 10


def test_ring_window_latest_and_order() -> None:
    ring: Ring[int] = Ring(max_items=10, max_age_seconds=100)
    for at in (1, 2, 3):
        ring.append(at, at * 10)
    assert ring.window(start=1, end=3) == [(2, 20), (3, 30)]
    assert ring.latest(at_or_before=2.5) == (2, 20)
    assert ring.latest(at_or_before=0.5) is None
    with pytest.raises(ValueError, match="backwards"):
        ring.append(2, 0)
