"""A progressive release through a real HAProxy: each step is HAProxy's real weight."""

from __future__ import annotations

import pytest

from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.executors.haproxy import HaproxyExecutor
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from rollguard.policy.model import HaproxyExecutorSpec
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider, RecordingExecutor
from servers.haproxy import BACKEND, HaproxyServer

pytestmark = pytest.mark.real_server

POLICY = """
target: {{deployment: shop, executor: {{type: haproxy, socket: '{socket}', backend: {backend}}}}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/metrics", canary: "http://127.0.0.1:2/metrics"}}
analysis: {{interval: 5s}}
error_rate_trigger: {{increase_percent: 200, compare_with: stable}}
promotion:
  steps: [10, 50, 100]
  min_step_duration: 20s
{hooks}
"""


def _watch(
    haproxy: HaproxyServer, hooks: str = "", canary_errors: float = 1.0
) -> tuple[Watcher, list[str], MemoryAuditSink]:
    policy = parse_policy(POLICY.format(socket=haproxy.socket_path, backend=BACKEND, hooks=hooks))
    provider = InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 1.0,
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 1.0,
            (Signal.REQUESTS, Version.CANARY): 200.0,
            (Signal.ERRORS, Version.CANARY): canary_errors,
            (Signal.REQUESTS, Version.STABLE): 2000.0,
            (Signal.ERRORS, Version.STABLE): 20.0,
        }
    )
    spec = policy.target.executor
    assert isinstance(spec, HaproxyExecutorSpec)
    seen: list[str] = []

    def weight(label: str) -> None:  # after each call, HAProxy's own answer for the canary
        if label.startswith("set canary weight"):
            seen.append(haproxy.command(f"get weight {BACKEND}/canary").split()[0])

    executor = RecordingExecutor(HaproxyExecutor(spec), on_call=weight)
    audit = MemoryAuditSink()
    watcher = Watcher(
        policy,
        provider=provider,
        executor=executor,
        notifier=LogNotifier(),
        audit=audit,
        clock=SimulatedClock(1_000.0),
    )
    return watcher, seen, audit


async def test_a_healthy_release_reaches_all_traffic_step_by_step(
    canary_haproxy: HaproxyServer,
) -> None:
    watcher, seen, _ = _watch(canary_haproxy)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    assert seen == ["10", "50", "100"]
    answered = canary_haproxy.count_answers(50)
    assert answered == {"canary": 50}


async def test_a_failing_hook_rolls_the_release_back_to_stable(
    canary_haproxy: HaproxyServer,
) -> None:
    hooks = "  hooks: {confirm_promotion: {command: [/bin/sh, -c, 'exit 2']}}"
    watcher, _, audit = _watch(canary_haproxy, hooks)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert "hook confirm_promotion failed: exit code 2" in result.reason
    assert canary_haproxy.count_answers(50) == {"stable": 50}
    kinds = [r.kind for r in audit.records]
    assert kinds.count("promotion_step") == 2
    assert "hook" in kinds
    assert "action_result" in kinds
