"""A command dies with the process that started it, and never runs beside what a killed
one left behind (issue: a killed watcher's ``helm rollback`` kept running while the
restarted one ran a second)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult
from rollguard.executors.command import CommandExecutor
from rollguard.policy.model import CommandExecutorSpec
from support import process_running, wait_until

WATCHER = Path(__file__).with_name("command_watcher.py")


@contextlib.contextmanager
def _watcher(line: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    spec = {"rollback": [line], "shell": True, "timeout": "120s"}
    process = subprocess.Popen(
        [sys.executable, str(WATCHER), json.dumps(spec)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _kill_later(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _executor(line: str, *, bound: str) -> CommandExecutor:
    spec = {"rollback": [line], "shell": True, "timeout": bound}
    return CommandExecutor(CommandExecutorSpec.model_validate(spec), deployment="shop")


def test_a_sigkilled_watchers_command_and_what_it_started_die_with_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    shell, child = tmp_path / "shell.pid", tmp_path / "child.pid"
    line = f"echo $$ > {shell}; sleep 300 & echo $! > {child}; wait"
    with _watcher(line, cli_env) as watcher:
        wait_until(lambda: shell.exists() and child.exists() and child.read_text(), what="pids")
        pids = int(shell.read_text()), int(child.read_text())
        try:
            watcher.send_signal(signal.SIGKILL)
            watcher.wait()
            for pid in pids:
                wait_until(lambda pid=pid: not process_running(pid), what=f"pid {pid} to die")
        finally:
            _kill_later(*pids)


def test_a_restarted_rollback_waits_for_what_a_killed_one_left_running(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    log, go, left = tmp_path / "log", tmp_path / "go", tmp_path / "left.pid"
    # The first rollback's real work runs in a process that left the command's group
    # (setsid): killing the group cannot reach it, and it ends only when told to.
    inner = (
        f"echo $$ > {left}; echo first-start >> {log}; "
        f"until [ -e {go} ]; do sleep 0.01; done; echo first-end >> {log}"
    )
    line = f"setsid sh -c '{inner}' & wait"
    with _watcher(line, cli_env) as watcher:
        wait_until(lambda: left.exists() and left.read_text(), what="the first rollback to start")
        leftover = int(left.read_text())
        try:
            watcher.send_signal(signal.SIGKILL)
            watcher.wait()
            second = f"echo second >> {log}"
            # 0.5 s bounds only the wait for the lock, which the leftover holds until `go`.
            with pytest.raises(ExecutorError, match="a previous command for 'shop' is still"):
                asyncio.run(_executor(second, bound="0.5s").rollback())
            assert log.read_text().splitlines() == ["first-start"]  # nothing ran beside it
            go.touch()
            wait_until(lambda: not process_running(leftover), what="the first rollback to end")
            # Run it again with the usual bound: starting a command on a loaded machine
            # can itself take longer than 0.5 s.
            result = asyncio.run(_executor(second, bound="60s").rollback())
            assert result.ok, result.detail
            assert log.read_text().splitlines() == ["first-start", "first-end", "second"]
        finally:
            _kill_later(leftover)


def test_a_rollback_waits_for_a_running_one_then_says_how_long(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    first = f"echo a >> {log}; until [ -e {go} ]; do sleep 0.01; done; echo b >> {log}"

    def executor(line: str) -> CommandExecutor:
        spec = CommandExecutorSpec.model_validate({"rollback": [line], "shell": True})
        return CommandExecutor(spec, deployment="shop")

    def waiting() -> bool:
        return any("waiting for a previous command" in r.getMessage() for r in caplog.records)

    async def both() -> tuple[ActionResult, ActionResult]:
        running = asyncio.create_task(executor(first).rollback())
        await asyncio.to_thread(wait_until, log.exists, what="the first to start")
        queued = asyncio.create_task(executor(f"echo c >> {log}").rollback())
        await asyncio.to_thread(wait_until, waiting, what="the second to wait")
        go.touch()
        return await running, await queued

    with caplog.at_level(logging.WARNING, logger="rollguard.executors"):
        one, two = asyncio.run(both())
    assert one.ok, one.detail
    assert two.ok, two.detail
    assert log.read_text().splitlines() == ["a", "b", "c"]
    assert float(str(two.output["waited_for_previous_seconds"])) > 0
