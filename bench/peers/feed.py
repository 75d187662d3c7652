"""The synthetic exporter: each run's stable and canary series, played from bench/detection.

A run's numbers come from ``bench.detection.simulate.scrapes`` (the generator of
the detection benchmark), one draw per 5 s *scenario* second, so the three tools
watching a run read exactly the same counts. Time is compressed by the common
factor ``scale``: one 5 s draw lasts ``5 / scale`` wall seconds, so every scaled
interval holds as many requests as the unscaled interval would.

Before a run's release starts its counters stand at zero (exposed, so every
query finds the series); ``k`` draws after the start they include the first
``k`` draws. Series are
labelled ``run`` and ``version`` and named as rollguard's defaults expect
(``http_requests_total{code}``, ``http_request_duration_seconds``,
``process_resident_memory_bytes``), so rollguard, Argo Rollouts' and
Flagger's queries read the same samples.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import numpy as np
import prometheus_client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bench.detection.simulate import BOUNDS, SCRAPE_SECONDS, Scenario, scrapes

VERSIONS = ("stable", "canary")
MB = 1024 * 1024


@dataclass
class Series:
    """One version's cumulative counts after each draw (index 0: before the first)."""

    requests: np.ndarray
    errors: np.ndarray
    buckets: np.ndarray  # (draws + 1, len(BOUNDS)) cumulative per bound
    duration_sum: np.ndarray
    memory_mb: np.ndarray  # the gauge during each draw


def _cumulative(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, *counts.shape[1:])), np.cumsum(counts, axis=0)])


def play(scenario: Scenario, seed: int) -> dict[str, Series]:
    """Draw every interval of ``scenario`` for one run (``runs=1`` of the generator)."""
    rng = np.random.default_rng(seed)
    drawn = list(scrapes(scenario, 1, rng))
    found: dict[str, Series] = {}
    for version in VERSIONS:
        requests = np.array([getattr(s, f"{version}_requests")[0] for s in drawn])
        errors = np.array([getattr(s, f"{version}_errors")[0] for s in drawn])
        buckets = np.array([getattr(s, f"{version}_buckets")[0] for s in drawn])
        # The histogram's _sum: each request at its bucket's upper bound (the +Inf cell at
        # the largest bound); nothing reads it but a user's average-latency query.
        cells = np.diff(np.concatenate([np.zeros((len(drawn), 1)), buckets], axis=1), axis=1)
        seconds = cells @ BOUNDS + (requests - buckets[:, -1]) * BOUNDS[-1]
        memory = (
            np.array([s.canary_memory_mb[0] for s in drawn])
            if version == "canary"
            else np.full(len(drawn), 200.0)
        )
        found[version] = Series(
            _cumulative(requests),
            _cumulative(errors),
            _cumulative(buckets),
            _cumulative(seconds),
            memory,
        )
    return found


@dataclass
class Run:
    """One run's series; ``start`` (monotonic seconds) is set when its release starts."""

    name: str
    series: dict[str, Series]
    scale: float
    start: float | None = None

    def draws(self, now: float) -> int:
        """Draws completed at ``now`` (0 before the start; capped at the last)."""
        if self.start is None:
            return 0
        done = math.floor((now - self.start) * self.scale / SCRAPE_SECONDS)
        return max(0, min(done, len(self.series["canary"].requests) - 1))

    def values(self, version: str, now: float) -> tuple[float, float, np.ndarray, float, float]:
        """(requests, errors, cumulative buckets, duration sum, memory MB) at ``now``."""
        k = self.draws(now)
        s = self.series[version]
        requests, errors = s.requests[k], s.errors[k]
        buckets, total_seconds = s.buckets[k], s.duration_sum[k]
        memory = s.memory_mb[max(k - 1, 0)]
        return float(requests), float(errors), buckets, float(total_seconds), float(memory)


class Source(Protocol):
    """What the exporter reads of a run: ``Run`` here, ``stepping.SteppedRun`` too."""

    @property
    def name(self) -> str: ...

    def values(self, version: str, now: float) -> tuple[float, float, np.ndarray, float, float]:
        """(requests, errors, cumulative buckets, duration sum, memory MB) at ``now``."""
        ...


class Feed(Collector):
    """Every registered run's series, as one exposition (thread-safe)."""

    def __init__(self) -> None:
        self._runs: dict[str, Source] = {}
        self._lock = threading.Lock()

    def add(self, run: Source) -> None:
        with self._lock:
            self._runs[run.name] = run

    def remove(self, name: str) -> None:
        with self._lock:
            self._runs.pop(name, None)

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        with self._lock:
            runs = list(self._runs.values())
        requests = CounterMetricFamily(
            "http_requests_total", "Requests by status code.", labels=["run", "version", "code"]
        )
        duration = HistogramMetricFamily(
            "http_request_duration_seconds", "Request latency.", labels=["run", "version"]
        )
        memory = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory.", labels=["run", "version"]
        )
        for run in runs:
            for version in VERSIONS:
                total, errors, buckets, seconds, mb = run.values(version, now)
                requests.add_metric([run.name, version, "200"], total - errors)
                requests.add_metric([run.name, version, "500"], errors)
                cumulative = [(f"{b:g}", float(c)) for b, c in zip(BOUNDS, buckets, strict=True)]
                duration.add_metric(
                    [run.name, version], [*cumulative, ("+Inf", total)], sum_value=seconds
                )
                memory.add_metric([run.name, version], mb * MB)
        yield from (requests, duration, memory)


class Exporter:
    """A real HTTP server on loopback serving ``feed`` at ``/metrics``."""

    def __init__(self, feed: Feed) -> None:
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        registry.register(feed)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = prometheus_client.generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # Prometheus may give up on a slow scrape (its timeout); it tries again.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.address = f"127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Exporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
