"""A progressive release through a real HAProxy: each step is HAProxy's real weight, and every
release hook, called at its moment, sees the weight HAProxy then has."""

from __future__ import annotations

import json
import sys

import pytest

from audit_records import hook_calls
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


#: Prints the canary's weight as HAProxy's runtime API answers it when the hook runs.
ASK_WEIGHT = f"""
import socket, sys
with socket.socket(socket.AF_UNIX) as runtime:
    runtime.connect(sys.argv[1])
    runtime.sendall(b"get weight {BACKEND}/canary\\n")
    print(runtime.recv(200).decode().split()[0])
sys.exit(int(sys.argv[2]))
"""


def _hooks(haproxy: HaproxyServer, *names: str, failing: str = "") -> str:
    """Command hooks that print HAProxy's canary weight (into their audit entry);
    ``failing`` exits 2 after printing it."""
    lines = [
        "    {}: {}".format(
            name,
            json.dumps(
                {
                    "command": [
                        sys.executable,
                        "-c",
                        ASK_WEIGHT,
                        str(haproxy.socket_path),
                        "2" if name == failing else "0",
                    ]
                }
            ),
        )
        for name in names
    ]
    return "  hooks:\n" + "\n".join(lines)


async def test_a_healthy_release_reaches_all_traffic_step_by_step(
    canary_haproxy: HaproxyServer,
) -> None:
    names = ("pre_rollout", "confirm_step", "confirm_promotion", "post_rollout", "on_rollback")
    watcher, seen, audit = _watch(canary_haproxy, _hooks(canary_haproxy, *names))
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.PROMOTED
    assert seen == ["10", "50", "100"]
    answered = canary_haproxy.count_answers(50)
    assert answered == {"canary": 50}
    assert hook_calls(audit.records) == [
        ("pre_rollout", "success", "20"),  # before any step: the weight HAProxy started with
        ("confirm_step", "success", "10"),  # before 10 -> 50 %
        ("confirm_promotion", "success", "50"),  # before 50 -> 100 %
        ("post_rollout", "success", "100"),
    ]


@pytest.mark.parametrize(
    ("failing", "steps", "seen_by_hooks"),
    [
        ("confirm_promotion", ["10", "50"], ["50", "0"]),  # on_rollback once the canary has 0
        ("pre_rollout", [], ["20", "0"]),  # before any step: the weight HAProxy started with
    ],
)
async def test_a_failing_hook_rolls_the_release_back_to_stable(
    canary_haproxy: HaproxyServer, failing: str, steps: list[str], seen_by_hooks: list[str]
) -> None:
    hooks = _hooks(canary_haproxy, failing, "on_rollback", failing=failing)
    watcher, seen, audit = _watch(canary_haproxy, hooks)
    result = await watcher.run(duration_seconds=3600)
    assert result.outcome is Outcome.ROLLED_BACK
    assert f"hook {failing} failed: exit code 2" in result.reason
    assert seen == steps
    assert canary_haproxy.count_answers(50) == {"stable": 50}
    assert [r.kind for r in audit.records].count("action_result") == 1
    assert hook_calls(audit.records) == [
        (failing, "failure", seen_by_hooks[0]),
        ("on_rollback", "success", seen_by_hooks[1]),
    ]
