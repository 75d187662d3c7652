"""Reading ``serve``'s folder of policies: which files there are, and what each holds.

A file that does not load is described by located problems (file:line) and
never raises: an invalid policy, a missing baseline, or a file no parser can
read at all (YAML nested a thousand deep crashes the YAML library with
``RecursionError``) is reported on its own while every other file loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from rollguard.errors import PolicyError, RollguardError
from rollguard.generate.source import PolicySource, load_source
from rollguard.server.state import PolicyFailure

logger = logging.getLogger("rollguard.serve")

POLICY_SUFFIXES = (".yaml", ".yml")


def listing(folder: Path, known: Iterable[Path]) -> dict[Path, tuple[int, int]]:
    """Policy files with (mtime, size), reusing ``known`` paths; ``os.scandir`` keeps this
    cheap for 1,000 files. An unreadable folder lists nothing (and is logged)."""
    entries: list[tuple[str, tuple[int, int]]] = []
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                if not entry.name.endswith(POLICY_SUFFIXES):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file():
                        stat = entry.stat()
                        entries.append((entry.path, (stat.st_mtime_ns, stat.st_size)))
    except OSError as exc:
        logger.error("cannot list %s: %s", folder, exc.strerror)
        return {}
    by_name = {str(path): path for path in known}
    return {by_name.get(name) or Path(name): key for name, key in sorted(entries)}


async def read(path: Path) -> PolicySource | list[PolicyFailure]:
    """The file's policy and recordings, or the located problems that stop it loading."""
    try:
        # Parsing YAML and reading recordings is slow for a thousand files: a thread keeps
        # the event loop (and /healthz) answering meanwhile.
        return await asyncio.to_thread(load_source, path)
    except PolicyError as exc:
        return [PolicyFailure(**vars(problem)) for problem in exc.problems]
    except RollguardError as exc:
        return [PolicyFailure(str(path), 1, 1, "baseline.file", str(exc))]
    except Exception as exc:  # a parser crashing on this file alone (RecursionError, ...)
        return [unreadable(path, exc)]


def unreadable(path: Path, exc: BaseException) -> PolicyFailure:
    """A file that could not be loaded at all, as its own failure."""
    text = " ".join(str(exc).split())[:200] or "no detail"
    message = f"cannot be loaded: {type(exc).__name__}: {text}"
    return PolicyFailure(str(path), 1, 1, "(file)", message)
