"""The page's last hour: bounded in rows and bytes whatever the interval and run time."""

from __future__ import annotations

import json

from rollguard.engine.decision import (
    Decision,
    Evidence,
    TriggerResult,
    TriggerStatus,
    Verdict,
)
from rollguard.engine.evaluate import Evaluation
from rollguard.engine.state import EngineState
from rollguard.policy.actions import Action, Severity
from rollguard.server.history import MAX_POINTS, WINDOW_SECONDS, History, capacity
from rollguard.server.state import DeploymentState

START = 1_800_000_000.0


def _evaluation(at: float, value: float, *, sequential: bool = False) -> Evaluation:
    evidence = Evidence(
        trigger="error_rate_trigger",
        signal="error_rate_percent",
        value=value,
        limit=100.0 if sequential else 5.0,
        threshold=5.0,
        comparison="e_value" if sequential else "above",
        window_seconds=60.0,
        reference=1.0,
        reference_source="stable",
        method="sequential" if sequential else "threshold",
    )
    result = TriggerResult(
        "error_rate_trigger",
        TriggerStatus.OK,
        Action.IMMEDIATE_ROLLBACK,
        Severity.CRITICAL,
        evidence,
    )
    decision = Decision(Verdict.CONTINUE, Action.CONTINUE, None, "within limits", Severity.INFO)
    return Evaluation(at=at, decision=decision, results=(result,), state=EngineState())


def test_capacity_covers_an_hour_and_is_capped() -> None:
    assert capacity(10.0) == 361
    assert capacity(60.0) == 61
    assert capacity(0.1) == MAX_POINTS  # an hour would be 36,000 rows
    assert capacity(0.0) == MAX_POINTS


def test_rows_wrap_around_oldest_first_and_the_answer_stays_bounded() -> None:
    history = History(interval_seconds=0.1)
    for step in range(10):
        history.add(_evaluation(START + step * 0.1, 1.0))
    assert history.nbytes <= 64 * 32  # a young deployment holds little
    assert len(history.as_dict(now=START + 1)["triggers"][0]["at"]) == 10
    runs = 3 * MAX_POINTS + 7
    for step in range(runs):
        history.add(_evaluation(START + step * 0.1, 1.0 + step % 13 / 7))
        if step % 10 == 0:
            history.event(START + step * 0.1, "decision", "x" * 40)
    body = history.as_dict(now=START + runs * 0.1)
    [series] = body["triggers"]
    assert len(series["at"]) == len(series["value"]) == len(series["limit"]) == MAX_POINTS
    assert series["at"] == sorted(series["at"])
    assert series["at"][-1] == round(START + (runs - 1) * 0.1, 3)  # the newest is kept
    assert len(body["events"]) == 200
    assert history.nbytes == MAX_POINTS * 32  # the cap, never more
    # 3,600 rows of four numbers and 200 events: well under a megabyte, however long it ran.
    assert len(json.dumps(body)) < 300_000


def test_every_row_is_kept_in_order_while_the_ring_grows() -> None:
    # 64 rows, then 128, 256: each growth keeps every row and their order.
    history = History(interval_seconds=0.1)
    times: list[float] = []
    for step in range(300):
        times.append(round(START + step * 0.1, 3))
        history.add(_evaluation(times[-1], 1.0))
        assert history.as_dict(now=times[-1])["triggers"][0]["at"] == times, step


def test_rows_older_than_the_window_are_left_out() -> None:
    history = History(interval_seconds=60.0)
    for step in range(90):  # an hour and a half at one a minute
        history.add(_evaluation(START + step * 60.0, 2.0))
    history.event(START, "weight", "canary at 20%", canary_weight=20)
    now = START + 89 * 60.0
    body = history.as_dict(now=now)
    at = body["triggers"][0]["at"]
    assert len(at) == 61
    assert min(at) >= now - WINDOW_SECONDS
    assert body["events"] == []


def test_a_sequential_trigger_keeps_its_e_value_and_one_over_alpha_without_a_reference() -> None:
    history = History(interval_seconds=5.0)
    history.add(_evaluation(START, 0.5, sequential=True))
    history.add(_evaluation(START + 5, 1234567.891, sequential=True))
    [series] = history.as_dict(now=START + 5)["triggers"]
    assert series["method"] == "sequential"
    assert series["value"] == [0.5, 1234570.0]  # six significant digits
    assert series["limit"] == [100.0, 100.0]
    assert series["reference"] == [None, None]


def test_traffic_steps_read_back_are_kept_and_assumed_splits_are_not() -> None:
    state = DeploymentState(
        name="web", policy_name="p", policy_file="p.yaml", policy_digest="d", history=History(5.0)
    )
    state.read_weight(20, "serving", "", START)  # the first read is where it starts, no step
    state.read_weight(20, "serving", "", START + 5)  # unchanged: no new step
    state.read_weight(10, "serving", "", START + 10)
    state.read_weight(5, "serving", "", START + 12)
    state.read_weight(0, "retired", "the noop executor changes and reads nothing", START + 15)
    events = state.history.as_dict(now=START + 15)["events"]
    assert [(e["kind"], e["canary_weight"]) for e in events] == [("weight", 10), ("weight", 5)]
    assert events[0]["message"] == "canary at 10%"
    weights = state.detail()["weights"]
    assert weights["assumed"] == "the noop executor changes and reads nothing"
