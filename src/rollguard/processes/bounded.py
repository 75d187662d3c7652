"""Run one command under a deadline that bounds the whole call, its output included.

``communicate()`` reads until every copy of the output pipes is closed, and a
process the command started that left its process group (``setsid``, a
daemon) can hold a copy for as long as it lives: killing the group at the
timeout does not reach it, and the call would outlast its timeout by that
long. Here the pipes are our own and read while the command runs; at the
deadline the group is killed, its pipes are read to their end for at most
``DRAIN_SECONDS`` more, and what was read is kept.

A command never outlives rollguard: it runs under a small supervisor
(:mod:`rollguard.processes.supervise`) that SIGKILLs the command's group when
rollguard dies, even by SIGKILL. With a ``lock`` key (the deployment), the
command also runs under that key's run lock (:mod:`rollguard.processes.run_lock`),
so two commands for one deployment never overlap, across a crash included.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from rollguard.processes import run_lock

READ_CHUNK = 65536
#: Bytes kept per stream (the tail): a command printing without end must not fill memory.
KEEP_BYTES = 1024 * 1024
KILL_GRACE_SECONDS = 2.0  # for a SIGKILLed group leader to be reaped; it is near-instant
#: Reading a killed command's pipes to their end: a process outside its group may hold them.
DRAIN_SECONDS = 1.0
SUPERVISOR = Path(__file__).with_name("supervise.py")


@dataclass(frozen=True)
class Completed:
    """How a command ended: its exit code (None if it was killed), what it wrote."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    waited_seconds: float = 0.0  # for a previous command of the same lock key to end


async def run_bounded(
    argv: list[str],
    *,
    timeout: float,  # noqa: ASYNC109 the timeout kills the process group, not only the wait
    env: Mapping[str, str],
    cwd: str | None,
    lock: str | None = None,
) -> Completed:
    """Run ``argv`` in its own session until it exits and its output ends, or ``timeout``.

    At the timeout, or if the call is cancelled, the command's process group is
    killed: a command never outlives its action, nor rollguard. An ``OSError`` from
    starting it (``FileNotFoundError``, ``PermissionError``) propagates, its
    ``strerror`` set, for the caller to name. With
    ``lock``, a previous command under the same key is waited for within the same
    timeout (:class:`~rollguard.errors.ExecutorError` when it does not end in time).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with _maybe_locked(lock, deadline) as held:
        done = await _run(argv, deadline=deadline, env=env, cwd=cwd, held=held)
    if held is not None:
        done = dataclasses.replace(done, waited_seconds=held.waited_seconds)
    return done


@contextlib.asynccontextmanager
async def _maybe_locked(lock: str | None, deadline: float) -> AsyncIterator[run_lock.Held | None]:
    if lock is None:
        yield None
        return
    async with run_lock.held(lock, deadline=deadline) as held:
        yield held


async def _run(
    argv: list[str],
    *,
    deadline: float,
    env: Mapping[str, str],
    cwd: str | None,
    held: run_lock.Held | None,
) -> Completed:
    loop = asyncio.get_running_loop()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    status_read, status_write = os.pipe()
    pipes: list[IO[bytes]] = [
        os.fdopen(out_read, "rb", 0),
        os.fdopen(err_read, "rb", 0),
        os.fdopen(status_read, "rb", 0),
    ]
    supervised = [
        sys.executable,
        "-I",
        "-S",
        str(SUPERVISOR),
        str(os.getpid()),
        str(status_write),
        "--",
        *argv,
    ]
    try:
        process = await asyncio.create_subprocess_exec(
            *supervised,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out_write,
            stderr=err_write,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # the group the timeout kills
            pass_fds=(status_write,) if held is None else (status_write, held.fd),
        )
    except BaseException:
        for pipe in pipes:
            pipe.close()
        raise
    finally:
        for fd in (out_write, err_write, status_write):
            os.close(fd)  # the child has its copies; EOF comes when the last one closes
    if held is not None:
        held.record(process.pid, argv)
    sinks = (bytearray(), bytearray(), bytearray())
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
                await readers[2]  # the supervisor's word on starting the command
                _raise_start_error(bytes(sinks[2]))
                # shielded: a timeout stops the wait, not the reading (drained below)
                await asyncio.gather(*(asyncio.shield(task) for task in readers))
                exit_code = await process.wait()
        except TimeoutError:
            exited = process.returncode  # it may have exited, its output held open by another
            await _kill_group(process)
            await asyncio.wait(readers, timeout=DRAIN_SECONDS)  # to their end, bounded
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


def _raise_start_error(status: bytes) -> None:
    """The supervisor could not start the command: raise what starting it raised.

    Its errno picks the subclass, as ``OSError`` does for the system's own errors.
    """
    if not status:
        return
    number, _, message = status.decode(errors="replace").partition("\n")
    raise OSError(int(number), message) if int(number) else OSError(message)


async def _collect(reader: asyncio.StreamReader, sink: bytearray) -> None:
    while chunk := await reader.read(READ_CHUNK):
        sink += chunk
        if len(sink) > KEEP_BYTES:
            del sink[: len(sink) - KEEP_BYTES]


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the command's group, then reap its leader (so its transport closes)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(KILL_GRACE_SECONDS):
            await process.wait()
