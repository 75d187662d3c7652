"""A synthetic exporter for a fleet: stable and canary series of many deployments at once.

No pod has to run for a Prometheus to hold what N deployments would export: each
scrape of ``/metrics`` answers ``http_requests_total`` (codes 200 and 500) and the
``http_request_duration_seconds`` histogram for every (namespace, deployment,
version), as counters growing at fixed rates since the exporter started. A
deployment's version is healthy or bad by its error share and its share of slow
requests, so what rollguard should decide is known. Label values are escaped as
the text format requires, so hostile names reach Prometheus as they are.

Runs in a thread (tests) or as its own process (benchmarks)::

    python tests/servers/fleet.py --deployments 1000 --bad-every 10 --port 9300
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Upper bounds of the latency histogram, in seconds (+Inf added).
BOUNDS = (0.1, 0.25, 0.5, 1.0)
FAST_SECONDS = 0.05
SLOW_SECONDS = 0.4


@dataclass(frozen=True)
class Version:
    """One version's traffic: requests a second, the share that fails, the share that is slow."""

    requests_per_second: float = 20.0
    error_share: float = 0.0
    slow_share: float = 0.0


@dataclass(frozen=True)
class Member:
    """A deployment of the fleet, with its stable and canary traffic."""

    namespace: str
    deployment: str
    stable: Version = Version()
    canary: Version = Version()


def _escape(value: str) -> str:
    """A label value in the text format: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(member: Member) -> list[tuple[str, float]]:
    """Each series of one member as (its line before the value, its growth a second)."""
    out: list[tuple[str, float]] = []
    for name, traffic in (("stable", member.stable), ("canary", member.canary)):
        labels = (
            f'namespace="{_escape(member.namespace)}",'
            f'deployment="{_escape(member.deployment)}",version="{name}"'
        )
        rate = traffic.requests_per_second
        errors = rate * traffic.error_share
        slow = rate * traffic.slow_share
        out.append((f'http_requests_total{{{labels},code="200"}}', rate - errors))
        out.append((f'http_requests_total{{{labels},code="500"}}', errors))
        for bound in BOUNDS:
            within = rate - slow if bound < SLOW_SECONDS else rate
            out.append((f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}}', within))
        out.append((f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}}', rate))
        mean = (rate - slow) * FAST_SECONDS + slow * SLOW_SECONDS
        out.append((f"http_request_duration_seconds_sum{{{labels}}}", mean))
        out.append((f"http_request_duration_seconds_count{{{labels}}}", rate))
    return out


class FleetExporter:
    """Serves the fleet's counters, grown since ``start`` at each series' rate."""

    def __init__(self, members: Sequence[Member], *, port: int = 0) -> None:
        self.members = list(members)
        self.series = [line for member in self.members for line in _series(member)]
        self.started = time.time()
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the scrape timed out on a busy machine; the next one counts

            def log_message(self, format: str, *args: object) -> None:
                return

        # port 0: the kernel picks a free one while binding
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def render(self) -> str:
        """The text format, every counter at its value now."""
        self.scrapes += 1
        elapsed = time.time() - self.started
        head = (
            "# TYPE http_requests_total counter\n# TYPE http_request_duration_seconds histogram\n"
        )
        return head + "".join(f"{line} {rate * elapsed:.6f}\n" for line, rate in self.series)

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def running_fleet(members: Sequence[Member]) -> Iterator[FleetExporter]:
    """Serve ``members`` on a free loopback port until the block ends."""
    exporter = FleetExporter(members)
    thread = threading.Thread(target=exporter.serve_forever, daemon=True)
    thread.start()
    try:
        yield exporter
    finally:
        exporter.stop()
        thread.join(timeout=5)


BAD_CANARY = Version(error_share=0.2, slow_share=0.5)


def fleet(count: int, *, bad_every: int = 0, namespaces: int = 1) -> list[Member]:
    """``count`` deployments ``d00000``... over ``namespaces`` namespaces; every
    ``bad_every``-th canary fails a fifth of its requests and is slow."""
    return [
        Member(
            f"ns{n % namespaces}",
            f"d{n:05}",
            canary=BAD_CANARY if bad_every and n % bad_every == 0 else Version(),
        )
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--bad-every", type=int, default=10)
    parser.add_argument("--namespaces", type=int, default=1)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    members = fleet(args.deployments, bad_every=args.bad_every, namespaces=args.namespaces)
    FleetExporter(members, port=args.port).serve_forever()


if __name__ == "__main__":
    main()
