"""Output and signals for long-running commands: a reader that goes away
(``watch -o json | head -1``) never stops the watch, and SIGINT/SIGTERM cancel
it cleanly so it can record how it ended before the process exits 130/143.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

#: The signals that stop a watch, as the shell reports them (128 + number).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    finally:
        os.close(devnull)


class LineWriter:
    """Writes whole lines until the reader closes the pipe, then drops the rest."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, line: str) -> None:
        if self.reader_gone:
            return
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except BrokenPipeError:
            self.reader_gone = True
            silence_stdout()


class Interrupted(Exception):
    """The command was stopped by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(self.signal_name)


class SignalStop:
    """Runs one coroutine as a task that SIGINT/SIGTERM cancel (a second signal too).

    ``on_signal`` is told the first signal's name before the task is cancelled (a
    watch records which signal stopped it).
    """

    def __init__(self, on_signal: Callable[[str], None] | None = None) -> None:
        self.received: int | None = None
        self._task: asyncio.Task[Any] | None = None
        self._on_signal = on_signal

    def stop(self, signum: int) -> None:
        if self.received is None:
            self.received = signum
            if self._on_signal is not None:
                self._on_signal(signal.Signals(signum).name)
        if self._task is not None:
            self._task.cancel()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await ``work``; :class:`Interrupted` when a signal cancelled it."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._task = task
        try:
            return await task
        except asyncio.CancelledError:
            if self.received is None:
                raise
            raise Interrupted(self.received) from None


@contextlib.contextmanager
def cancelled_by_signals(
    on_signal: Callable[[str], None] | None = None,
) -> Iterator[SignalStop]:
    """SIGINT/SIGTERM cancel the task :meth:`SignalStop.run` runs, inside this block."""
    loop = asyncio.get_running_loop()
    stopper = SignalStop(on_signal)
    installed = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, stopper.stop, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        installed.append(signum)
    try:
        yield stopper
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
