"""The vocabulary every layer shares: signals, versions, measurements.

A :class:`Measurement` is what a metrics provider returns and what the engine
judges. Errors are data (as in Argo Rollouts): a provider that is down, or a
query that yields nothing or NaN, returns a measurement whose phase is
``NO_DATA`` or ``ERROR`` with the reason, never a fake zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal


class Signal(StrEnum):
    """What is measured. Units are part of the name."""

    ERROR_RATE_PERCENT = "error_rate_percent"  # 5xx / all requests over the window
    LATENCY_P95_MS = "latency_p95_ms"
    LATENCY_P50_MS = "latency_p50_ms"
    LATENCY_MEAN_MS = "latency_mean_ms"
    MEMORY_MB = "memory_mb"
    CPU_PERCENT = "cpu_percent"
    CONNECTIONS = "connections"
    UNAUTHORIZED_PER_MINUTE = "unauthorized_per_minute"  # 401 and 403 responses
    REQUESTS = "requests"  # increase of all requests over the window
    ERRORS = "errors"  # increase of 5xx responses over the window
    LATENCY_BUCKETS = "latency_buckets"  # increase per histogram bucket, in ``buckets``
    VULNERABILITIES_CRITICAL = "vulnerabilities_critical"
    VULNERABILITIES_HIGH = "vulnerabilities_high"
    SUSPICIOUS_EVENTS = "suspicious_events"  # matched attack signatures over the window


@dataclass(frozen=True)
class CustomSignal:
    """A signal a policy defines itself (``metrics.signals``), with its unit and kind.

    A ``gauge`` is one query's value and is judged by thresholds only. A
    ``ratio`` is ``100 * errors / requests`` from two count queries, so it can
    also feed the sequential error-rate test, whose inputs are its ``errors``
    and ``requests`` parts measured per interval. The queries themselves stay
    in the policy; providers look them up by ``name``.
    """

    name: str
    unit: str = ""
    kind: Literal["gauge", "ratio"] = "gauge"
    part: Literal["value", "errors", "requests"] = "value"

    @property
    def value(self) -> str:
        """The name shown in evidence and reasons, as ``Signal.value`` is."""
        return self.name if self.part == "value" else f"{self.name}.{self.part}"

    def counts(self) -> tuple[CustomSignal, CustomSignal]:
        """The (requests, errors) parts of a ratio, per interval, for the sequential test."""
        return replace(self, part="requests"), replace(self, part="errors")


#: A built-in signal or one the policy defines.
AnySignal = Signal | CustomSignal


def is_error_ratio(signal: AnySignal) -> bool:
    """Whether ``signal`` is errors over requests (the sequential error-rate test's shape)."""
    if isinstance(signal, CustomSignal):
        return signal.kind == "ratio" and signal.part == "value"
    return signal is Signal.ERROR_RATE_PERCENT


class Version(StrEnum):
    """Which side of a canary deployment a measurement describes."""

    STABLE = "stable"
    CANARY = "canary"


class Phase(StrEnum):
    """Whether a measurement holds a usable value."""

    OK = "ok"
    NO_DATA = "no_data"
    ERROR = "error"


@dataclass(frozen=True)
class Query:
    """One thing the engine needs measured at each evaluation.

    ``promql`` is set when a trigger gives its own query; providers that do
    not speak PromQL reject such queries at policy validation. A
    :class:`CustomSignal`'s queries are in the policy's ``metrics.signals``.
    """

    signal: AnySignal
    version: Version
    window_seconds: float
    promql: str | None = None


@dataclass(frozen=True)
class Measurement:
    """A timestamped observation of one signal for one version.

    ``value`` is ``None`` unless ``phase`` is ``OK``. ``requests`` counts the
    requests behind a ratio or quantile (``None`` when unknown), so the engine
    can refuse to judge on too little traffic. ``buckets`` holds histogram
    bucket increases by upper bound for ``LATENCY_BUCKETS``.
    """

    query: Query
    at: float  # seconds since the epoch (or since the start of a replay)
    phase: Phase
    value: float | None = None
    reason: str = ""
    requests: float | None = None
    buckets: Mapping[float, float] = field(default_factory=dict)

    @classmethod
    def ok(
        cls,
        query: Query,
        at: float,
        value: float,
        *,
        requests: float | None = None,
        buckets: Mapping[float, float] | None = None,
    ) -> Measurement:
        """A usable value; NaN or infinity becomes no-data, never a number."""
        if math.isnan(value) or math.isinf(value):
            return cls(query, at, Phase.NO_DATA, reason=f"value is {value}")
        return cls(query, at, Phase.OK, value, requests=requests, buckets=buckets or {})

    @classmethod
    def no_data(cls, query: Query, at: float, reason: str) -> Measurement:
        """Nothing to judge: no samples, no traffic, NaN."""
        return cls(query, at, Phase.NO_DATA, reason=reason)

    @classmethod
    def error(cls, query: Query, at: float, reason: str) -> Measurement:
        """The source failed: unreachable, bad query, bad response."""
        return cls(query, at, Phase.ERROR, reason=reason)
