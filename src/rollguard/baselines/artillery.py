"""Artillery's ``artillery run --output report.json``, both layouts.

- 1.x: ``aggregate.latency`` (ms: min, median, p95, p99, max), ``aggregate.codes``
  (status → count), ``aggregate.errors`` (transport error code → count). 1.x
  has no mean latency; it is computed from the raw ``intermediate[].latencies``
  (nanoseconds) when the report kept them.
- 2.x: ``aggregate.counters`` (``http.codes.503``, ``errors.ETIMEDOUT``, ...)
  and ``aggregate.summaries["http.response_time"]`` (ms). Early 2.0 builds
  prefix names with ``engine.`` and omit ``mean``; the mean is then
  ``_raw.sum / _raw.count`` of the summary's DDSketch.

Requests = every status code counted + every transport error; errors = 5xx
codes + transport errors (see :mod:`rollguard.baselines.summary`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollguard.baselines.reportfile import count, guarded, number, read_json
from rollguard.baselines.summary import LoadTestSummary, refuse_empty
from rollguard.errors import InputError

_PREFIXES = ("", "engine.")


@guarded("artillery")
def read(path: str | Path) -> LoadTestSummary:
    """A summary of an Artillery report; raise InputError for other files and empty runs."""
    source = str(path)
    document = read_json(path, "Artillery report")
    aggregate = document.get("aggregate") if isinstance(document, dict) else None
    if not isinstance(aggregate, dict):
        raise InputError(
            f"{source}: not an Artillery report: expected an 'aggregate' object "
            "(the file `artillery run --output report.json` writes)"
        )
    if "latency" in aggregate:
        return _read_v1(document, aggregate, source)
    if isinstance(aggregate.get("counters"), dict):
        return _read_v2(aggregate, source)
    raise InputError(
        f"{source}: aggregate: expected 'latency' (Artillery 1.x) or 'counters' and "
        "'summaries' (Artillery 2.x)"
    )


def _read_v1(document: dict[str, Any], aggregate: dict[str, Any], source: str) -> LoadTestSummary:
    codes = {
        str(code): count(number, source, f"aggregate.codes.{code}")
        for code, number in (aggregate.get("codes") or {}).items()
    }
    transport = sum(
        count(number, source, f"aggregate.errors.{code}")
        for code, number in (aggregate.get("errors") or {}).items()
    )
    responses = sum(codes.values())
    errors = sum(n for code, n in codes.items() if code.startswith("5")) + transport
    refuse_empty(source, responses, _what(responses, aggregate.get("errors") or {}))
    latency = aggregate.get("latency") or {}
    p95, median = number(latency.get("p95")), number(latency.get("median"))
    if p95 is None:
        raise InputError(f"{source}: aggregate.latency.p95: expected a number of milliseconds")
    mean = number(latency.get("mean"))
    notes = []
    if mean is None:
        samples = [
            value
            for period in document.get("intermediate") or []
            for value in (period.get("latencies") or [])
            if isinstance(value, int | float)
        ]
        if not samples:
            raise InputError(
                f"{source}: aggregate.latency has no mean and the report kept no raw "
                "intermediate[].latencies to compute it from"
            )
        mean = sum(samples) / len(samples) / 1e6  # nanoseconds → milliseconds
        notes.append(f"mean latency computed from {len(samples)} raw latencies")
    return LoadTestSummary(
        tool="artillery",
        source=source,
        requests=responses + transport,
        errors=errors,
        avg_latency_ms=mean,
        p95_latency_ms=p95,
        p50_latency_ms=median,
        notes=tuple(notes),
    )


def _summary(aggregate: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    found = (aggregate.get("summaries") or {}).get(f"{prefix}http.response_time")
    return found if isinstance(found, dict) else None


def _read_v2(aggregate: dict[str, Any], source: str) -> LoadTestSummary:
    counters: dict[str, Any] = aggregate.get("counters") or {}
    prefix = next((p for p in _PREFIXES if _summary(aggregate, p)), "")
    codes = {
        name.removeprefix(f"{prefix}http.codes."): count(value, source, f"counters.{name}")
        for name, value in counters.items()
        if name.startswith(f"{prefix}http.codes.")
    }
    transport_by_code = {
        name.removeprefix("errors."): count(value, source, f"counters.{name}")
        for name, value in counters.items()
        if name.startswith("errors.")
    }
    responses = sum(codes.values())
    transport = sum(transport_by_code.values())
    refuse_empty(source, responses, _what(responses, transport_by_code))
    summary = _summary(aggregate, prefix)
    if summary is None:
        raise InputError(f'{source}: aggregate.summaries["http.response_time"]: missing')
    p95 = number(summary.get("p95"))
    if p95 is None:
        raise InputError(f'{source}: summaries["{prefix}http.response_time"].p95: expected ms')
    mean = number(summary.get("mean"))
    notes = []
    if mean is None:
        raw = summary.get("_raw") or {}
        total, samples = number(raw.get("sum")), number(raw.get("count"))
        if total is None or not samples:
            raise InputError(
                f'{source}: summaries["{prefix}http.response_time"] has no mean and no '
                "_raw sum/count to compute it from"
            )
        mean = total / samples
        notes.append("mean latency computed from the summary's sketch (sum / count)")
    errors = sum(n for code, n in codes.items() if code.startswith("5")) + transport
    return LoadTestSummary(
        tool="artillery",
        source=source,
        requests=responses + transport,
        errors=errors,
        avg_latency_ms=mean,
        p95_latency_ms=p95,
        p50_latency_ms=number(summary.get("median", summary.get("p50"))),
        notes=tuple(notes),
    )


def _what(responses: int, transport: dict[str, Any]) -> str:
    if not transport:
        return f"{responses} responses"
    detail = ", ".join(f"{code} x{n}" for code, n in transport.items())
    return f"{responses} responses; transport errors: {detail}"
