"""The local router: a weighted reverse proxy in front of a stable and a canary upstream.

Traffic is split by smooth weighted round robin (nginx's algorithm), so the
split is exact and deterministic: with the canary at 20%, every 100
consecutive requests send exactly 20 to the canary, interleaved rather than
in a burst. The admin API under ``/-/router`` is what the ``local`` executor
drives; the router's own counters (per upstream and status code) tell the
demo what users really saw.

Run one with ``python -m rollguard.demo.router --stable URL --canary URL``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rollguard.demo import servers
from rollguard.demo.http1 import Http1Error, Http1Pool

UPSTREAMS = ("stable", "canary")
UPSTREAM_HEADER = "x-rollguard-upstream"
# Hop-by-hop headers (RFC 9110 7.6.1) and those httpx recomputes.
_DROP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "host", "content-length"}
)  # fmt: skip


@dataclass
class RouterState:
    """Weights, canary state and counters of one router."""

    stable_url: str
    canary_url: str
    canary_percent: int = 20
    canary_state: str = "serving"  # serving, drained, isolated, retired
    stable_scale: float = 1.0
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    _current: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UPSTREAMS, 0))

    def pick(self) -> str:
        """The next upstream, by smooth weighted round robin."""
        weights = {"stable": 100 - self.canary_percent, "canary": self.canary_percent}
        for name in UPSTREAMS:
            self._current[name] += weights[name]
        chosen = max(UPSTREAMS, key=lambda name: self._current[name])
        self._current[chosen] -= 100
        return chosen

    def set_weight(self, percent: int, *, canary_state: str | None = None) -> None:
        """Move the split; the round robin restarts so the new split holds at once."""
        self.canary_percent = percent
        self.canary_state = canary_state or ("serving" if percent else "drained")
        self._current = dict.fromkeys(UPSTREAMS, 0)

    def snapshot(self) -> dict[str, Any]:
        """The admin API's view (JSON-ready)."""
        by_upstream: dict[str, dict[str, int]] = {name: {} for name in UPSTREAMS}
        for (name, code), count in sorted(self.requests.items()):
            by_upstream[name][str(code)] = count
        return {
            "stable": self.stable_url,
            "canary": self.canary_url,
            "canary_percent": self.canary_percent,
            "stable_percent": 100 - self.canary_percent,
            "canary_state": self.canary_state,
            "stable_scale": self.stable_scale,
            "requests": by_upstream,
        }


def create_app(
    stable_url: str,
    canary_url: str,
    *,
    canary_percent: int = 20,
    client: Http1Pool | None = None,
) -> Starlette:
    """The router app; ``client`` (owned by the caller) reaches the upstreams.

    The upstream client is :class:`~rollguard.demo.http1.Http1Pool`, not httpx: see
    that module for the CPU it saves on every proxied request.
    """
    state = RouterState(stable_url.rstrip("/"), canary_url.rstrip("/"))
    state.set_weight(_percent(canary_percent))
    clients: dict[str, Http1Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        own = client is None
        clients["upstream"] = client or Http1Pool(max_connections=200, timeout_seconds=30.0)
        try:
            yield
        finally:
            if own:
                await clients["upstream"].aclose()

    async def proxy(request: Request) -> Response:
        upstream = state.pick()
        base = state.canary_url if upstream == "canary" else state.stable_url
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_HEADERS]
        try:
            answer = await clients["upstream"].request(
                request.method, url, headers=headers, body=await request.body()
            )
        except Http1Error as exc:
            state.requests[upstream, 502] += 1
            return Response(
                f"bad gateway: {upstream} upstream {base}: {exc}",
                status_code=502,
                headers={UPSTREAM_HEADER: upstream},
            )
        state.requests[upstream, answer.status] += 1
        out_headers = {k: v for k, v in answer.headers if k.lower() not in _DROP_HEADERS}
        out_headers[UPSTREAM_HEADER] = upstream
        return Response(answer.body, status_code=answer.status, headers=out_headers)

    async def show(_: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def weight(request: Request) -> Response:
        try:
            body = await request.json()
            percent = _percent(body["canary_percent"])
        except (ValueError, KeyError, TypeError) as exc:
            return _bad_request(f'expected {{"canary_percent": 0..100}}: {exc}')
        return _changed(state, lambda: state.set_weight(percent))

    async def isolate(_: Request) -> Response:
        return _changed(state, lambda: state.set_weight(0, canary_state="isolated"))

    async def rollback(_: Request) -> Response:
        return _changed(state, lambda: state.set_weight(0, canary_state="retired"))

    async def scale(request: Request) -> Response:
        try:
            factor = float((await request.json())["factor"])
        except (ValueError, KeyError, TypeError) as exc:
            return _bad_request(f'expected {{"factor": number > 0}}: {exc}')
        if not factor > 0:
            return _bad_request(f"factor must be > 0, got {factor}")
        return _changed(state, lambda: setattr(state, "stable_scale", factor))

    routes = [
        Route("/-/router", show, methods=["GET"]),
        Route("/-/router/weight", weight, methods=["PUT"]),
        Route("/-/router/isolate", isolate, methods=["POST"]),
        Route("/-/router/rollback", rollback, methods=["POST"]),
        Route("/-/router/scale", scale, methods=["POST"]),
        Route("/{path:path}", proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.router = state
    return app


def _percent(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw):
        raise ValueError(f"canary_percent must be a whole number, got {raw!r}")
    if not 0 <= raw <= 100:
        raise ValueError(f"canary_percent must be between 0 and 100, got {raw!r}")
    return int(raw)


def _bad_request(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=422)


def _changed(state: RouterState, change: Any) -> Response:
    """Apply ``change`` and answer with the state before and after (idempotent calls)."""
    before = state.snapshot()
    change()
    after = state.snapshot()
    for view in (before, after):
        view.pop("requests")
    return JSONResponse({"previous": before, "current": after})


def start(
    stable_url: str,
    canary_url: str,
    *,
    canary_percent: int = 20,
    group: servers.ProcessGroup | None = None,
) -> servers.ProcessServer:
    """Run the router as a child process and return once it accepts connections.

    With ``group`` the child is stopped with the group, even while it starts.
    """
    args = ["--stable", stable_url, "--canary", canary_url, "--canary-percent", str(canary_percent)]
    return servers.spawn("rollguard.demo.router", args, group=group)


def main(argv: list[str] | None = None) -> None:
    """``python -m rollguard.demo.router``: route until SIGTERM."""
    parser = argparse.ArgumentParser(description="rollguard's local weighted router")
    parser.add_argument("--stable", required=True, help="stable upstream URL")
    parser.add_argument("--canary", required=True, help="canary upstream URL")
    parser.add_argument("--canary-percent", type=int, default=20)
    parser.add_argument("--port", type=int, default=8080)
    options = parser.parse_args(argv)
    app = create_app(options.stable, options.canary, canary_percent=options.canary_percent)
    servers.run_child(app, port=options.port)


if __name__ == "__main__":
    main()
