"""``command``: programs that print one number (a vendor CLI, a script).

Each query is an argument list, run without a shell in the policy's folder,
with an environment of only what a program needs to run (``PATH``, ``HOME``,
the locale...) and the variables the policy passes on by name (``pass_env``;
rollguard's own secrets are refused there at policy load). The program must
finish within ``timeout`` (its whole process group is killed otherwise) and
print one number; an empty output (or ``null``/``NaN``) is no data, a non-zero
exit or other output is an error with the tail of what it printed. A program
that fails is not retried: running it again would only repeat the failure. It
runs as the command executor's programs do (:mod:`rollguard.processes.bounded`):
under a supervisor that kills it with rollguard, its pipes read to their end.

Placeholders in the arguments: ``$version`` (the version's label),
``$window`` (seconds), ``$start`` and ``$end`` (Unix seconds).
"""

from __future__ import annotations

import os
from pathlib import Path

from rollguard.metrics.http import QueryFailed, shown
from rollguard.metrics.templated import QueryProvider, Window, fill
from rollguard.policy.sources import CommandSource
from rollguard.processes.bounded import run_bounded

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
            done = await run_bounded(argv, timeout=self._timeout, env=self._env, cwd=str(self._cwd))
        except OSError as exc:
            raise QueryFailed(f"cannot run the program {program}: {exc.strerror or exc}") from exc
        if done.timed_out:
            raise QueryFailed(
                f"the program {program} did not finish in time ({self._timeout:g}s); killed"
            )
        if len(done.stdout) > MAX_OUTPUT_BYTES:
            raise QueryFailed(f"a program printed more than {MAX_OUTPUT_BYTES:,} bytes; refused")
        if done.exit_code != 0:
            tail = shown((done.stderr or done.stdout).decode(errors="replace")[-400:])
            raise QueryFailed(f"the program {program} exited {done.exit_code}: {tail}")
        return _number(done.stdout.decode(errors="replace"), program)


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
