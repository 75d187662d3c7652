"""Run one command under a deadline that bounds the whole call, its output included.

``communicate()`` reads until every copy of the output pipes is closed, and a
process the command started that left its process group (``setsid``, a
daemon) can hold a copy for as long as it lives: killing the group at the
timeout does not reach it, and the call would outlast its timeout by that
long. Here the pipes are our own and read while the command runs; at the
deadline the group is killed, reading stops and what was read is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import IO

READ_CHUNK = 65536
KILL_GRACE_SECONDS = 2.0  # for a SIGKILLed group leader to be reaped; it is near-instant


@dataclass(frozen=True)
class Completed:
    """How a command ended: its exit code (None if it was killed), what it wrote."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


async def run_bounded(
    argv: list[str],
    *,
    timeout: float,  # noqa: ASYNC109 the timeout kills the process group, not only the wait
    env: Mapping[str, str],
    cwd: str | None,
) -> Completed:
    """Run ``argv`` in its own session until it exits and its output ends, or ``timeout``.

    At the timeout, or if the call is cancelled, the command's process group is
    killed: a command never outlives its action. ``FileNotFoundError`` and
    ``PermissionError`` from starting it propagate for the caller to name.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pipes: list[IO[bytes]] = [os.fdopen(out_read, "rb", 0), os.fdopen(err_read, "rb", 0)]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out_write,
            stderr=err_write,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # the group the timeout kills
        )
    except BaseException:
        for pipe in pipes:
            pipe.close()
        raise
    finally:
        os.close(out_write)  # the child has its copies; EOF comes when the last one closes
        os.close(err_write)
    sinks = (bytearray(), bytearray())
    transports: list[asyncio.BaseTransport] = []
    readers: list[asyncio.Task[None]] = []
    try:
        for pipe, sink in zip(pipes, sinks, strict=True):
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(
                partial(asyncio.StreamReaderProtocol, reader), pipe
            )
            transports.append(transport)
            readers.append(asyncio.create_task(_collect(reader, sink)))
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.gather(*readers)
                exit_code = await process.wait()
        except TimeoutError:
            exited = process.returncode  # it may have exited, its output held open by another
            await _kill_group(process)
            return Completed(exited, bytes(sinks[0]), bytes(sinks[1]), timed_out=True)
        return Completed(exit_code, bytes(sinks[0]), bytes(sinks[1]))
    except BaseException:  # cancelled, or reading failed: the command goes too
        await _kill_group(process)
        raise
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for opened in transports:
            opened.close()
        for pipe in pipes[len(transports) :]:
            pipe.close()


async def _collect(reader: asyncio.StreamReader, sink: bytearray) -> None:
    while chunk := await reader.read(READ_CHUNK):
        sink += chunk


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the command's group, then reap its leader (so its transport closes)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(KILL_GRACE_SECONDS):
            await process.wait()
