"""PromQL for each signal, as generated alerts and dashboards need it.

The expressions measure what the engine measures: the error rate is
``100 * errors / requests`` over the trigger's window (the seed's
``rate(5xx) * 100`` is a rate per second, not a percentage), latency
quantiles come from the histogram's buckets summed over instances, memory is
the largest instance's average over the window. Every expression yields a
single series without labels, so a canary expression can be compared with a
stable one directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollguard.policy.model import MetricNames, Policy, PrometheusSource
from rollguard.signals import Signal, Version

_QUANTILE = {Signal.LATENCY_P95_MS: 0.95, Signal.LATENCY_P50_MS: 0.5}
_VULNERABILITY_SEVERITY = {
    Signal.VULNERABILITIES_CRITICAL: "critical",
    Signal.VULNERABILITIES_HIGH: "high",
}


def duration(seconds: float) -> str:
    """A Prometheus duration (``5m``, ``90s``, ``1500ms``) for a number of seconds."""
    milliseconds = round(seconds * 1000)
    if milliseconds <= 0:
        return "0s"
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


@dataclass(frozen=True)
class Selectors:
    """Label matchers for each version, and the metric names of the exporter."""

    stable: str
    canary: str
    names: MetricNames

    @classmethod
    def for_policy(cls, policy: Policy) -> Selectors:
        """The policy's own selectors for a Prometheus source; ``version=...`` otherwise."""
        source = policy.metrics
        if isinstance(source, PrometheusSource):
            return cls(source.stable_selector, source.canary_selector, source.names)
        names = getattr(source, "names", MetricNames())
        return cls('version="stable"', 'version="canary"', names)

    def of(self, version: Version) -> str:
        """The matcher text for one version."""
        return self.stable if version is Version.STABLE else self.canary


def series(metric: str, *matchers: str) -> str:
    """``metric{a,b}`` with empty matchers left out."""
    inside = ",".join(part for part in matchers if part)
    return f"{metric}{{{inside}}}" if inside else metric


def signal_expr(signal: Signal, selectors: Selectors, version: Version, window: str) -> str:
    """The PromQL that measures ``signal`` for ``version`` over ``window``, in its unit."""
    names = selectors.names
    sel = selectors.of(version)
    requests = names.requests_total
    status = names.status_label
    if signal is Signal.ERROR_RATE_PERCENT:
        errors = series(requests, sel, f'{status}=~"5.."')
        return f"100 * sum(rate({errors}[{window}])) / sum(rate({series(requests, sel)}[{window}]))"
    if signal in _QUANTILE:
        buckets = series(f"{names.duration_histogram}_bucket", sel)
        return (
            f"1000 * histogram_quantile({_QUANTILE[signal]}, "
            f"sum by (le) (rate({buckets}[{window}])))"
        )
    if signal is Signal.LATENCY_MEAN_MS:
        total = series(f"{names.duration_histogram}_sum", sel)
        count = series(f"{names.duration_histogram}_count", sel)
        return f"1000 * sum(rate({total}[{window}])) / sum(rate({count}[{window}]))"
    if signal is Signal.MEMORY_MB:
        return f"max(avg_over_time({series(names.memory_bytes, sel)}[{window}])) / 1048576"
    if signal is Signal.CPU_PERCENT:
        return f"100 * max(rate({series(names.cpu_seconds_total, sel)}[{window}]))"
    if signal is Signal.CONNECTIONS:
        return f"sum(avg_over_time({series(names.connections, sel)}[{window}]))"
    if signal is Signal.UNAUTHORIZED_PER_MINUTE:
        denied = series(requests, sel, f'{status}=~"401|403"')
        return f"60 * sum(rate({denied}[{window}]))"
    if signal is Signal.SUSPICIOUS_EVENTS:
        return f"sum(increase({series(names.suspicious_events_total, sel)}[{window}]))"
    if signal is Signal.REQUESTS:
        return f"sum(increase({series(requests, sel)}[{window}]))"
    if signal is Signal.ERRORS:
        errors = series(requests, sel, f'{status}=~"5.."')
        return f"sum(increase({errors}[{window}]))"
    if signal in _VULNERABILITY_SEVERITY:
        severity = f'{names.severity_label}=~"(?i){_VULNERABILITY_SEVERITY[signal]}"'
        return f"max(max_over_time({series(names.vulnerabilities, severity)}[{window}]))"
    raise ValueError(f"no PromQL for signal {signal.value!r}")


def source_metric(signal: Signal, names: MetricNames) -> str:
    """The exporter metric a signal is computed from (for no-data alerts)."""
    if signal in _QUANTILE or signal is Signal.LATENCY_BUCKETS:
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
