"""Which ``Host`` headers ``serve`` answers: a defence against DNS rebinding.

A web page a user opens can make their browser send requests to
``127.0.0.1:8080`` under a name the page's author controls (DNS rebinding),
and read the answers: the status of every deployment and the audit trail.
The browser still sends that name in ``Host``, so ``serve`` answers only the
names it is meant to be reached by: the loopback names when it listens on
loopback, the listen address itself (plus loopback) when it listens on one
address, and any name when it listens on every address (``0.0.0.0``), unless
``--allowed-host`` lists them. A request without ``Host`` (HTTP/1.0) is
answered: no browser sends one.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from rollguard.server.http_errors import send_error

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_EVERY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (the names, compared)


def allowed_hosts(listen_host: str, given: list[str]) -> frozenset[str] | None:
    """The ``Host`` names to answer for ``serve --listen HOST:PORT``; None answers any."""
    if given:
        names = {_name(host) for host in given}
        return None if "*" in names else frozenset(names)
    host = _name(listen_host)
    if host in _EVERY_ADDRESS:
        return None
    return LOOPBACK_NAMES | {host}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    name = _name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _name(host: str) -> str:
    """``Host`` header or address → the bare lower-case name: no port, brackets or final dot."""
    value = host.strip().lower()
    if value.startswith("["):  # [::1]:8080
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:  # name:port (an IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class AllowedHosts:
    """An ASGI middleware answering 400 (JSON) to a request for a name not allowed."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hosts is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = dict(scope.get("headers", [])).get(b"host")
        if presented is None or _name(presented.decode("latin-1")) in self.hosts:
            await self.app(scope, receive, send)
            return
        shown = presented.decode("latin-1")[:100]
        detail = (
            f"Host {shown!r} is not a name this server answers for "
            f"(allowed: {', '.join(sorted(self.hosts))}; serve --allowed-host adds names)"
        )
        await send_error(send, 400, detail)
