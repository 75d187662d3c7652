"""The demo's real stack: the demo services behind a real HAProxy, watched through a real
Prometheus, a fault caught and rolled back by the watch loop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demo_servers import service_in_thread
from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome, Watcher
from rollguard.controller.clock import SystemClock
from rollguard.controller.watch import WatchResult
from rollguard.demo import real_stack
from rollguard.demo.run import DemoSettings, run_demo
from rollguard.demo.scenarios import SCENARIOS
from rollguard.executors.base import TargetStatus
from rollguard.executors.factory import make_executor
from rollguard.metrics.factory import make_provider
from rollguard.notifiers.log import LogNotifier
from rollguard.policy.model import Policy
from servers.traffic import Traffic
from support import require_binary, wait_until

pytestmark = pytest.mark.real_server


@pytest.fixture
def stack() -> Iterator[tuple[real_stack.RealStack, str]]:
    require_binary("haproxy", hint="apt-get install haproxy")
    require_binary("prometheus", hint="apt-get install prometheus")
    with service_in_thread("v1", role="stable") as stable, service_in_thread("v2") as canary:
        running = real_stack.start(stable_url=stable.url, canary_url=canary.url, canary_percent=50)
        try:
            yield running, canary.url
        finally:
            running.stop()


def test_a_faulty_canary_is_caught_and_rolled_back_on_real_parts(
    stack: tuple[real_stack.RealStack, str], tmp_path: Path
) -> None:
    running, canary_url = stack
    sections = running.policy_sections()
    policy = Policy.model_validate(
        {
            "name": "demo-real",
            "target": {"deployment": "demo", "executor": sections["executor"]},
            "metrics": sections["metrics"],
            "analysis": {
                "interval": "0.5s",
                "min_requests": 10,
                "persistence": 2,
                "no_data_limit": 20,
            },
            "error_rate_trigger": {"threshold": "5%", "measurement_window": "10s"},
        }
    )
    with Traffic(running.url, pause_seconds=0.005) as traffic:
        wait_until(
            lambda: any(json.loads(a.version).get("version") == "v2" for a in traffic.answers),
            what="canary answers through HAProxy",
        )
        httpx.post(f"{canary_url}/simulate/error_rate/50").raise_for_status()

        async def watch() -> tuple[WatchResult, TargetStatus]:
            provider = make_provider(policy, base_dir=tmp_path)
            executor = make_executor(policy)
            watcher = Watcher(
                policy,
                provider=provider,
                executor=executor,
                notifier=LogNotifier(),
                audit=MemoryAuditSink(),
                clock=SystemClock(),
            )
            try:
                return await watcher.run(duration_seconds=60), await executor.status()
            finally:
                await provider.aclose()
                await executor.aclose()

        result, status = asyncio.run(watch())
        after = time.perf_counter()
        wait_until(lambda: len(traffic.since(after)) >= 20, what="traffic after the rollback")
        versions = {json.loads(a.version)["version"] for a in traffic.since(after)}
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert status.canary_state == "retired"
    assert versions == {"v1"}


def test_missing_binaries_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(real_stack.RealStackError, match="needs haproxy and prometheus on PATH"):
        real_stack.find_binaries()


def _spy_on_spawn(
    monkeypatch: pytest.MonkeyPatch, *, interrupt: str | None = None
) -> tuple[list[subprocess.Popen[bytes]], threading.Event]:
    """Every process the real stack spawns, and an event set at the first; optionally
    a Ctrl-C (KeyboardInterrupt) as the ``interrupt`` process is about to start."""
    spawned: list[subprocess.Popen[bytes]] = []
    first = threading.Event()
    spawn = real_stack._spawn

    def spy(argv: list[str], directory: Path, name: str) -> subprocess.Popen[bytes]:
        if name == interrupt:
            wait_until((directory / "haproxy.sock").exists, what="HAProxy's admin socket")
            raise KeyboardInterrupt
        process = spawn(argv, directory, name)
        spawned.append(process)
        first.set()
        return process

    monkeypatch.setattr(real_stack, "_spawn", spy)
    return spawned, first


def _kill_leftovers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_while_prometheus_starts_stops_the_running_haproxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_binary("haproxy", hint="apt-get install haproxy")
    require_binary("prometheus", hint="apt-get install prometheus")
    spawned, _ = _spy_on_spawn(monkeypatch, interrupt="prometheus")
    try:
        with pytest.raises(KeyboardInterrupt):
            real_stack.start(
                stable_url="http://127.0.0.1:1", canary_url="http://127.0.0.1:2", canary_percent=50
            )
        (haproxy,) = spawned
        wait_until(lambda: haproxy.poll() is not None, what="HAProxy to be stopped")
        directory = Path(str(haproxy.args[2])).parent  # type: ignore[index]  # -f DIR/haproxy.cfg
        assert not directory.exists()
    finally:
        _kill_leftovers(spawned)


def test_cancelling_the_demo_while_the_real_stack_starts_leaves_no_process_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_binary("haproxy", hint="apt-get install haproxy")
    require_binary("prometheus", hint="apt-get install prometheus")
    spawned, first = _spy_on_spawn(monkeypatch)

    async def cancel_once_haproxy_runs() -> None:
        demo = asyncio.create_task(
            run_demo(SCENARIOS["error-rate"], settings=DemoSettings(stack="real"))
        )
        started = asyncio.create_task(asyncio.to_thread(first.wait, 60))
        await asyncio.wait([demo, started], return_when=asyncio.FIRST_COMPLETED)
        assert first.is_set(), demo
        demo.cancel()  # what Ctrl-C does to `rollguard demo --stack real`
        with pytest.raises(asyncio.CancelledError):
            await demo
        # The launch goes on in its worker thread; what it started is stopped already.
        assert [process.poll() is not None for process in spawned] == [True] * len(spawned)

    try:
        asyncio.run(cancel_once_haproxy_runs())
        assert 1 <= len(spawned) <= 2  # HAProxy, and Prometheus if it was already spawned
        assert all(process.poll() is not None for process in spawned)  # the thread started no more
    finally:
        _kill_leftovers(spawned)
