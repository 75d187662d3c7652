"""The watch loop on a simulated clock: decisions become actions and records."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.notifiers.base import Delivery, Notification
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import Action, Policy, parse_policy
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider, RecordingExecutor

POLICY = """
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/metrics", canary: "http://127.0.0.1:2/metrics"}
analysis: {interval: 5s, persistence: 2, no_data_limit: 3}
rollback: {steps: [25, 50, 75, 100], step_wait: 30s}
error_rate_trigger: {threshold: 5%, measurement_window: 1 minute, action: immediate_rollback}
latency_trigger: {threshold: 800ms, measurement_window: 1 minute, action: gradual_rollback}
"""


def make(
    policy_text: str = POLICY,
    *,
    executor: RecordingExecutor | None = None,
    notifier: LogNotifier | None = None,
) -> tuple[Policy, InMemoryProvider, RecordingExecutor, MemoryAuditSink, Watcher]:
    """A watcher over a healthy in-memory deployment on a simulated clock."""
    policy = parse_policy(policy_text)
    provider = InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.5,
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
            (Signal.LATENCY_P95_MS, Version.CANARY): 120.0,
        }
    )
    executor = executor or RecordingExecutor(canary_weight=20)
    audit = MemoryAuditSink()
    watcher = Watcher(
        policy,
        provider=provider,
        executor=executor,
        notifier=notifier or LogNotifier(),
        audit=audit,
        clock=SimulatedClock(1_000.0),
    )
    return policy, provider, executor, audit, watcher


async def test_healthy_for_the_whole_duration() -> None:
    _, provider, executor, audit, watcher = make()
    result = await watcher.run(duration_seconds=600)
    assert result.outcome is Outcome.HEALTHY
    assert result.evaluations == 121  # 0 s, 5 s, ..., 600 s
    assert executor.calls == []
    assert [r.kind for r in audit.records] == ["deployment_start", "deployment_end"]
    assert provider.collected == 121


async def test_error_rate_rolls_back_at_once_after_persistence() -> None:
    _, provider, executor, audit, watcher = make()
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 12.0)
    result = await watcher.run(duration_seconds=600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.outcome.exit_code == 1
    assert result.action is Action.IMMEDIATE_ROLLBACK
    assert result.trigger == "error_rate_trigger"
    assert result.evaluations == 2
    assert executor.calls == [("rollback", None)]
    assert executor.canary_weight == 0
    kinds = [r.kind for r in audit.records]
    assert kinds[:3] == ["deployment_start", "decision", "action_intent"]
    assert kinds[-2:] == ["action_result", "deployment_end"]
    assert audit.records[1].metrics["errorRate"] == 12.0


async def test_gradual_rollback_stops_once_users_recover() -> None:
    gradual_errors = POLICY.replace(
        "threshold: 5%, measurement_window: 1 minute, action: immediate_rollback",
        "threshold: 3%, measurement_window: 1 minute, action: gradual_rollback",
    )
    _, provider, executor, _, watcher = make(gradual_errors)
    executor.canary_weight = 100  # a full rollout being taken back
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 4.0)
    # blended rate after the first step: 0.25 * 0.5 + 0.75 * 4 = 3.125 %; after the second,
    # 0.5 * 0.5 + 0.5 * 4 = 2.25 %; after the third 0.75 * 0.5 + 0.25 * 4 = 1.375 % < 2 %.
    result = await watcher.run(duration_seconds=600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.action is Action.GRADUAL_ROLLBACK
    assert result.trigger == "error_rate_trigger"
    assert executor.calls == [
        ("set_canary_weight", 75),
        ("set_canary_weight", 50),
        ("set_canary_weight", 25),
    ]
    assert result.action_outcome is not None
    assert result.action_outcome["recovered_early"] is True


async def test_a_latency_rollback_is_not_stopped_by_a_low_error_rate() -> None:
    """A slow canary raises no errors: users' error rate says nothing about its recovery."""
    _, provider, executor, _, watcher = make()  # the canary has 20 % of the traffic
    provider.set(Signal.LATENCY_P95_MS, Version.CANARY, 2_000.0)  # errors stay at 0.5 %
    result = await watcher.run(duration_seconds=600)
    assert result.trigger == "latency_trigger"
    assert executor.calls == [
        ("set_canary_weight", 15),
        ("set_canary_weight", 10),
        ("set_canary_weight", 5),
        ("set_canary_weight", 0),
        ("rollback", None),
    ]
    assert result.action_outcome is not None
    assert result.action_outcome["recovered_early"] is False
    assert executor.canary_state == "retired"


async def test_gradual_rollback_goes_all_the_way_without_recovery() -> None:
    _, provider, executor, _, watcher = make()
    executor.canary_weight = 100
    provider.set(Signal.LATENCY_P95_MS, Version.CANARY, 2_000.0)
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 4.9)
    provider.set(Signal.ERROR_RATE_PERCENT, Version.STABLE, 3.0)
    await watcher.run(duration_seconds=600)
    # every share back on stable, then the release itself undone
    assert [c[1] for c in executor.calls] == [75, 50, 25, 0, None]
    assert executor.calls[-1] == ("rollback", None)


async def test_gradual_rollback_never_gives_a_partial_canary_more_traffic() -> None:
    _, provider, executor, _, watcher = make()  # the canary has 20 % of the traffic
    provider.set(Signal.LATENCY_P95_MS, Version.CANARY, 2_000.0)
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 4.9)
    provider.set(Signal.ERROR_RATE_PERCENT, Version.STABLE, 3.0)
    await watcher.run(duration_seconds=600)
    assert [c[1] for c in executor.calls] == [15, 10, 5, 0, None]


async def test_a_failed_action_is_its_own_outcome() -> None:
    _, provider, _, audit, watcher = make(executor=RecordingExecutor(fail=frozenset({"rollback"})))
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 50.0)
    result = await watcher.run(duration_seconds=60)
    assert result.outcome is Outcome.FAILED
    assert result.outcome.exit_code == 5
    assert audit.records[-2].outcome == "failure"


async def test_no_data_ends_inconclusive_never_healthy() -> None:
    _, provider, executor, _, watcher = make()
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, None)
    result = await watcher.run(duration_seconds=600)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.outcome.exit_code == 4
    assert result.evaluations == 3
    assert executor.calls == []


async def test_a_policy_with_nothing_to_judge_is_never_healthy() -> None:
    """A gate-only policy has no metric trigger: a watch of it proves nothing."""
    gate_only = POLICY.split("error_rate_trigger", maxsplit=1)[0] + "security_trigger: {}\n"
    _, _, executor, audit, watcher = make(gate_only)
    result = await watcher.run(duration_seconds=60)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.outcome.exit_code == 4
    assert executor.calls == []
    assert audit.records[-1].outcome == "inconclusive"
    assert "no metric trigger" in result.reason


async def test_a_cancelled_watch_records_an_interrupted_end() -> None:
    """SIGINT/SIGTERM cancel the watch in the CLI: its end is on record before it stops."""
    _, _, executor, audit, watcher = make()
    evaluated = asyncio.Event()
    watcher.on_evaluation = lambda _evaluation: evaluated.set()
    task = asyncio.create_task(watcher.run(duration_seconds=float("inf")))
    await evaluated.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(r.kind, r.outcome) for r in audit.records] == [
        ("deployment_start", ""),
        ("deployment_end", "interrupted"),
    ]
    assert executor.calls == []


@pytest.mark.parametrize(
    ("action", "calls"),
    [
        ("scaling_and_rollback", [("scale", 2.0), ("rollback", None)]),
        ("traffic_isolation_and_rollback", [("isolate", None), ("rollback", None)]),
        ("deployment_block", [("rollback", None)]),
    ],
)
async def test_compound_actions_call_the_executor_in_order(
    action: str, calls: list[tuple[str, object]]
) -> None:
    _, provider, executor, _, watcher = make(POLICY.replace("immediate_rollback}", action + "}"))
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 30.0)
    result = await watcher.run(duration_seconds=60)
    assert executor.calls == calls
    expected = Outcome.BLOCKED if action == "deployment_block" else Outcome.ROLLED_BACK
    assert result.outcome is expected


async def test_notifications_go_to_the_trigger_route() -> None:
    notifier = LogNotifier()
    _, provider, _, _, watcher = make(notifier=notifier)
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 50.0)
    result = await watcher.run(duration_seconds=60)
    assert [n.route for n in notifier.sent] == ["critical_alert"]
    assert result.deliveries == [{"channel": "log", "ok": True, "detail": ""}]


class _BrokenNotifier(LogNotifier):
    """A notifier breaking its never-raise contract, with a secret in the message."""

    async def notify(self, notification: Notification) -> list[Delivery]:
        raise RuntimeError("POST https://hooks.example/T0KEN-SECRET failed")


async def test_a_raising_notifier_is_recorded_as_a_failed_delivery_without_its_message() -> None:
    _, provider, _, audit, watcher = make(notifier=_BrokenNotifier())
    provider.set(Signal.ERROR_RATE_PERCENT, Version.CANARY, 50.0)
    result = await watcher.run(duration_seconds=60)
    assert result.outcome is Outcome.ROLLED_BACK  # the rollback never waits on notifiers
    assert result.deliveries == [
        {"channel": "critical_alert", "ok": False, "detail": "the notifier raised RuntimeError"}
    ]
    failures = [r for r in audit.records if r.kind == "notification"]
    assert [r.outcome for r in failures] == ["failure"]
    assert "SECRET" not in repr(audit.records)


async def test_aligned_ticks_fall_on_multiples_of_the_interval() -> None:
    """Watchers started at different moments meet at the same ticks (so one batch per tick)."""
    times: dict[float, list[float]] = {}

    async def watch(start: float) -> None:
        policy = parse_policy(POLICY)
        seen = times.setdefault(start, [])
        watcher = Watcher(
            policy,
            provider=InMemoryProvider({(Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.5}),
            executor=RecordingExecutor(canary_weight=20),
            notifier=LogNotifier(),
            audit=MemoryAuditSink(),
            clock=SimulatedClock(start),
            on_evaluation=lambda evaluation: seen.append(evaluation.at),
            align_ticks=True,
        )
        await watcher.run(duration_seconds=30)

    await asyncio.gather(watch(1_001.2), watch(1_003.9))
    for seen in times.values():
        assert seen[0] == pytest.approx(1_005)  # the first evaluation waits for the next tick
        assert all(b - a == pytest.approx(5) for a, b in itertools.pairwise(seen)), seen
    assert times[1_001.2] == times[1_003.9]


async def test_a_watch_taken_over_evaluates_at_once_then_at_the_ticks() -> None:
    """A canary already past its warm-up (the controller taking over another replica's
    watch) is evaluated when the watch starts, neither after the warm-up nor at the next
    tick; later evaluations meet the other watchers at the ticks."""
    policy = parse_policy(POLICY.replace("interval: 5s,", "interval: 5s, warmup: 60s,"))
    seen: list[float] = []
    watcher = Watcher(
        policy,
        provider=InMemoryProvider({(Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.5}),
        executor=RecordingExecutor(canary_weight=20),
        notifier=LogNotifier(),
        audit=MemoryAuditSink(),
        clock=SimulatedClock(1_003.9),
        on_evaluation=lambda evaluation: seen.append(evaluation.at),
        align_ticks=True,
        warmed_up=True,
    )
    await watcher.run(duration_seconds=30)
    assert seen[0] == pytest.approx(1_003.9)
    assert seen[1:] == pytest.approx([1_010.0 + 5 * k for k in range(len(seen) - 1)])
