"""The watch loop on real parts: Prometheus reads HAProxy's metrics, HAProxy takes the action.

Traffic flows through a real HAProxy to two real servers; Prometheus scrapes
HAProxy's built-in exporter every second; the Watcher runs on the system clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome, SimulatedClock, Watcher
from rollguard.controller.clock import SystemClock
from rollguard.controller.watch import EvaluationHook
from rollguard.engine.decision import TriggerStatus
from rollguard.engine.evaluate import Evaluation
from rollguard.executors.haproxy import HaproxyExecutor
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from rollguard.policy.model import HaproxyExecutorSpec, PrometheusSource
from rollguard.signals import Signal, Version
from rollguard.testing import InMemoryProvider
from servers.real_stack import CANARY_REQUESTS, RealStack, running_real_stack
from servers.traffic import Traffic
from support import wait_until

pytestmark = pytest.mark.real_server


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[RealStack]:
    with running_real_stack(tmp_path, canary_weight=50) as running:
        yield running


def _watcher(
    stack: RealStack, on_evaluation: EvaluationHook | None = None, *, no_data_limit: int = 3
) -> Watcher:
    parsed = parse_policy(stack.policy_yaml(no_data_limit=no_data_limit))
    assert isinstance(parsed.metrics, PrometheusSource)
    assert isinstance(parsed.target.executor, HaproxyExecutorSpec)
    return Watcher(
        parsed,
        provider=PrometheusProvider(parsed.metrics),
        executor=HaproxyExecutor(parsed.target.executor),
        notifier=LogNotifier(),
        audit=MemoryAuditSink(),
        clock=SystemClock(),
        on_evaluation=on_evaluation,
    )


def _wait_for_canary_traffic_in_prometheus(stack: RealStack) -> None:
    wait_until(
        lambda: (stack.prometheus.value(f"sum(increase({CANARY_REQUESTS}[10s]))") or 0) > 10,
        timeout=30,
        interval=0.2,
        what="Prometheus to see canary traffic through HAProxy",
    )


async def test_failing_canary_is_rolled_back_through_haproxy(stack: RealStack) -> None:
    with Traffic(stack.haproxy.url, pause_seconds=0.005) as traffic:
        stack.versions["canary"].fault.fail_every = 2  # half of the canary's answers are 500
        _wait_for_canary_traffic_in_prometheus(stack)
        watcher = _watcher(stack)
        try:
            result = await watcher.run(duration_seconds=60)
            rolled_back_at = time.perf_counter()
            after = await asyncio.to_thread(
                wait_until,
                lambda: len(traffic.since(rolled_back_at)) >= 20 and traffic.since(rolled_back_at),
                timeout=20,
                what="20 requests through HAProxy after the rollback",
            )
            status = await watcher.executor.status()
        finally:
            await watcher.provider.aclose()
            await watcher.executor.aclose()
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert result.trigger == "error_rate_trigger"
    [evidence] = [e for e in result.evidence if e["trigger"] == "error_rate_trigger"]
    assert evidence["value"] == pytest.approx(50, abs=10)  # HAProxy counted the 500s
    assert (status.canary_weight, status.canary_state) == (0, "retired")
    assert after, "traffic kept flowing"
    assert {(a.version, a.status) for a in after} == {("stable", 200)}


async def test_prometheus_down_mid_watch_is_inconclusive_never_healthy(stack: RealStack) -> None:
    seen: list[TriggerStatus] = []
    reasons: list[str] = []

    async def on_evaluation(evaluation: Evaluation) -> None:
        [result] = evaluation.results
        seen.append(result.status)
        reasons.append(result.evidence.reason)
        if len(seen) == 1:
            await asyncio.to_thread(stack.prometheus.stop)

    with Traffic(stack.haproxy.url, pause_seconds=0.005):
        _wait_for_canary_traffic_in_prometheus(stack)
        watcher = _watcher(stack, on_evaluation, no_data_limit=3)
        try:
            result = await watcher.run(duration_seconds=60)
        finally:
            await watcher.provider.aclose()
            await watcher.executor.aclose()
    assert seen[0] is TriggerStatus.OK
    assert seen[1:] == [TriggerStatus.NO_DATA, TriggerStatus.NO_DATA, TriggerStatus.INCONCLUSIVE]
    assert "cannot reach Prometheus" in reasons[1]
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.outcome.exit_code == 4


async def test_haproxy_socket_gone_is_a_failed_action_on_record(tmp_path: Path) -> None:
    policy = parse_policy(
        f"""
target:
  deployment: shop
  executor: {{type: haproxy, socket: "{tmp_path / "gone.sock"}", backend: app}}
metrics: {{provider: prometheus, address: "http://127.0.0.1:9"}}
analysis: {{interval: 1s, persistence: 1, min_requests: 0}}
error_rate_trigger: {{threshold: 5%, measurement_window: 1m}}
"""
    )
    assert isinstance(policy.target.executor, HaproxyExecutorSpec)
    provider = InMemoryProvider({(Signal.ERROR_RATE_PERCENT, Version.CANARY): 40.0})
    audit = MemoryAuditSink()
    watcher = Watcher(
        policy,
        provider=provider,
        executor=HaproxyExecutor(policy.target.executor),
        notifier=LogNotifier(),
        audit=audit,
        clock=SimulatedClock(1_000.0),
    )
    result = await watcher.run(duration_seconds=30)
    assert result.outcome is Outcome.FAILED
    assert result.outcome.exit_code == 5
    [record] = [r for r in audit.records if r.kind == "action_result"]
    assert record.outcome == "failure"
    assert "gone.sock does not exist" in json.dumps(record.executor_output)
