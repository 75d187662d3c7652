"""``rollguard demo`` leaves no demo server running when it is cancelled (Ctrl-C) or
fails while its stable, canary and router processes start in worker threads."""

from __future__ import annotations

import asyncio
import subprocess
import threading

import pytest

from rollguard.demo import servers
from rollguard.demo.run import DemoSettings, run_demo
from rollguard.demo.scenarios import SCENARIOS


def _spy_on_starts(
    monkeypatch: pytest.MonkeyPatch, *, module: str, fail: bool = False
) -> tuple[list[subprocess.Popen[bytes]], threading.Event]:
    """Every child spawned (seen as it waits for READY) and an event set when ``module``'s
    child is starting; with ``fail`` that child's start fails."""
    spawned: list[subprocess.Popen[bytes]] = []
    starting = threading.Event()
    read = servers._read_ready_line

    def spy(process: subprocess.Popen[bytes], *, timeout: float) -> str:
        spawned.append(process)
        if module in [str(arg) for arg in process.args]:  # type: ignore[union-attr]
            starting.set()
            if fail:
                raise servers.DemoError("refused by the test")
        return read(process, timeout=timeout)

    monkeypatch.setattr(servers, "_read_ready_line", spy)
    return spawned, starting


def _kill_leftovers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("module", ["rollguard.demo.service", "rollguard.demo.router"])
def test_cancelling_the_demo_while_servers_start_leaves_no_process_running(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    spawned, starting = _spy_on_starts(monkeypatch, module=module)

    async def cancel_while_starting() -> None:
        demo = asyncio.create_task(run_demo(SCENARIOS["error-rate"], settings=DemoSettings()))
        seen = asyncio.create_task(asyncio.to_thread(starting.wait, 60))
        await asyncio.wait([demo, seen], return_when=asyncio.FIRST_COMPLETED)
        assert starting.is_set(), demo
        demo.cancel()  # what Ctrl-C does to `rollguard demo`
        with pytest.raises(asyncio.CancelledError):
            await demo
        # The starts go on in their worker threads; what they spawned is stopped already.
        assert [process.poll() is not None for process in spawned] == [True] * len(spawned)

    try:
        asyncio.run(cancel_while_starting())  # returns once the worker threads are done
        assert spawned
        assert all(process.poll() is not None for process in spawned)  # none started later
    finally:
        _kill_leftovers(spawned)


def test_a_service_failing_to_start_stops_the_one_that_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawned, _ = _spy_on_starts(monkeypatch, module="canary", fail=True)
    try:
        with pytest.raises(servers.DemoError, match="refused by the test"):
            asyncio.run(run_demo(SCENARIOS["error-rate"], settings=DemoSettings()))
        # The canary, and the stable one unless it was refused; never the router after it.
        args = [" ".join(str(arg) for arg in process.args) for process in spawned]  # type: ignore[union-attr]
        assert any("--role canary" in line for line in args)
        assert not any("rollguard.demo.router" in line for line in args)
        assert all(process.poll() is not None for process in spawned)
    finally:
        _kill_leftovers(spawned)
