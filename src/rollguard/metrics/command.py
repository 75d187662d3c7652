"""``command``: programs that print one number (a vendor CLI, a script).

Each query is an argument list, run without a shell in the policy's folder,
with an environment of only what a program needs to run (``PATH``, ``HOME``,
the locale...) and the variables the policy passes on by name (``pass_env``;
rollguard's own secrets are refused there at policy load). The program must
finish within ``timeout`` (its whole process group is killed otherwise) and
print one number; an empty output (or ``null``/``NaN``) is no data, a non-zero
exit or other output is an error with the tail of what it printed. A program
that fails is not retried: running it again would only repeat the failure.

Placeholders in the arguments: ``$version`` (the version's label),
``$window`` (seconds), ``$start`` and ``$end`` (Unix seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from rollguard.metrics.http import QueryFailed, shown
from rollguard.metrics.templated import QueryProvider, Window, fill
from rollguard.policy.sources import CommandSource

#: What any program needs to run; nothing else of rollguard's environment is passed on.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
#: A number is a few bytes; more than this is not an answer.
MAX_OUTPUT_BYTES = 64 * 1024
_NO_DATA = {"", "null", "none", "nan", "-nan"}


class CommandProvider(QueryProvider[list[str]]):
    """Answers rollguard's queries with the output of the policy's programs."""

    def __init__(self, source: CommandSource, *, base_dir: Path) -> None:
        super().__init__(queries=source.queries, signals=source.signals, versions=source.versions)
        self._timeout = source.timeout
        self._cwd = base_dir
        self._env = {
            name: os.environ[name] for name in (*BASE_ENV, *source.pass_env) if name in os.environ
        }

    async def run(self, query: list[str], window: Window, *, count: bool) -> float:
        values = {
            "version": window.label,
            "window": f"{window.seconds:g}",
            "start": f"{window.start:.3f}",
            "end": f"{window.end:.3f}",
        }
        argv = [fill(argument, values) for argument in query]
        program = shown(argv[0], 80)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._cwd,
                env=self._env,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
        except OSError as exc:
            raise QueryFailed(f"cannot run the program {program}: {exc.strerror or exc}") from exc
        try:
            out, err = await asyncio.wait_for(_read(process), self._timeout)
        except TimeoutError:
            _kill_group(process)
            await process.wait()
            await _read_to_the_end(process)
            raise QueryFailed(
                f"the program {program} did not finish in time ({self._timeout:g}s); killed"
            ) from None
        if process.returncode != 0:
            tail = shown((err or out).decode(errors="replace")[-400:])
            raise QueryFailed(f"the program {program} exited {process.returncode}: {tail}")
        return _number(out.decode(errors="replace"), program)


async def _read(process: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """stdout and stderr, each cut at the limit, once the program has ended."""
    assert process.stdout is not None  # noqa: S101 both are pipes: see create_subprocess_exec
    assert process.stderr is not None  # noqa: S101
    out, err = await asyncio.gather(
        process.stdout.read(MAX_OUTPUT_BYTES + 1), process.stderr.read(MAX_OUTPUT_BYTES)
    )
    await process.wait()
    if len(out) > MAX_OUTPUT_BYTES:
        raise QueryFailed(f"a program printed more than {MAX_OUTPUT_BYTES:,} bytes; refused")
    return out, err


async def _read_to_the_end(process: asyncio.subprocess.Process) -> None:
    """Read a killed program's pipes to their end, so they are closed before its loop may be.

    Bounded: a process outside the killed group may still hold a pipe open.
    """
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.read(), 1.0)


def _number(output: str, program: str) -> float:
    text = output.strip()
    if text.lower() in _NO_DATA:
        raise QueryFailed(f"the program {program} printed no number", no_data=True)
    try:
        return float(text)
    except ValueError:
        raise QueryFailed(
            f"the program {program} printed {shown(text, 80)!r}, not one number"
        ) from None


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
