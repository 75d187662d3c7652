"""k6's end-of-test summary JSON (``handleSummary`` data, or ``--summary-export``).

Requests are ``http_reqs.count``; latency is ``http_req_duration`` (avg, med,
p(95), in ms). Errors are ``http_req_failed``'s passes (the requests that
failed). k6 counts a request as failed when it got no response or when its
status is outside the script's expected statuses — by default 200 to 399, so
4xx count too. Set ``http.setResponseCallback(http.expectedStatuses({min: 200,
max: 499}))`` in the script to make it count exactly 5xx and transport
errors, as rollguard does elsewhere. The baseline notes which was used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollguard.baselines.reportfile import guarded, number, read_json
from rollguard.baselines.summary import LoadTestSummary, refuse_empty
from rollguard.errors import InputError


def _values(metrics: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A metric's numbers: nested under ``values`` (handleSummary) or flat (summary-export)."""
    metric = metrics.get(name)
    if not isinstance(metric, dict):
        return None
    values = metric.get("values", metric)
    return values if isinstance(values, dict) else None


@guarded("k6")
def read(path: str | Path) -> LoadTestSummary:
    """A summary of a k6 JSON summary; raise InputError for other files and empty runs."""
    source = str(path)
    document = read_json(path, "k6 summary")
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict):
        raise InputError(
            f"{source}: not a k6 summary: expected a 'metrics' object "
            "(handleSummary's data or --summary-export)"
        )
    requests_values = _values(metrics, "http_reqs")
    if requests_values is None:
        others = ", ".join(sorted(name for name in metrics if name.endswith("_reqs"))) or "none"
        raise InputError(
            f"{source}: metrics.http_reqs: missing — the run made no HTTP requests "
            f"(request metrics found: {others}); baselines are made from HTTP load tests"
        )
    requests = int(number(requests_values.get("count")) or 0)
    refuse_empty(source, requests, "http_reqs.count is 0")
    duration = _values(metrics, "http_req_duration") or {}
    avg, p95 = number(duration.get("avg")), number(duration.get("p(95)"))
    if avg is None or p95 is None:
        raise InputError(f"{source}: metrics.http_req_duration: expected avg and p(95) in ms")
    failed = _values(metrics, "http_req_failed")
    notes = []
    if failed is None:
        errors = 0
        notes.append("no http_req_failed metric (k6 < 0.31): error rate taken as 0")
    else:
        passes = number(failed.get("passes"))
        rate = number(failed.get("rate", failed.get("value")))
        if passes is None and rate is None:
            raise InputError(f"{source}: metrics.http_req_failed: expected passes or rate")
        errors = int(passes) if passes is not None else round((rate or 0.0) * requests)
        notes.append(
            "errors are k6's http_req_failed: transport errors and unexpected statuses "
            "(by default every status >= 400, unless the script set expectedStatuses)"
        )
    return LoadTestSummary(
        tool="k6",
        source=source,
        requests=requests,
        errors=errors,
        avg_latency_ms=avg,
        p95_latency_ms=p95,
        p50_latency_ms=number(duration.get("med")),
        notes=tuple(notes),
    )
