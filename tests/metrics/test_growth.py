"""Exact counter growth from raw samples: the rules Prometheus' answers are read with."""

from __future__ import annotations

from rollguard.metrics.growth import SeriesKey, by_label, selection, total
from rollguard.metrics.series import Point

A: SeriesKey = frozenset({("code", "200")})
B: SeriesKey = frozenset({("code", "500")})


def test_a_sample_at_the_window_start_is_the_one_before_it() -> None:
    # Prometheus 2 returns it in both queries (its ranges are closed); 3 only before
    found = selection([(A, 10.0, 5.0), (A, 11.0, 8.0)], [(A, 5.0)], start=10.0)
    assert found.inside == {A: [Point(11.0, 8.0)]}
    assert total(found.growths(from_zero=False)) == 3.0


def test_a_drop_is_a_restart_counted_from_zero() -> None:
    found = selection([(A, 11.0, 9.0), (A, 12.0, 2.0), (A, 13.0, 4.0)], [(A, 6.0)], start=10.0)
    assert total(found.growths(from_zero=False)) == 3.0 + 2.0 + 2.0


def test_a_new_series_counts_from_zero_only_when_allowed() -> None:
    inside = [(A, 11.0, 9.0), (A, 12.0, 10.0), (B, 12.0, 2.0)]
    found = selection(inside, [(A, 6.0)], start=10.0)
    assert found.observed
    assert found.growths(from_zero=True) == {A: 4.0, B: 2.0}
    assert found.growths(from_zero=False) == {A: 4.0}  # B's one sample compares with nothing


def test_nothing_in_the_window_is_nothing_known() -> None:
    found = selection([(A, 9.0, 3.0)], [(A, 3.0)], start=10.0)
    assert total(found.growths(from_zero=True)) is None


def test_buckets_are_summed_per_bound() -> None:
    fast = frozenset({("le", "0.1"), ("pod", "a")})
    other_pod = frozenset({("le", "0.1"), ("pod", "b")})
    grown = {fast: 2.0, other_pod: 3.0, frozenset({("le", "+Inf"), ("pod", "a")}): 7.0}
    assert by_label(grown, "le") == {"0.1": 5.0, "+Inf": 7.0}
