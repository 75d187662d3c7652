"""Replay a recorded series (docs/replay-format.md) as if it were live.

A backtest drives a simulated clock over :attr:`ReplayProvider.times` and
asks :meth:`~ReplayProvider.measure` at each tick; the rows whose time is in
``(now - window, now]`` answer. Rows are whole: a row belongs to a window
when its end time does, even if its interval began before the window.

With ``le_`` bucket columns, ``LATENCY_BUCKETS`` is the per-bucket sum over
the window and the p95/p50 come from those sums with ``histogram_quantile``,
as Prometheus would compute them. Without, latency quantiles are the
requests-weighted mean of the rows' quantiles: an approximation (quantiles do
not average), exact only when every interval has the same distribution. The
mean latency column averages exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path

from rollguard.metrics import recording_buckets, series
from rollguard.metrics.recording import Recording, Row, read_recording
from rollguard.signals import CustomSignal, Measurement, Query, Signal, Version

#: How many typical row steps may pass after a version's last row before it is stale.
STALE_AFTER_STEPS = 2.0


class ReplayProvider:
    """Answers queries from a :class:`~rollguard.metrics.recording.Recording`."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self._steps = {version: recording.step(version) for version in Version}
        # Per version, rows and their times in order: a window is two bisections, so a
        # backtest's tick costs the rows in its window, not the whole file.
        self._rows = {v: [r for r in recording.rows if r.version == v] for v in Version}
        self._times = {v: [r.time for r in rows] for v, rows in self._rows.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayProvider:
        """Read and validate ``path``; raises :class:`~rollguard.errors.InputError`."""
        return cls(read_recording(path))

    @property
    def rows(self) -> tuple[Row, ...]:
        """Every row, in time order."""
        return self.recording.rows

    @property
    def times(self) -> list[float]:
        """The distinct row times, ascending: the ticks of a simulated clock."""
        return sorted({row.time for row in self.recording.rows})

    @property
    def start(self) -> float:
        """The first row's time (0.0 for an empty file)."""
        return self.recording.rows[0].time if self.recording.rows else 0.0

    @property
    def end(self) -> float:
        """The last row's time (0.0 for an empty file)."""
        return self.recording.rows[-1].time if self.recording.rows else 0.0

    async def collect(self, *, now: float) -> None:
        """Nothing to refresh: the whole file is in memory."""

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query from the rows in its window."""
        return [self._measure_one(query, now) for query in queries]

    async def aclose(self) -> None:
        """Nothing to release."""

    def cannot_answer(self, query: Query) -> str:
        """Why no row of this file can ever answer ``query``, or "" when rows may."""
        signal = query.signal
        if query.promql is not None:
            return "the replay provider does not run PromQL"
        if isinstance(signal, CustomSignal):
            return "the replay provider has no custom signals"
        if _handler(signal, self.recording) is None:
            return f"the replay format has no column for {signal.value}"
        return self._missing_column(signal)

    def _measure_one(self, query: Query, now: float) -> Measurement:
        never = self.cannot_answer(query)
        if query.promql is not None or isinstance(query.signal, CustomSignal):
            return Measurement.error(query, now, never)
        handler = _handler(query.signal, self.recording)
        if never or handler is None:
            return Measurement.no_data(query, now, never)
        version = query.version.value
        start = now - query.window_seconds
        times = self._times[query.version]
        rows = self._rows[query.version][bisect_right(times, start) : bisect_right(times, now)]
        if not rows:
            return Measurement.no_data(
                query, now, f"no {version} rows with time in ({start:g}, {now:g}]"
            )
        step = self._steps[query.version]
        if step is not None and now - rows[-1].time > STALE_AFTER_STEPS * step:
            return Measurement.no_data(
                query,
                now,
                f"the last {version} row is {now - rows[-1].time:g}s old "
                f"(rows come every {step:g}s)",
            )
        return handler(query, now, rows)

    def _missing_column(self, signal: Signal) -> str:
        """Why the file cannot answer ``signal`` at all, or "" when it can."""
        source = self.recording.source
        if signal is Signal.LATENCY_BUCKETS and not self.recording.bounds:
            return f"{source} has no le_ bucket columns"
        column = _COLUMN.get(signal)
        if self.recording.bounds and signal in _FROM_BUCKETS:
            column = None
        if column is not None and column not in self.recording.columns:
            return f"{source} has no {column} column"
        return ""


def _handler(
    signal: Signal, recording: Recording
) -> Callable[[Query, float, Sequence[Row]], Measurement] | None:
    """How rows answer ``signal``: from the bucket columns when the file has them."""
    handler = _HANDLERS.get(signal)
    if recording.bounds:
        handler = _FROM_BUCKETS.get(signal, handler)
    return handler


def _sum(rows: Sequence[Row], pick: Callable[[Row], float | None]) -> float:
    return math.fsum(value for row in rows if (value := pick(row)) is not None)


def _error_rate(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
    requests = _sum(rows, lambda row: row.requests)
    if not requests > 0:
        return Measurement.no_data(query, now, "no requests in the window")
    errors = _sum(rows, lambda row: row.errors)
    return Measurement.ok(query, now, errors / requests * 100.0, requests=requests)


def _requests(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
    requests = _sum(rows, lambda row: row.requests)
    return Measurement.ok(query, now, requests, requests=requests)


def _errors(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
    requests = _sum(rows, lambda row: row.requests)
    return Measurement.ok(query, now, _sum(rows, lambda row: row.errors), requests=requests)


def _weighted(column: str) -> Callable[[Query, float, Sequence[Row]], Measurement]:
    """The requests-weighted mean of a per-interval latency column."""

    def handler(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
        pairs = [
            (value, row.requests)
            for row in rows
            if (value := getattr(row, column)) is not None and row.requests > 0
        ]
        weight = math.fsum(requests for _, requests in pairs)
        if not weight > 0:
            return Measurement.no_data(query, now, f"no {column} values with requests")
        value = math.fsum(value * requests for value, requests in pairs) / weight
        return Measurement.ok(query, now, value, requests=weight)

    return handler


def _last(column: str) -> Callable[[Query, float, Sequence[Row]], Measurement]:
    """The newest value of a gauge column in the window."""

    def handler(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
        for row in reversed(rows):
            value = getattr(row, column)
            if value is not None:
                return Measurement.ok(query, now, float(value))
        return Measurement.no_data(query, now, f"no {column} values in the window")

    return handler


def _cpu_percent(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
    """Each interval's CPU percent, weighted by how long the interval was."""
    pairs = [
        (row.cpu_percent, row.span if row.span is not None else 1.0)
        for row in rows
        if row.cpu_percent is not None
    ]
    if not pairs:
        return Measurement.no_data(query, now, "no cpu_percent values in the window")
    total = math.fsum(span for _, span in pairs)
    return Measurement.ok(query, now, math.fsum(value * span for value, span in pairs) / total)


def _unauthorized_per_minute(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
    counted = [row for row in rows if row.unauthorized is not None]
    if not counted:
        return Measurement.no_data(query, now, "no unauthorized values in the window")
    seconds = math.fsum(row.span if row.span is not None else math.nan for row in counted)
    if not seconds > 0:  # one row alone: its interval is unknown, assume the window
        seconds = query.window_seconds
    attempts = _sum(counted, lambda row: row.unauthorized)
    return Measurement.ok(query, now, attempts / seconds * 60.0)


def _latency_buckets(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
    """Each bucket's count summed over the window: still cumulative, keyed in seconds."""
    summed = recording_buckets.window_sums([row.buckets for row in rows])
    if summed is None:
        return Measurement.no_data(query, now, "no bucket counts in the window")
    observed = summed[math.inf]
    return Measurement.ok(query, now, observed, requests=observed, buckets=summed)


def _bucket_quantile(q: float) -> Callable[[Query, float, Sequence[Row]], Measurement]:
    """``histogram_quantile(q, ...)`` over the window's bucket sums, in ms."""

    def handler(query: Query, now: float, rows: Sequence[Row]) -> Measurement:
        summed = recording_buckets.window_sums([row.buckets for row in rows])
        if summed is None:
            return Measurement.no_data(query, now, "no bucket counts in the window")
        observed = summed[math.inf]
        if not observed > 0:
            return Measurement.no_data(query, now, "no requests in the window")
        seconds = series.histogram_quantile(q, summed)
        return Measurement.ok(query, now, seconds * 1000.0, requests=observed)

    return handler


_HANDLERS: dict[Signal, Callable[[Query, float, Sequence[Row]], Measurement]] = {
    Signal.ERROR_RATE_PERCENT: _error_rate,
    Signal.REQUESTS: _requests,
    Signal.ERRORS: _errors,
    Signal.LATENCY_P95_MS: _weighted("latency_p95_ms"),
    Signal.LATENCY_P50_MS: _weighted("latency_p50_ms"),
    Signal.LATENCY_MEAN_MS: _weighted("latency_mean_ms"),
    Signal.LATENCY_BUCKETS: _latency_buckets,
    Signal.MEMORY_MB: _last("memory_mb"),
    Signal.CONNECTIONS: _last("connections"),
    Signal.CPU_PERCENT: _cpu_percent,
    Signal.UNAUTHORIZED_PER_MINUTE: _unauthorized_per_minute,
}

#: What a file with bucket columns answers from them instead.
_FROM_BUCKETS: dict[Signal, Callable[[Query, float, Sequence[Row]], Measurement]] = {
    Signal.LATENCY_P95_MS: _bucket_quantile(0.95),
    Signal.LATENCY_P50_MS: _bucket_quantile(0.5),
}

#: The optional column a signal needs; its absence from the header means no data.
_COLUMN: dict[Signal, str] = {
    Signal.LATENCY_P50_MS: "latency_p50_ms",
    Signal.LATENCY_MEAN_MS: "latency_mean_ms",
    Signal.CPU_PERCENT: "cpu_percent",
    Signal.CONNECTIONS: "connections",
    Signal.UNAUTHORIZED_PER_MINUTE: "unauthorized",
}
