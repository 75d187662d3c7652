"""An open-loop async load generator: users at a fixed rate, whatever the server does.

Requests leave on a fixed schedule (request ``i`` at ``start + i / rate``)
rather than after the previous answer, so a slow canary does not slow the
load down and hide its own damage (the "coordinated omission" trap). Every
request's send time, status and serving upstream is kept, so the demo can say
what error rate users saw in any time range (before, during, after a fault).
A failed connection counts as an error users saw (status 0).

The generator is bounded twice, by a request count and by a duration, and
stops by itself at whichever comes first (or at :meth:`LoadGenerator.stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rollguard.demo.http1 import Http1Error, Http1Pool

UPSTREAM_HEADER = "x-rollguard-upstream"


@dataclass(frozen=True)
class Sample:
    """One request as a user saw it."""

    sent_at: float  # seconds since the epoch
    status: int  # 0 when no HTTP answer came back
    upstream: str | None  # "stable" or "canary", from the router's header
    latency_ms: float = 0.0  # until the answer (or the failure) came back


def is_error(status: int) -> bool:
    """What users count as a failure: a 5xx answer or none at all."""
    return status == 0 or status >= 500


@dataclass(frozen=True)
class Interval:
    """Status counts of the requests sent during ``[start, end)``."""

    start: float
    end: float
    statuses: dict[int, int]

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if is_error(status))


@dataclass
class LoadReport:
    """What the generator sent and what came back."""

    target_rate: float
    started_at: float = 0.0
    finished_at: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    skipped: int = 0  # requests not sent because too many were already in flight

    def between(self, since: float | None = None, until: float | None = None) -> list[Sample]:
        """Samples sent in ``[since, until)``; an open bound is no bound."""
        return [
            sample
            for sample in self.samples
            if (since is None or sample.sent_at >= since)
            and (until is None or sample.sent_at < until)
        ]

    def error_rate_percent(
        self, since: float | None = None, until: float | None = None
    ) -> float | None:
        """Errors users saw among requests sent in ``[since, until)``; None without requests."""
        return error_rate_percent(self.between(since, until))

    def latency_p95_ms(
        self, since: float | None = None, until: float | None = None
    ) -> float | None:
        """The 95th percentile of answered requests' latency in ``[since, until)``."""
        return percentile_ms(self.between(since, until), 0.95)

    def intervals(self, width_seconds: float = 1.0) -> list[Interval]:
        """Status counts per interval of ``width_seconds`` since the start."""
        buckets: dict[int, Counter[int]] = {}
        for sample in self.samples:
            index = int((sample.sent_at - self.started_at) // width_seconds)
            buckets.setdefault(index, Counter())[sample.status] += 1
        return [
            Interval(
                start=self.started_at + index * width_seconds,
                end=self.started_at + (index + 1) * width_seconds,
                statuses=dict(buckets[index]),
            )
            for index in sorted(buckets)
        ]


def error_rate_percent(samples: Iterable[Sample]) -> float | None:
    """Percentage of ``samples`` that failed; None when there are none."""
    total = errors = 0
    for sample in samples:
        total += 1
        errors += is_error(sample.status)
    return None if total == 0 else 100.0 * errors / total


def percentile_ms(samples: Iterable[Sample], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of answered samples' latency; None without any."""
    latencies = sorted(sample.latency_ms for sample in samples if sample.status)
    if not latencies:
        return None
    rank = max(1, math.ceil(q * len(latencies)))
    return latencies[rank - 1]


class LoadGenerator:
    """Sends ``rate_per_second`` requests a second to ``url`` until a bound is reached."""

    def __init__(
        self,
        url: str,
        *,
        rate_per_second: float = 50.0,
        max_requests: int = 10_000,
        max_seconds: float = 120.0,
        max_in_flight: int = 200,
        timeout_seconds: float = 10.0,
        client: Http1Pool | None = None,
    ) -> None:
        if rate_per_second <= 0 or max_requests <= 0 or max_seconds <= 0:
            raise ValueError("rate_per_second, max_requests and max_seconds must be positive")
        self.url = url
        self.rate_per_second = rate_per_second
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.max_in_flight = max_in_flight
        self.report = LoadReport(target_rate=rate_per_second)
        self._client = client
        self._timeout = timeout_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Send nothing more; :meth:`run` returns once requests in flight are answered."""
        self._stopping.set()

    async def run(self) -> LoadReport:
        """Generate the load; returns the report (also readable live as ``self.report``)."""
        client = self._client or Http1Pool(
            max_connections=self.max_in_flight, timeout_seconds=self._timeout
        )
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Task[None]] = set()
        start = loop.time()
        self.report.started_at = time.time()
        try:
            for index in range(self.max_requests):
                due = start + index / self.rate_per_second
                if due - start >= self.max_seconds:
                    break
                if due > loop.time():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), due - loop.time())
                if self._stopping.is_set():
                    break
                if len(in_flight) >= self.max_in_flight:
                    self.report.skipped += 1
                    continue
                task = asyncio.create_task(self._one(client))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight)
        finally:
            for task in in_flight:
                task.cancel()
            if self._client is None:
                await client.aclose()
            self.report.finished_at = time.time()
        return self.report

    async def _one(self, client: Http1Pool) -> None:
        sent_at, started = time.time(), time.perf_counter()
        try:
            answer = await client.request("GET", self.url)
        except Http1Error:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.report.samples.append(Sample(sent_at, 0, None, elapsed_ms))
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        upstream = answer.header(UPSTREAM_HEADER)
        self.report.samples.append(Sample(sent_at, answer.status, upstream, elapsed_ms))


def main(argv: list[str] | None = None) -> None:
    """``python -m rollguard.demo.loadgen``: users at a fixed rate, until the bound or Ctrl-C.

    Prints one summary line at the end: requests sent, and the error rate users saw.
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="rollguard's open-loop load generator")
    parser.add_argument("--url", required=True, help="where users send GET requests")
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    options = parser.parse_args(argv)
    generator = LoadGenerator(
        options.url,
        rate_per_second=options.rate,
        max_seconds=options.seconds,
        max_requests=math.ceil(options.rate * options.seconds) + 1,
    )

    async def run() -> LoadReport:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, generator.stop)
        return await generator.run()

    report = asyncio.run(run())
    rate = report.error_rate_percent()
    shown = "no answers" if rate is None else f"{rate:.2f}% errors"
    print(f"sent {len(report.samples)} requests to {options.url}: {shown}")


if __name__ == "__main__":
    main()
