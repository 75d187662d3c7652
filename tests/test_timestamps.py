"""One RFC 3339 writer: UTC, a Z, the precision named by the caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rollguard.timestamps import Precision, parse_rfc3339, rfc3339

AT = 1_764_237_605.25  # 2025-11-27T10:00:05.25Z


@pytest.mark.parametrize(
    ("precision", "text"),
    [
        ("microseconds", "2025-11-27T10:00:05.250000Z"),
        ("milliseconds", "2025-11-27T10:00:05.250Z"),
        ("seconds", "2025-11-27T10:00:05Z"),
        ("auto", "2025-11-27T10:00:05.250000Z"),
    ],
)
def test_each_precision(precision: Precision, text: str) -> None:
    assert rfc3339(AT, precision) == text


def test_auto_leaves_out_zero_microseconds_as_a_csv_gave_them() -> None:
    assert rfc3339(1_764_237_605.0, "auto") == "2025-11-27T10:00:05Z"


def test_datetimes_in_any_zone_and_naive_ones_are_written_in_utc() -> None:
    plus_two = datetime(2025, 11, 27, 12, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two, "seconds") == "2025-11-27T10:00:05Z"
    assert rfc3339(datetime(2025, 11, 27, 10, 0, 5), "seconds") == "2025-11-27T10:00:05Z"


def test_microseconds_are_fixed_width_so_text_order_is_time_order() -> None:
    times = [AT, AT + 0.000001, AT + 1, AT + 10.5]
    texts = [rfc3339(t) for t in times]
    assert len(set(map(len, texts))) == 1
    assert sorted(texts) == texts


def test_parse_reads_z_lower_case_and_offsets_and_assumes_utc_without_one() -> None:
    assert parse_rfc3339("2025-11-27T10:00:05z") == datetime(2025, 11, 27, 10, 0, 5, tzinfo=UTC)
    assert parse_rfc3339(" 2025-11-27T12:00:05+02:00 ").hour == 10
    assert parse_rfc3339("2025-11-27").tzinfo is UTC
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_rfc3339("last tuesday")
    assert rfc3339(parse_rfc3339(rfc3339(AT))) == rfc3339(AT)


def test_no_other_module_writes_a_timestamp_by_hand() -> None:
    from pathlib import Path

    import rollguard

    package = Path(rollguard.__file__).parent
    by_hand = ('strftime("%Y-%m-%dT', '.replace("+00:00", "Z")', "datetime.fromtimestamp(")
    found = [
        f"{path.relative_to(package)}: {marker}"
        for path in package.rglob("*.py")
        if path.name != "timestamps.py"
        for marker in by_hand
        if marker in path.read_text()
    ]
    assert found == []
