"""The report's time histograms: bins that tell a narrow spread apart and keep a wide one
readable, every rollback in exactly one bin."""

from __future__ import annotations

from rollguard.reports.charts import histogram

WIDE = [0.4, 3.0, 45.0, 300.0, 1800.0, 2900.0, 6.5, 6.5]


def test_a_wide_spread_gets_bins_that_grow_about_threefold() -> None:
    labels, counts = histogram(WIDE)
    assert labels == [
        "0.3-1s",
        "1-3s",
        "3-10s",
        "10-30s",
        "30-100s",
        "100-300s",
        "300-1000s",
        "1000-3000s",
    ]
    assert counts == [1, 0, 3, 0, 1, 0, 1, 2]  # 3.0 and 300 sit at their bins' lower edges


def test_a_narrow_spread_keeps_equal_bins_with_distinct_labels() -> None:
    labels, counts = histogram([4.01, 4.02, 4.02, 4.05, 4.07, 4.09])
    assert len(set(labels)) == len(labels) > 1
    assert sum(counts) == 6
    assert "4.01-4.02s" in labels


def test_a_zero_keeps_equal_bins() -> None:
    labels, counts = histogram([0.0, 5.0, 2900.0])
    assert sum(counts) == 3
    assert len(set(labels)) == len(labels)
