"""The performance baseline: the ``performance-baseline.json`` schema.

    {"timestamp": "...", "metrics": {"error_rate_percent": .., "avg_latency_ms": ..,
     "p95_latency_ms": .., "memory_mb": ..}, "thresholds": {...}}

``error_rate_percent`` is errors / requests * 100 (a common jq recipe computes
the success rate by mistake). ``memory_mb`` is optional in files made from load
tests, which cannot see the server's memory.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollguard import documents
from rollguard.errors import InputError
from rollguard.signals import AnySignal, CustomSignal, Signal
from rollguard.textfile import read_text


class BaselineMetrics(BaseModel):
    """Reference values measured on the known-good version.

    JSON's ``Infinity`` (which Python reads) is refused: an infinite reference
    would make every relative limit unreachable.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    error_rate_percent: float = Field(ge=0, le=100)
    avg_latency_ms: float = Field(ge=0)
    p95_latency_ms: float = Field(ge=0)
    p50_latency_ms: float | None = Field(default=None, ge=0)
    memory_mb: float | None = Field(default=None, ge=0)
    requests: int | None = Field(default=None, ge=0)


class Baseline(BaseModel):
    """A whole baseline file."""

    model_config = ConfigDict(extra="allow", frozen=True)

    timestamp: datetime
    metrics: BaselineMetrics
    thresholds: dict[str, float] = {}
    source: str | None = None

    def value_for(self, signal: AnySignal) -> float | None:
        """The reference value for a signal, or None when the baseline lacks it.

        A custom signal's value is the metric of its name, when the file has one.
        """
        if isinstance(signal, CustomSignal):
            found = (self.metrics.model_extra or {}).get(signal.value)
            return float(found) if isinstance(found, int | float) else None
        return {
            Signal.ERROR_RATE_PERCENT: self.metrics.error_rate_percent,
            Signal.LATENCY_P95_MS: self.metrics.p95_latency_ms,
            Signal.LATENCY_MEAN_MS: self.metrics.avg_latency_ms,
            Signal.LATENCY_P50_MS: self.metrics.p50_latency_ms,
            Signal.MEMORY_MB: self.metrics.memory_mb,
        }.get(signal)


def load_baseline(path: str | Path) -> Baseline:
    """Read and validate a baseline file; raise :class:`InputError` naming the field."""
    text = read_text(path, "baseline", max_bytes=documents.MAX_CONFIG_BYTES)
    data = documents.load_json(text, source=str(path), what="baseline")
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{path}: {field}: {first['msg']}") from exc
