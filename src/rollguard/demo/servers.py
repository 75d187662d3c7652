"""Run the demo's HTTP apps for real: in a thread (tests) or in a child process (the demo).

Readiness is signalled, never guessed: a thread server sets an event when
uvicorn has bound its socket; a child process prints one ``READY <url>`` line
on stdout, which the parent reads with a deadline. Ports are chosen by the
kernel (port 0) and read back, so two servers never race for one port.

A child started by the demo also exits when its stdin pipe closes, so a parent
killed without a chance to clean up (SIGKILL) still leaves no server behind;
started by hand it runs until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from rollguard.errors import RollguardError

HOST = "127.0.0.1"
READY_PREFIX = "READY "


class DemoError(RollguardError):
    """A demo server could not be started or answered nonsense."""


class _SignallingServer(uvicorn.Server):
    """A uvicorn server that says when its startup is over, whether it worked or not."""

    def __init__(self, config: uvicorn.Config, *, announce: bool = False) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.announce = announce

    async def startup(self, sockets: list[Any] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()
        if self.announce and self.started:
            print(f"{READY_PREFIX}{self.url}", flush=True)

    @property
    def url(self) -> str:
        port = self.servers[0].sockets[0].getsockname()[1]
        return f"http://{HOST}:{port}"


def _config(app: Any, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="h11",
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )


@dataclass
class ThreadServer:
    """An app served by uvicorn on a thread of this process."""

    url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, *, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)


def serve_in_thread(app: Any, *, port: int = 0, timeout: float = 20.0) -> ThreadServer:
    """Serve ``app`` on loopback from a daemon thread; return once it accepts connections."""
    server = _SignallingServer(_config(app, port))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    if not server.ready.wait(timeout) or not server.started:
        server.should_exit = True
        thread.join(5.0)
        raise DemoError(f"the server on {HOST}:{port} did not start within {timeout}s")
    return ThreadServer(server.url, server, thread)


@dataclass
class ProcessServer:
    """A demo server running as a child process (its own RSS, CPU and GIL)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self, *, timeout: float = 5.0) -> None:
        """SIGTERM, wait, then SIGKILL if it has not gone; idempotent."""
        stop_all([self], timeout=timeout)


def stop_all(servers: list[ProcessServer], *, timeout: float = 5.0) -> None:
    """Stop child servers together: SIGTERM to all, then wait, then SIGKILL stragglers."""
    running = [server for server in servers if not server._stopped]
    for server in running:
        server._stopped = True
        if server.process.poll() is None:
            server.process.terminate()
    deadline = time.monotonic() + timeout
    for server in running:
        try:
            server.process.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        for stream in (server.process.stdin, server.process.stdout):
            if stream is not None:
                stream.close()
        server.log.unlink(missing_ok=True)


def _package_root() -> str:
    """The directory holding the ``rollguard`` package, for the child's PYTHONPATH."""
    return str(Path(__file__).resolve().parents[2])


class ProcessGroup:
    """Child servers started for one run, stopped together; safe to stop from any thread.

    Servers start in worker threads, which cancelling the run (Ctrl-C) cannot
    interrupt. Each child joins the group the moment it is spawned, before its
    READY line, so :meth:`stop` ends it even half-started; after :meth:`stop` the
    group refuses new children, and a thread still starting one gives up.
    """

    def __init__(self) -> None:
        self.servers: list[ProcessServer] = []
        self._lock = threading.Lock()
        self._stopping = False

    def launch(self, start: Callable[[], ProcessServer]) -> ProcessServer:
        """Run ``start`` (which spawns one child) and keep the child, unless stopping."""
        # Under the lock: a child is either refused or in the list stop() ends.
        with self._lock:
            if self._stopping:
                raise DemoError("the demo was stopped while its servers were starting")
            server = start()
            self.servers.append(server)
            return server

    def stop(self) -> None:
        """Stop every child started so far; idempotent."""
        with self._lock:
            self._stopping = True
            running = list(self.servers)
        stop_all(running)


def spawn(
    module: str, args: list[str], *, timeout: float = 30.0, group: ProcessGroup | None = None
) -> ProcessServer:
    """Start ``python -m module args --port 0`` and wait for its READY line.

    With ``group`` the child is in it from the moment it exists, so stopping the
    group from another thread ends it even while this still waits for READY.
    """
    handle = _popen(module, args) if group is None else group.launch(lambda: _popen(module, args))
    try:
        handle.url = _read_ready_line(handle.process, timeout=timeout)
    except (DemoError, OSError, ValueError) as exc:  # OSError, ValueError: stdout closed by stop
        tail = _tail(handle.log)
        handle.stop()
        raise DemoError(f"{module} did not start: {exc}; {tail}") from exc
    except BaseException:  # Ctrl-C in this thread: leave nothing running
        handle.stop()
        raise
    return handle


def _popen(module: str, args: list[str]) -> ProcessServer:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
    fd, log_name = tempfile.mkstemp(prefix="rollguard-demo-", suffix=".log")
    with os.fdopen(fd, "wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 runs this interpreter on our own module
            [sys.executable, "-m", module, *args, "--port", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    return ProcessServer("", process, Path(log_name))


def _read_ready_line(process: subprocess.Popen[bytes], *, timeout: float) -> str:
    assert process.stdout is not None  # noqa: S101 Popen was given stdout=PIPE
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DemoError(f"no READY line within {timeout}s")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise DemoError(f"it exited with code {process.wait()}")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
    if not line.startswith(READY_PREFIX):
        raise DemoError(f"unexpected first line {line!r}")
    return line.removeprefix(READY_PREFIX)


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return "no log"
    return "log: " + " | ".join(text) if text else "empty log"


def run_child(app: Any, *, port: int) -> None:
    """Body of a child's ``main``: serve, announce READY, exit on SIGTERM or stdin EOF."""
    server = _SignallingServer(_config(app, port), announce=True)

    def exit_when_parent_goes() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
        server.should_exit = True

    # Only a parent's pipe says "I am gone" by closing: started by hand (a terminal, or
    # /dev/null for `cmd &` in a script) the part runs until SIGTERM or Ctrl-C.
    if _stdin_is_a_pipe():
        threading.Thread(target=exit_when_parent_goes, name="stdin-watch", daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group
        server.run()
    if not server.started:
        sys.exit(1)


def _stdin_is_a_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):  # no stdin at all
        return False
