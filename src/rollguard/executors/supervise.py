"""The supervisor each user command runs under, so the command dies with rollguard.

``python -I -S supervise.py PARENT_PID STATUS_FD LOCK_FD -- ARGV...``, started by
:mod:`rollguard.executors.process` as the leader of a new session. It asks
the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``; a poll of
the parent's pid where ``prctl`` does not exist), starts ARGV in its own
process group and waits for it, and exits with the command's status. When the
parent dies first (a SIGKILLed ``serve``) it SIGKILLs the whole group: the
command and everything it started that stayed in the group. The command itself
gets ``PR_SET_PDEATHSIG`` too, so SIGKILLing this supervisor alone does not
leave it running.

Stdlib only, run in isolated mode: starting it costs no import of rollguard.
LOCK_FD (or -1) is the deployment's run lock, passed on to the command so
that the lock stays held while anything of it survives (see ``process``).
A command that cannot be started is reported on STATUS_FD as the exception's
name and message (the parent raises it as such), then exit 127.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.5


def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    call: Callable[[int, int], int] = libc.prctl
    return call


def _kill_group(*_: object) -> None:
    """SIGKILL this process group (the command, what it started, and this supervisor)."""
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _watch_parent(parent: int) -> None:
    """Fallback where ``prctl`` is missing: notice the parent's death by polling."""

    def poll() -> None:
        while not threading.Event().wait(PARENT_POLL_SECONDS):
            if os.getppid() != parent:
                _kill_group()

    threading.Thread(target=poll, daemon=True).start()


def main(args: list[str]) -> int:
    parent, status_fd, lock_fd = (int(arg) for arg in args[:3])
    command = args[4:]
    signal.signal(signal.SIGTERM, _kill_group)
    prctl = _prctl()
    if prctl is None or prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        _watch_parent(parent)
    if os.getppid() != parent:  # the parent died before the request took effect
        _kill_group()

    def die_with_supervisor() -> None:  # runs in the forked child, before exec
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    passed = (lock_fd,) if lock_fd >= 0 else ()
    try:
        # The policy's own argv (S603), no shell added here. preexec_fn is safe (PLW1509):
        # this process has one thread whenever prctl exists (the polling thread runs
        # only without it, and then the function does nothing).
        child = subprocess.Popen(  # noqa: S603
            command,
            preexec_fn=die_with_supervisor,  # noqa: PLW1509
            pass_fds=passed,
        )
    except OSError as exc:
        os.write(status_fd, f"{type(exc).__name__}\n{exc}".encode())
        return 127
    finally:
        os.close(status_fd)
    code = child.wait()
    if code < 0:  # killed by a signal: end the same way, so the parent sees the signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
