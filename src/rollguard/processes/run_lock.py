"""One user command at a time per deployment on a host, even across a crash.

Each command runs while its deployment's lock file is ``flock``-ed. The lock is
taken on an open file that the command's supervisor and the command inherit,
so it stays held for as long as any of them lives: when rollguard is SIGKILLed
mid-rollback and restarted, the restarted rollback waits for what is left of
the first one (a process that left the command's group still holds it)
instead of running beside it, which non-idempotent tools such as
``helm rollback`` do not survive. After a command ends normally, or is killed
at its timeout or on cancellation, rollguard unlocks explicitly: a daemon the
command started and left running does not hold the next command back.

Lock files live in ``$ROLLGUARD_RUN_DIR``, else ``$XDG_RUNTIME_DIR/rollguard``,
else ``<tmp>/rollguard-<uid>``; the folder must be the user's own and not
writable by others. Each file holds the pid, command and start time of its
latest command, so a wait can say what it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rollguard.errors import ExecutorError

logger = logging.getLogger("rollguard.executors")

RUN_DIR_ENV = "ROLLGUARD_RUN_DIR"
POLL_SECONDS = 0.05


def run_dir() -> Path:
    """The folder of lock files, created private to this user when missing."""
    configured = os.environ.get(RUN_DIR_ENV)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if configured:
        folder = Path(configured)
    elif runtime:
        folder = Path(runtime) / "rollguard"
    else:
        folder = Path(tempfile.gettempdir()) / f"rollguard-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        raise ExecutorError(f"cannot use {folder} for command locks: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise ExecutorError(
            f"{folder} (command locks) must be a folder owned by this user and writable by "
            f"no one else; set {RUN_DIR_ENV} to another folder"
        )
    return folder


def lock_path(key: str) -> Path:
    """The lock file of ``key`` (a deployment); any text maps to a safe, distinct name."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:64]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return run_dir() / f"{readable}-{digest}.lock"


@dataclass(frozen=True)
class Held:
    """A held lock: the descriptor to pass on, and how long taking it waited."""

    fd: int
    waited_seconds: float

    def record(self, pid: int, argv: list[str]) -> None:
        """Say in the file who holds it now, for the next waiter's message."""
        line = json.dumps({"pid": pid, "argv": argv, "started_at": time.time()}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, line, 0)


@contextlib.asynccontextmanager
async def held(key: str, *, deadline: float) -> AsyncIterator[Held]:
    """Hold ``key``'s lock; wait until the loop's time ``deadline`` for it, else ExecutorError."""
    path = lock_path(key)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        waited = await _acquire(fd, key, path, deadline)
        try:
            yield Held(fd, waited)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def _acquire(fd: int, key: str, path: Path, deadline: float) -> float:
    loop = asyncio.get_running_loop()
    began = loop.time()
    warned = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            if warned:
                logger.warning("%s: the previous command ended; going on", key)
            return loop.time() - began
        holder = _holder(path)
        if loop.time() >= deadline:
            raise ExecutorError(
                f"a previous command for {key!r} is still running ({holder}); "
                "not starting another beside it"
            )
        if not warned:
            logger.warning("%s: waiting for a previous command to end (%s)", key, holder)
            warned = True
        await asyncio.sleep(POLL_SECONDS)


def _holder(path: Path) -> str:
    try:
        found = json.loads(path.read_text())
        return f"pid {int(found['pid'])}: {' '.join(map(str, found['argv']))[:200]}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"lock {path}"
