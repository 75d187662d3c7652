"""What every load-test report is reduced to, and how a baseline is made from it.

Errors, the same for every tool where the report allows it: a request is an
error when its response has a 5xx status or when it got no response at all
(a transport error: timeout, refused connection, TLS failure). 4xx responses
are the client's doing and are not errors. ``error_rate_percent`` is
errors / requests * 100, where requests counts every response plus every
transport error. (A common jq recipe divides the 200 responses by the requests,
which is the success rate.) Where a tool's summary cannot split failures by
status (k6's ``http_req_failed``, Locust without its failures file), the
summary says so in ``notes``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rollguard.baseline import Baseline, BaselineMetrics
from rollguard.errors import InputError
from rollguard.policy.model import Policy
from rollguard.policy.units import Comparison
from rollguard.signals import Signal
from rollguard.timestamps import rfc3339

#: The default thresholds block, used when no policy says otherwise.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "max_error_rate": 5.0,
    "max_latency_increase_percent": 30.0,
    "max_memory_increase_mb": 50.0,
}


@dataclass(frozen=True)
class LoadTestSummary:
    """One load test's totals, in milliseconds and counts."""

    tool: str
    source: str
    requests: int  # responses + transport errors
    errors: int  # 5xx responses + transport errors
    avg_latency_ms: float
    p95_latency_ms: float
    p50_latency_ms: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        """A report that contradicts itself is refused here, whichever tool wrote it."""
        if self.errors > self.requests:
            raise InputError(
                f"{self.source}: {self.errors} failed requests but only {self.requests} requests; "
                "the report contradicts itself"
            )
        for name in ("avg_latency_ms", "p95_latency_ms", "p50_latency_ms"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(
                    f"{self.source}: {name.removesuffix('_ms').replace('_', ' ')}: "
                    f"expected milliseconds, 0 or more, got {value!r}"
                )

    @property
    def error_rate_percent(self) -> float:
        """errors / requests * 100; the readers refuse empty runs, so requests > 0."""
        return 100.0 * self.errors / self.requests


def refuse_empty(source: str, requests: int, what: str) -> None:
    """An empty run has no error rate and no latency: refuse it, never divide by zero."""
    if requests <= 0:
        raise InputError(
            f"{source}: the load test made no measurable requests ({what}); "
            "a baseline needs at least one response — check the target and rerun"
        )


def make_baseline(
    summary: LoadTestSummary,
    *,
    timestamp: datetime,
    thresholds: Mapping[str, float] | None = None,
    memory_mb: float | None = None,
) -> Baseline:
    """The baseline document for this run; memory only when measured elsewhere."""
    metrics = BaselineMetrics.model_validate(
        {
            "error_rate_percent": round(summary.error_rate_percent, 4),
            "avg_latency_ms": round(summary.avg_latency_ms, 3),
            "p95_latency_ms": round(summary.p95_latency_ms, 3),
            "p50_latency_ms": None
            if summary.p50_latency_ms is None
            else round(summary.p50_latency_ms, 3),
            "memory_mb": memory_mb,
            "requests": summary.requests,
            "errors": summary.errors,
        }
    )
    return Baseline(
        timestamp=timestamp,
        metrics=metrics,
        thresholds=dict(thresholds or DEFAULT_THRESHOLDS),
        source=f"{summary.tool}:{summary.source}",
    )


def to_json(baseline: Baseline) -> str:
    """The file's text: the documented layout, no nulls, timestamps in UTC with a Z."""
    body = baseline.model_dump(mode="json", exclude_none=True)
    body["timestamp"] = rfc3339(baseline.timestamp, "seconds")
    return json.dumps(body, indent=2) + "\n"


def thresholds_from_policy(policy: Policy) -> dict[str, float]:
    """The thresholds block filled from the policy's own triggers where it has them."""
    thresholds = dict(DEFAULT_THRESHOLDS)
    for rule in policy.rules:
        kind = rule.threshold.comparison
        if rule.signal is Signal.ERROR_RATE_PERCENT and kind is Comparison.ABOVE:
            thresholds["max_error_rate"] = rule.threshold.value
        elif rule.signal is Signal.LATENCY_P95_MS and kind is Comparison.INCREASE_PERCENT:
            thresholds["max_latency_increase_percent"] = rule.threshold.value
        elif rule.signal is Signal.MEMORY_MB and kind is Comparison.INCREASE:
            thresholds["max_memory_increase_mb"] = rule.threshold.value
    return thresholds
