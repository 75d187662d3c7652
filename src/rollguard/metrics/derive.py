"""From a window of scrapes to one value per signal (pure; docs/metrics.md has the table).

Counters are read per series, reset-corrected, then summed, as
``sum(increase(x[w]))`` does. A counter series missing from a successful
scrape counts as zero there: client libraries create a labelled series on its
first increment, so "absent" before it appears means "not yet counted" (the
same idea as Prometheus' created-timestamp zero injection). Without it, the
first 5xx of a canary would be invisible to a window that saw it appear.

Growth is exact, by the rules the Prometheus source uses
(:mod:`rollguard.metrics.growth`): each series' last scrape in the window minus
its last scrape at or before the window start, a drop counting from zero
(Prometheus' reset rule), nothing extrapolated or interpolated. So counts of
whole requests are whole numbers, consecutive windows add up, and rates are
growth per second between the two scrapes compared.
A value that cannot be derived raises :class:`Missing` with the reason, which
the provider turns into a no-data measurement: never a fake zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rollguard.metrics import growth, series
from rollguard.metrics.exposition import Exposition, Labels
from rollguard.policy.model import MetricNames
from rollguard.signals import Signal

BYTES_PER_MB = 1024 * 1024  # MiB: bytes / 1024 / 1024, as dashboards show it


class Missing(Exception):
    """The window cannot give this value; the message is the no-data reason."""


@dataclass(frozen=True)
class Window:
    """One endpoint's successful scrapes for ``(start, end]``, oldest first.

    The last scrape at or before ``start``, when there is one, comes first: the
    counters' growth is counted from it.
    """

    start: float
    end: float
    scrapes: Sequence[tuple[float, Exposition]]


@dataclass(frozen=True)
class Derived:
    """A derived value, the requests behind it, and bucket counts for LATENCY_BUCKETS."""

    value: float
    requests: float | None = None
    buckets: Mapping[float, float] = field(default_factory=dict)


def derive(signal: Signal, window: Window, names: MetricNames) -> Derived:
    """The value of ``signal`` over ``window``; raises :class:`Missing` with the reason."""
    handler = _HANDLERS.get(signal)
    if handler is None:
        raise Missing(f"the scrape provider cannot measure {signal.value}")
    return handler(window, names)


# --- counters ----------------------------------------------------------------------

LabelFilter = Callable[[Labels], bool]


def _any(_: Labels) -> bool:
    return True


def _growths(window: Window, name: str, keep: LabelFilter = _any) -> dict[growth.SeriesKey, float]:
    """Each matching series' exact growth over the window (absent from a scrape → 0 there)."""
    inside = [(t, exposition) for t, exposition in window.scrapes if t > window.start]
    if not inside:
        raise Missing(f"no successful scrape in the last {window.end - window.start:g}s")
    if len(window.scrapes) < 2:
        raise Missing(
            f"one successful scrape in the last {window.end - window.start:g}s "
            "and none before it; a counter needs two to compare"
        )
    if not any(exposition.declares(name) for _, exposition in window.scrapes):
        raise Missing(f"{name} is not exposed")
    keys = {key for _, exp in window.scrapes for key in exp.series(name) if keep(key)}
    points = {
        frozenset(key): [series.Point(t, exp.series(name).get(key, 0.0)) for t, exp in inside]
        for key in keys
    }
    first_at, first = window.scrapes[0]
    if first_at > window.start:  # not scraped before the window: nothing counts from zero
        return growth.Selection(points, {}).growths(from_zero=False)
    before = {frozenset(k): v for k, v in first.series(name).items() if keep(k)}
    return growth.Selection(points, before).growths(from_zero=True)


def counter_growth(window: Window, name: str, keep: LabelFilter = _any) -> series.Growth:
    """``sum(x{keep})`` grown over the window, exactly, and the seconds between the scrapes
    compared (from the one before the window, or the first inside, to the last)."""
    grown = math.fsum(_growths(window, name, keep).values())
    times = [t for t, _ in window.scrapes]
    return series.Growth(grown, times[-1] - times[0])


def _status_filter(names: MetricNames, field: str) -> LabelFilter:
    """Series whose status label fully matches ``names.<field>``, as PromQL's ``=~`` does."""
    pattern = getattr(names, field)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise Missing(f"names.{field} {pattern!r} is not a regular expression: {exc}") from None

    def keep(labels: Labels) -> bool:
        return compiled.fullmatch(dict(labels).get(names.status_label, "")) is not None

    return keep


def _require_status_label(window: Window, names: MetricNames) -> None:
    """Without the status label every request looks successful: refuse, don't guess."""
    keys = [key for _, exp in window.scrapes for key in exp.series(names.requests_total)]
    if keys and not any(names.status_label in dict(key) for key in keys):
        raise Missing(f"{names.requests_total} has no {names.status_label!r} label")


def _error_rate(window: Window, names: MetricNames) -> Derived:
    requests = counter_growth(window, names.requests_total).increase
    _require_status_label(window, names)
    if not requests > 0:
        raise Missing("no requests in the window")
    errors = counter_growth(
        window, names.requests_total, _status_filter(names, "error_status_regex")
    )
    return Derived(errors.increase / requests * 100.0, requests=requests)


def _requests(window: Window, names: MetricNames) -> Derived:
    requests = counter_growth(window, names.requests_total).increase
    return Derived(requests, requests=requests)


def _errors(window: Window, names: MetricNames) -> Derived:
    requests = counter_growth(window, names.requests_total).increase
    _require_status_label(window, names)
    errors = counter_growth(
        window, names.requests_total, _status_filter(names, "error_status_regex")
    )
    return Derived(errors.increase, requests=requests)


def _unauthorized_per_minute(window: Window, names: MetricNames) -> Derived:
    _require_status_label(window, names)
    keep = _status_filter(names, "unauthorized_status_regex")
    attempts = counter_growth(window, names.requests_total, keep)
    return Derived(attempts.per_second * 60.0)


def _suspicious_events(window: Window, names: MetricNames) -> Derived:
    return Derived(counter_growth(window, names.suspicious_events_total).increase)


def _cpu_percent(window: Window, names: MetricNames) -> Derived:
    busy = counter_growth(window, names.cpu_seconds_total)
    return Derived(busy.per_second * 100.0)


# --- histograms --------------------------------------------------------------------


def bucket_increases(window: Window, histogram: str) -> dict[float, float]:
    """Each cumulative bucket's exact growth, keyed by ``le`` in seconds (``le="1"`` and
    ``le="1.0"`` merged)."""
    name = histogram + "_bucket"
    by_bound: dict[float, float] = {}
    for raw, grown in growth.by_label(_growths(window, name), "le").items():
        try:
            bound = float(raw)
        except ValueError:
            bound = math.nan
        if math.isnan(bound):
            raise Missing(f"{name} has a bucket with le={raw!r}, not a number")
        by_bound[bound] = by_bound.get(bound, 0.0) + grown
    if not by_bound:
        raise Missing(f"{name} has no buckets")
    if math.inf not in by_bound:
        raise Missing(f"{name} has no +Inf bucket")
    if len(by_bound) < 2:
        raise Missing(f"{name} has fewer than 2 buckets")
    return by_bound


def _quantile(q: float) -> Callable[[Window, MetricNames], Derived]:
    def handler(window: Window, names: MetricNames) -> Derived:
        buckets = bucket_increases(window, names.duration_histogram)
        observed = buckets[math.inf]
        if not observed > 0:
            raise Missing("no requests in the window")
        seconds = series.histogram_quantile(q, buckets)
        return Derived(seconds * 1000.0, requests=observed)

    return handler


def _latency_mean(window: Window, names: MetricNames) -> Derived:
    base = names.duration_histogram
    count = counter_growth(window, base + "_count").increase
    if not count > 0:
        raise Missing("no requests in the window")
    total = counter_growth(window, base + "_sum").increase
    return Derived(series.histogram_mean(total, count) * 1000.0, requests=count)


def _latency_buckets(window: Window, names: MetricNames) -> Derived:
    buckets = bucket_increases(window, names.duration_histogram)
    observed = buckets[math.inf]
    return Derived(observed, requests=observed, buckets=dict(sorted(buckets.items())))


# --- gauges ------------------------------------------------------------------------


def latest_gauge(window: Window, name: str, keep: LabelFilter = _any) -> float:
    """The sum of the matching series in the newest scrape of the window."""
    at, exposition = window.scrapes[-1] if window.scrapes else (window.start, Exposition())
    if at <= window.start:
        raise Missing(f"no successful scrape in the last {window.end - window.start:g}s")
    if not exposition.declares(name):
        raise Missing(f"{name} is not exposed")
    values = [value for key, value in exposition.series(name).items() if keep(key)]
    if not values:
        raise Missing(f"{name} has no matching series")
    return math.fsum(values)


def _memory_mb(window: Window, names: MetricNames) -> Derived:
    return Derived(latest_gauge(window, names.memory_bytes) / BYTES_PER_MB)


def _connections(window: Window, names: MetricNames) -> Derived:
    return Derived(latest_gauge(window, names.connections))


def _vulnerabilities(severity: str) -> Callable[[Window, MetricNames], Derived]:
    def handler(window: Window, names: MetricNames) -> Derived:
        def keep(labels: Labels) -> bool:
            return dict(labels).get(names.severity_label, "").casefold() == severity

        return Derived(latest_gauge(window, names.vulnerabilities, keep))

    return handler


_HANDLERS: dict[Signal, Callable[[Window, MetricNames], Derived]] = {
    Signal.ERROR_RATE_PERCENT: _error_rate,
    Signal.LATENCY_P95_MS: _quantile(0.95),
    Signal.LATENCY_P50_MS: _quantile(0.50),
    Signal.LATENCY_MEAN_MS: _latency_mean,
    Signal.MEMORY_MB: _memory_mb,
    Signal.CPU_PERCENT: _cpu_percent,
    Signal.CONNECTIONS: _connections,
    Signal.UNAUTHORIZED_PER_MINUTE: _unauthorized_per_minute,
    Signal.REQUESTS: _requests,
    Signal.ERRORS: _errors,
    Signal.LATENCY_BUCKETS: _latency_buckets,
    Signal.VULNERABILITIES_CRITICAL: _vulnerabilities("critical"),
    Signal.VULNERABILITIES_HIGH: _vulnerabilities("high"),
    Signal.SUSPICIOUS_EVENTS: _suspicious_events,
}
