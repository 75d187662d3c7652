"""A baseline from the stable version's live metrics (``baseline create --from-metrics``).

Pure: the CLI asks the policy's provider for :data:`QUERIES`' signals over the
window and hands the measurements here. Error rate, mean and p95 latency must
all be measured (a provider without data gives no baseline, never zeros);
memory and the median are kept when the provider has them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rollguard.baseline import Baseline, BaselineMetrics
from rollguard.baselines.summary import DEFAULT_THRESHOLDS
from rollguard.errors import InputError
from rollguard.signals import Measurement, Phase, Query, Signal, Version

REQUIRED = (Signal.ERROR_RATE_PERCENT, Signal.LATENCY_MEAN_MS, Signal.LATENCY_P95_MS)
OPTIONAL = (Signal.LATENCY_P50_MS, Signal.MEMORY_MB, Signal.REQUESTS)


def queries(window_seconds: float) -> list[Query]:
    """What to ask the provider about the stable version."""
    return [Query(signal, Version.STABLE, window_seconds) for signal in REQUIRED + OPTIONAL]


def baseline_from_measurements(
    measurements: Sequence[Measurement],
    *,
    source: str,
    timestamp: datetime,
    thresholds: Mapping[str, float] | None = None,
) -> Baseline:
    """A baseline from one measurement per signal; InputError when one is missing."""
    by_signal = {m.query.signal: m for m in measurements}
    requests = by_signal.get(Signal.REQUESTS)
    if requests is not None and requests.phase is Phase.OK and not requests.value:
        raise InputError(
            f"{source}: the stable version served no requests in the window; "
            "a baseline needs traffic"
        )
    values: dict[str, float | None] = {}
    for signal in REQUIRED:
        found = by_signal.get(signal)
        if found is None or found.phase is not Phase.OK or found.value is None:
            reason = found.reason if found is not None else "not measured"
            raise InputError(f"{source}: cannot measure {signal.value} for stable: {reason}")
        values[signal.value] = found.value
    optional = {
        signal: m.value
        for signal in OPTIONAL
        if (m := by_signal.get(signal)) is not None and m.phase is Phase.OK
    }
    metrics = BaselineMetrics.model_validate(
        {
            "error_rate_percent": round(values[Signal.ERROR_RATE_PERCENT.value] or 0.0, 4),
            "avg_latency_ms": round(values[Signal.LATENCY_MEAN_MS.value] or 0.0, 3),
            "p95_latency_ms": round(values[Signal.LATENCY_P95_MS.value] or 0.0, 3),
            "p50_latency_ms": optional.get(Signal.LATENCY_P50_MS),
            "memory_mb": optional.get(Signal.MEMORY_MB),
            "requests": None
            if optional.get(Signal.REQUESTS) is None
            else round(optional[Signal.REQUESTS] or 0.0),
        }
    )
    return Baseline(
        timestamp=timestamp,
        metrics=metrics,
        thresholds=dict(thresholds or DEFAULT_THRESHOLDS),
        source=source,
    )
