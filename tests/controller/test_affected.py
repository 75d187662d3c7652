"""The affected-users estimate: canary requests from the window's start to the action's end."""

from __future__ import annotations

from rollguard.controller import affected
from rollguard.engine.decision import Evidence


def _evidence(trigger: str, requests: float | None, window: float = 60.0) -> Evidence:
    return Evidence(
        trigger=trigger,
        signal="error_rate_percent",
        value=9.0,
        limit=5.0,
        threshold=5.0,
        comparison="above",
        window_seconds=window,
        requests=requests,
    )


def test_the_window_requests_are_scaled_by_the_time_until_the_action_ended() -> None:
    evidence = [_evidence("latency_trigger", 999), _evidence("error_rate_trigger", 600)]
    assert affected.estimate(evidence, trigger="error_rate_trigger", action_seconds=0) == 600
    assert affected.estimate(evidence, trigger="error_rate_trigger", action_seconds=30) == 900


def test_without_a_request_count_the_estimate_is_zero() -> None:
    assert affected.estimate([_evidence("t", None)], trigger="t", action_seconds=10) == 0
    assert affected.estimate([_evidence("t", 50)], trigger="other", action_seconds=10) == 0
