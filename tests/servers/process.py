"""Starting a server binary on a free port, and saying why it exited if it did.

``free_port()`` then the server's own bind is a race that another process on
the machine can win; the server then exits with "address already in use".
:func:`start_on_free_port` tries another port in that case, and any other exit
is reported with the tail of the server's log instead of a bare exit code.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from support import free_port

#: How many free ports to try before giving up on a server whose port was taken.
PORT_ATTEMPTS = 3


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class ServerExited(RuntimeError):
    """A server process ended before it was ready; the message carries its log's tail."""


class PortTaken(ServerExited):
    """The port chosen by ``free_port()`` was bound by someone else first."""


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after ten seconds; nothing if it already exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def exited(name: str, code: int, log: Path) -> ServerExited:
    """The error for ``name`` exiting with ``code``: :class:`PortTaken` when its log says so."""
    try:
        tail = log.read_text(errors="replace")[-1000:].strip()
    except OSError:
        tail = ""
    kind = PortTaken if "address already in use" in tail.lower() else ServerExited
    return kind(f"{name} exited with code {code}; log: {tail or 'empty'}")


def start_on_free_port(start: Callable[[int], S], wait_ready: Callable[[S], object]) -> S:
    """``start(port)`` then ``wait_ready(server)``; stop it on any failure, retry if the port was
    taken. ``wait_ready`` raises :class:`PortTaken` (see :func:`exited`) for the retry."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server = start(free_port())
        try:
            wait_ready(server)
        except PortTaken:
            server.stop()
            if attempt == PORT_ATTEMPTS:
                raise
        except BaseException:
            server.stop()
            raise
        else:
            return server
    raise AssertionError("unreachable: the last attempt returns or raises")
