"""The human units of the seed's policy."""

from __future__ import annotations

import pytest

from rollguard.policy import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5 minutes", 300), ("5m", 300), ("1h30m", 5400), ("90s", 90), (45, 45), ("2 hours", 7200)],
)
def test_durations(text: object, seconds: float) -> None:
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-5m", "0s", "five minutes", "5 fortnights", "", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration|unit"):
        units.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value", "comparison", "unit"),
    [
        ("5%", 5.0, units.Comparison.ABOVE, "%"),
        ("30% increase from baseline", 30.0, units.Comparison.INCREASE_PERCENT, "%"),
        ("50MB increase from baseline", 50.0, units.Comparison.INCREASE, "MB"),
        ("1GB increase from stable", 1024.0, units.Comparison.INCREASE, "MB"),
        ("500ms", 500.0, units.Comparison.ABOVE, "ms"),
        ("2s", 2000.0, units.Comparison.ABOVE, "ms"),
        (7, 7.0, units.Comparison.ABOVE, ""),
    ],
)
def test_thresholds(text: object, value: float, comparison: units.Comparison, unit: str) -> None:
    parsed = units.parse_threshold(text)
    assert (parsed.value, parsed.comparison, parsed.unit) == (value, comparison, unit)


def test_limits_and_rates() -> None:
    assert units.parse_limit("0 tolerance") == 0
    assert units.parse_limit("10 maximum") == 10
    assert units.parse_rate_per_minute("5 per minute") == 5.0
    assert units.parse_rate_per_minute("1 per second") == 60.0
    with pytest.raises(ValueError, match="whole number"):
        units.parse_limit("1.5 maximum")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused_everywhere(number: float) -> None:
    # YAML's .nan / .inf: a NaN threshold is never "within" its limit, so it would always fire
    with pytest.raises(ValueError, match="duration"):
        units.parse_duration(number)
    with pytest.raises(ValueError, match="threshold"):
        units.parse_threshold(number)
    with pytest.raises(ValueError, match="rate"):
        units.parse_rate_per_minute(number)


def test_a_negative_number_is_no_threshold() -> None:
    with pytest.raises(ValueError, match="negative"):
        units.parse_threshold(-5)
