"""The vocabulary every layer shares: signals, versions, measurements.

A :class:`Measurement` is what a metrics provider returns and what the engine
judges. Errors are data (as in Argo Rollouts): a provider that is down, or a
query that yields nothing or NaN, returns a measurement whose phase is
``NO_DATA`` or ``ERROR`` with the reason, never a fake zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


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
    not speak PromQL reject such queries at policy validation.
    """

    signal: Signal
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
