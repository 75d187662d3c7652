"""Run ``serve``'s app: bind the address first, then serve through the guarded listener.

Binding before uvicorn starts lets a taken or forbidden address be reported as
exactly that (``--listen``), and anything that stops the app while it starts
(reported in the log) is never blamed on the address.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from rollguard.errors import RollguardError, UsageError
from rollguard.security.listener import Limits, bind, make_server


class StartupError(RollguardError):
    """``serve`` stopped before it was ready (the log says why); exit 2."""


def serve_app(app: ASGIApp, *, host: str, port: int, limits: Limits, log_level: str) -> None:
    """Serve ``app`` on ``host:port`` until interrupted."""
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise UsageError(
            f"--listen {host}:{port}: cannot listen there: {exc.strerror or exc}"
        ) from None
    server = make_server(app, limits=limits, log_level=log_level)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        raise StartupError("serve stopped before it was ready; the log above says why")
