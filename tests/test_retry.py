"""The one retry helper: backoff, Retry-After, what is retried, and that it is the only one."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

import rollguard
from rollguard.retry import SETTINGS, RetrySettings, call_with_retries, retry_after_seconds


class Busy(Exception):
    def __init__(self, retry_after_seconds: float | None = None) -> None:
        super().__init__("busy")
        self.retry_after_seconds = retry_after_seconds


async def _run(failures: list[Exception], settings: RetrySettings) -> tuple[str, list[float], int]:
    slept: list[float] = []
    calls = 0

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def call() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    result = await call_with_retries(
        call, settings=settings, retry_on=lambda exc: isinstance(exc, Busy), sleep=sleep
    )
    return result, slept, calls


async def test_waits_double_up_to_their_cap() -> None:
    settings = RetrySettings(retries=5, backoff_seconds=1.0, max_backoff_seconds=5.0)
    result, slept, calls = await _run([Busy() for _ in range(5)], settings)
    assert (result, calls) == ("ok", 6)
    assert slept == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_retry_after_replaces_the_backoff_up_to_its_cap() -> None:
    settings = RetrySettings(retries=3, backoff_seconds=1.0, max_retry_after_seconds=60.0)
    _, slept, _ = await _run([Busy(7.0), Busy(600.0), Busy()], settings)
    assert slept == [7.0, 60.0, 4.0]


async def test_spent_retries_raise_the_last_error_and_others_are_not_retried() -> None:
    with pytest.raises(Busy):
        await _run([Busy(), Busy(), Busy()], RetrySettings(retries=2, backoff_seconds=0.0))
    with pytest.raises(ValueError, match="bad query"):
        await _run([ValueError("bad query"), Busy()], RetrySettings(2, 0.0))


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120") == 120.0
    now = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_every_backend_s_settings_are_in_one_place() -> None:
    assert set(SETTINGS) == {"prometheus", "metrics", "notifications", "kubernetes_conflict"}
    package = Path(rollguard.__file__).parent
    hand_written = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "retry.py"
        and ("2**attempt" in path.read_text() or "2**tries" in path.read_text())
    ]
    assert hand_written == []
