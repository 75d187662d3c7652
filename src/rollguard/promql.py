"""PromQL for every signal, built from the policy: pure string functions, no I/O.

The one place rollguard writes PromQL for a signal. The Prometheus provider
(:mod:`rollguard.metrics.prometheus`) runs these expressions to decide, and the
generators (:mod:`rollguard.generate`) write the very same text into alert
rules and dashboard panels, so what an operator is alerted on or looks at is
what rollguard acted on. It sits below both (they may not import each other)
and needs only the policy's names and the signals.

Correct by construction, unlike common dashboard queries:

- the error rate is a percentage of requests, ``100 * 5xx / all`` over the
  window (a common ``rate(5xx) * 100`` is errors per second times 100);
- the p95 aggregates buckets by ``le`` before ``histogram_quantile``, so several
  instances give one quantile instead of one per instance;
- counts that may legitimately be zero (errors, unauthorized responses,
  suspicious events) fall back to ``all requests * 0``: zero when the version is
  serving but nothing went wrong, and still *no series* (no data) when the
  version is not serving at all. ``or vector(0)`` would invent a zero for a
  version that does not exist.

Memory and CPU describe the worst instance (``max``), so one leaking pod among
many is not averaged away; connections are summed over instances. Severities
of vulnerability findings match case-insensitively (trivy-operator writes
``Critical``), as the scrape provider reads them.

A trigger may give its own ``query``; these placeholders are replaced in it:

``$window``    the trigger's window as a PromQL duration (``5m``, ``90s``)
``$selector``  the version's label matchers, without braces (``version="canary"``)
``$version``   ``stable`` or ``canary``

Every generated value is one operand: an ``or`` is always inside parentheses
(it binds looser than ``>`` and ``+``), so an alert rule can write
``value > limit`` around it as it is.

The counts sequential tests are fed (``requests``, ``errors``,
``latency_buckets``) are not asked as ``increase()`` when rollguard decides:
``increase()`` extrapolates the growth it saw to the whole window (about
k/(k - 1) times the true count with k samples in it), which a test's guarantee
does not allow. :func:`counted` names the counter series instead, and
:func:`growth` the two queries whose raw samples the provider differences
(:mod:`rollguard.metrics.growth`). Alerts and dashboards keep ``increase()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rollguard.policy.model import MetricNames, PrometheusSource
from rollguard.policy.sources import CustomSignalSpec
from rollguard.signals import CustomSignal, Query, Signal, Version

PLACEHOLDERS = ("$window", "$selector", "$version")
#: How far before a window a counter's last sample is looked for: Prometheus' default
#: lookback delta, the age past which it no longer treats a sample as current.
LOOKBACK_SECONDS = 300.0


@dataclass(frozen=True)
class Expressions:
    """What to ask Prometheus for one query: the value, and the requests behind it."""

    value: str
    requests: str | None = None  # None when the signal is not a per-request ratio


@dataclass(frozen=True)
class Counted:
    """A count read exactly: the counter series counted, and the requests behind them.

    ``requests`` also says whether the version was being scraped before the window
    (so a series of ``value`` first seen inside it is new, counted from zero).
    """

    value: str
    requests: str
    per_bucket: bool = False  # the value is counted per ``le`` (a histogram's buckets)


def duration(seconds: float) -> str:
    """A PromQL duration: whole seconds as ``5m``/``90s``, anything finer in ``ms``."""
    milliseconds = round(seconds * 1000)
    if milliseconds <= 0:
        raise ValueError(f"a PromQL window must be positive, got {seconds!r} s")
    if milliseconds % 1000:
        return f"{milliseconds}ms"
    whole = milliseconds // 1000
    for unit, size in (("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def matchers(*parts: str) -> str:
    """Join label matchers into ``{a,b}``; empty parts and outer braces are dropped."""
    cleaned = [part.strip().strip("{}").strip().strip(",") for part in parts]
    return "{" + ",".join(part for part in cleaned if part) + "}"


def series(metric: str, *parts: str) -> str:
    """``metric{a,b}``; just ``metric`` when no matcher is left."""
    labels = matchers(*parts)
    return metric if labels == "{}" else metric + labels


def bare(selector: str) -> str:
    """A selector as written in a policy (braces optional), without its braces."""
    return selector.strip().strip("{}").strip()


def version_selector(source: PrometheusSource, version: Version) -> str:
    """The label matchers (no braces) that pick one version's series."""
    raw = source.stable_selector if version is Version.STABLE else source.canary_selector
    return bare(raw)


def substitute(template: str, *, window_seconds: float, selector: str, version: Version) -> str:
    """A user's own PromQL with ``$window``, ``$selector`` and ``$version`` filled in."""
    return (
        template.replace("$window", duration(window_seconds))
        .replace("$selector", selector)
        .replace("$version", version.value)
    )


def build(query: Query, source: PrometheusSource) -> Expressions:
    """The expressions answering ``query`` for the source's selectors and names."""
    selector = version_selector(source, query.version)
    return for_query(query, names=source.names, selector=selector, signals=source.signals)


def for_query(
    query: Query,
    *,
    names: MetricNames,
    selector: str,
    signals: Mapping[str, CustomSignalSpec[str]] | None = None,
) -> Expressions:
    """The expressions answering ``query``: the trigger's own PromQL, a custom signal's
    (from ``signals``, the source's ``metrics.signals``), or the built-in signal's."""
    signal = query.signal
    if isinstance(signal, CustomSignal):
        spec = (signals or {}).get(signal.name)
        if spec is None:
            raise ValueError(f"no PromQL is defined for signal {signal.name!r}")
        return _custom(spec, signal, query, selector)
    if query.promql is not None:
        return Expressions(
            value=substitute(
                query.promql,
                window_seconds=query.window_seconds,
                selector=selector,
                version=query.version,
            )
        )
    return for_signal(signal, names=names, selector=selector, window_seconds=query.window_seconds)


def _custom(
    spec: CustomSignalSpec[str], signal: CustomSignal, query: Query, selector: str
) -> Expressions:
    """A custom signal's PromQL: its gauge query, or ``100 * errors / requests``."""

    def filled(template: str) -> str:
        return substitute(
            template, window_seconds=query.window_seconds, selector=selector, version=query.version
        )

    ratio = spec.ratio()
    if spec.query is not None or ratio is None:
        return Expressions(value=filled(spec.query or ""))
    requests = f"({filled(ratio[1])})"
    # no error series while requests were counted is 0 errors, as for the built-in error rate
    errors = f"(({filled(ratio[0])}) or {requests} * 0)"
    if signal.part == "errors":
        return Expressions(value=errors, requests=requests)
    if signal.part == "requests":
        return Expressions(value=requests, requests=requests)
    return Expressions(value=f"100 * {errors} / {requests}", requests=requests)


def for_signal(
    signal: Signal,
    *,
    names: MetricNames,
    selector: str,
    window_seconds: float,
    by: tuple[str, ...] = (),
) -> Expressions:
    """The generated expressions for one signal, one version's selector and one window.

    ``by`` keeps those labels through every aggregation (``sum by (namespace, ...)``), so
    one expression answers many selections at once, each in its own series
    (:mod:`rollguard.metrics.shapes`); every binary operation then matches series on
    exactly those labels, so each selection is computed as if it were asked alone.
    """
    w = duration(window_seconds)
    sum_by, max_by = _aggregations(by)
    requests = f"{names.requests_total}{matchers(selector)}"
    errors = (
        f"{names.requests_total}"
        f"{matchers(f'{names.status_label}=~{_quote(names.error_status_regex)}', selector)}"
    )
    unauthorized = (
        f"{names.requests_total}"
        f"{matchers(f'{names.status_label}=~{_quote(names.unauthorized_status_regex)}', selector)}"
    )
    all_rate = f"{sum_by}(rate({requests}[{w}]))"
    all_increase = f"{sum_by}(increase({requests}[{w}]))"
    if signal in _LATENCY_SIGNALS:
        return _latency(signal, histogram=names.duration_histogram, selector=selector, w=w, by=by)

    match signal:
        case Signal.ERROR_RATE_PERCENT:
            return Expressions(
                value=f"100 * ({sum_by}(rate({errors}[{w}])) or {all_rate} * 0) / {all_rate}",
                requests=all_increase,
            )
        case Signal.MEMORY_MB:
            memory = f"{names.memory_bytes}{matchers(selector)}"
            return Expressions(value=f"{max_by}(avg_over_time({memory}[{w}])) / 1048576")
        case Signal.CPU_PERCENT:
            return Expressions(
                value=f"100 * {max_by}(rate({names.cpu_seconds_total}{matchers(selector)}[{w}]))"
            )
        case Signal.CONNECTIONS:
            return Expressions(
                value=f"{sum_by}(avg_over_time({names.connections}{matchers(selector)}[{w}]))"
            )
        case Signal.UNAUTHORIZED_PER_MINUTE:
            return Expressions(
                value=f"60 * ({sum_by}(rate({unauthorized}[{w}])) or {all_rate} * 0)",
                requests=all_increase,
            )
        case Signal.REQUESTS:
            return Expressions(value=all_increase, requests=all_increase)
        case Signal.ERRORS:
            return Expressions(
                value=f"({sum_by}(increase({errors}[{w}])) or {all_increase} * 0)",
                requests=all_increase,
            )
        case Signal.VULNERABILITIES_CRITICAL | Signal.VULNERABILITIES_HIGH:
            severity = "critical" if signal is Signal.VULNERABILITIES_CRITICAL else "high"
            labels = matchers(f"{names.severity_label}=~{_quote('(?i)' + severity)}", selector)
            return Expressions(value=f"{max_by}({names.vulnerabilities}{labels})")
        case Signal.SUSPICIOUS_EVENTS:
            events = f"{names.suspicious_events_total}{matchers(selector)}"
            return Expressions(
                value=f"({sum_by}(increase({events}[{w}])) or {all_increase} * 0)",
                requests=all_increase,
            )
    raise ValueError(f"no PromQL is defined for signal {signal!r}")  # pragma: no cover


def counted_query(query: Query, source: PrometheusSource) -> Counted | None:
    """The counter series answering ``query`` exactly; None for a policy's own PromQL."""
    if query.promql is not None or isinstance(query.signal, CustomSignal):
        return None
    selector = version_selector(source, query.version)
    return counted(query.signal, names=source.names, selector=selector)


def counted(signal: Signal, *, names: MetricNames, selector: str) -> Counted | None:
    """The counter series of a count a sequential test is fed; None for other signals."""
    requests = series(names.requests_total, selector)
    if signal is Signal.REQUESTS:
        return Counted(requests, requests)
    if signal is Signal.ERRORS:
        status = f"{names.status_label}=~{_quote(names.error_status_regex)}"
        return Counted(series(names.requests_total, status, selector), requests)
    if signal is Signal.LATENCY_BUCKETS:
        buckets = series(f"{names.duration_histogram}_bucket", selector)
        return Counted(buckets, buckets, per_bucket=True)
    return None


def growth(selection: str, window_seconds: float) -> tuple[str, str]:
    """The queries whose answers, at the window's end, give ``selection``'s exact growth:
    its raw samples in the window, and each series' last sample before it."""
    w = duration(window_seconds)
    before = f"last_over_time({selection}[{duration(LOOKBACK_SECONDS)}] offset {w})"
    return f"{selection}[{w}]", before


#: An expression to ask, and whether it is a range selector (its raw samples).
Ask = tuple[str, bool]


def asks(built: Counted | Expressions, window_seconds: float) -> list[Ask]:
    """Every expression a query's measurement needs: a count's raw samples in the window
    and last values before it (:func:`growth`), or the value and the requests behind it."""
    if isinstance(built, Counted):
        selections = dict.fromkeys((built.value, built.requests))
        pairs = (growth(selection, window_seconds) for selection in selections)
        return [ask for inside, before in pairs for ask in ((inside, True), (before, False))]
    expressions = dict.fromkeys((built.value, built.requests))
    return [(expression, False) for expression in expressions if expression is not None]


def source_metric(signal: Signal, names: MetricNames) -> str:
    """The exporter metric a generated expression reads, e.g. to alert on its absence."""
    if signal in (Signal.LATENCY_P95_MS, Signal.LATENCY_P50_MS, Signal.LATENCY_BUCKETS):
        return f"{names.duration_histogram}_bucket"
    if signal is Signal.LATENCY_MEAN_MS:
        return f"{names.duration_histogram}_count"
    return {
        Signal.MEMORY_MB: names.memory_bytes,
        Signal.CPU_PERCENT: names.cpu_seconds_total,
        Signal.CONNECTIONS: names.connections,
        Signal.SUSPICIOUS_EVENTS: names.suspicious_events_total,
        Signal.VULNERABILITIES_CRITICAL: names.vulnerabilities,
        Signal.VULNERABILITIES_HIGH: names.vulnerabilities,
    }.get(signal, names.requests_total)


_LATENCY_SIGNALS = frozenset(
    {
        Signal.LATENCY_P95_MS,
        Signal.LATENCY_P50_MS,
        Signal.LATENCY_MEAN_MS,
        Signal.LATENCY_BUCKETS,
    }
)


def _latency(
    signal: Signal, *, histogram: str, selector: str, w: str, by: tuple[str, ...]
) -> Expressions:
    """Latency signals from one Prometheus histogram (seconds), reported in ms."""
    labels = matchers(selector)
    sum_by, _ = _aggregations(by)
    per_le = f"sum by ({', '.join((*by, 'le'))}) "
    count_increase = f"{sum_by}(increase({histogram}_count{labels}[{w}]))"
    if signal is Signal.LATENCY_BUCKETS:
        return Expressions(
            value=f"{per_le}(increase({histogram}_bucket{labels}[{w}]))",
            requests=count_increase,
        )
    if signal is Signal.LATENCY_MEAN_MS:
        return Expressions(
            value=(
                f"1000 * {sum_by}(rate({histogram}_sum{labels}[{w}])) "
                f"/ {sum_by}(rate({histogram}_count{labels}[{w}]))"
            ),
            requests=count_increase,
        )
    q = 0.95 if signal is Signal.LATENCY_P95_MS else 0.5
    buckets = f"{per_le}(rate({histogram}_bucket{labels}[{w}]))"
    return Expressions(
        value=f"1000 * histogram_quantile({q}, {buckets})",
        requests=count_increase,
    )


def _aggregations(by: tuple[str, ...]) -> tuple[str, str]:
    """``sum`` and ``max``, or ``sum by (a, b) `` and ``max by (a, b) `` when labels are kept."""
    kept = f" by ({', '.join(by)}) " if by else ""
    return f"sum{kept}", f"max{kept}"


def _quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
