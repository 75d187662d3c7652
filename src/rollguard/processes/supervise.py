"""The supervisor each user command runs under, so the command dies with rollguard.

``python -I -S supervise.py PARENT_PID STATUS_FD -- ARGV...``, started by
:mod:`rollguard.processes.bounded` as the leader of a new session. It asks
the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``; a poll of
the parent's pid where ``prctl`` does not exist), starts ARGV in its own
process group and waits for it, and exits with the command's status. When the
parent dies first (a SIGKILLed ``serve``) it SIGKILLs the whole group: the
command and everything it started that stayed in the group. The command itself
gets ``PR_SET_PDEATHSIG`` too, so SIGKILLing this supervisor alone does not
leave it running.

Stdlib only, run in isolated mode, and started with ``fork`` and ``exec``
rather than ``subprocess`` (whose imports cost more than the rest of this
start): it runs before every command. Descriptors it inherits are passed on,
the deployment's run lock among them, so that the lock stays held while
anything of the command survives (see ``bounded``). A command that cannot be
started is reported on STATUS_FD as the exception's errno and message (the
parent raises it as such), then exit 127.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.5


def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    # The symbols already loaded into this process, libc's among them: no library
    # lookup (``ctypes.util.find_library`` runs ``ldconfig`` and imports ``shutil``,
    # ``tempfile`` and ``re``, tens of milliseconds added to every command's start).
    try:
        call: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except AttributeError:
        return None
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
    parent, status_fd = int(args[0]), int(args[1])
    command = args[3:]
    signal.signal(signal.SIGTERM, _kill_group)
    prctl = _prctl()
    if prctl is None or prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        _watch_parent(parent)
    if os.getppid() != parent:  # the parent died before the request took effect
        _kill_group()
    os.set_inheritable(status_fd, False)  # the command's exec closes it: EOF says it started
    child = os.fork()
    if child == 0:
        _become(command, status_fd, prctl)
    os.close(status_fd)
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if code < 0:  # killed by a signal: end the same way, so the parent sees the signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _become(command: list[str], status_fd: int, prctl: Callable[[int, int], int] | None) -> None:
    """In the forked child: exec the command, or report why not on STATUS_FD and exit 127.

    It never returns (``typing.NoReturn`` would cost an import of ``typing``).

    The signals Python ignores are restored first, as ``subprocess`` does, so
    the command sees SIGPIPE. The child only execs, so a polling thread in the
    parent (where ``prctl`` is missing or refused) cannot leave it stuck on a lock.
    """
    try:
        for number in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with this supervisor too
        # The policy's own argv (S606): a shell, when wanted, is in it already.
        os.execvp(command[0], command)  # noqa: S606
    except OSError as exc:
        os.write(status_fd, f"{exc.errno or 0}\n{exc.strerror or exc}".encode())
    finally:
        os._exit(127)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
