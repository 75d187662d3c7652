"""Locust's ``--csv=PREFIX`` output: ``PREFIX_stats.csv`` or ``PREFIX_stats_history.csv``.

The ``Aggregated`` row gives requests, failures, average, median and 95th
percentile (ms). (History files: the last ``Aggregated`` row's totals.)

Locust counts every failure alike: 4xx, 5xx, connection errors, timeouts and
failures a script raised. When ``PREFIX_failures.csv`` sits next to the stats
file, failures whose error names a 4xx status (``404 Client Error``,
``HTTPError 404``, ``code=404``) are not counted as errors; every other
failure is (5xx, transport errors, and script failures, which may hide
either). Without that file every failure counts, and the baseline notes it.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from rollguard.baselines.reportfile import guarded
from rollguard.baselines.summary import LoadTestSummary, refuse_empty
from rollguard.errors import InputError
from rollguard.textfile import read_text

_CLIENT_ERROR = re.compile(
    r"\b4\d\d Client Error|HTTPError\W*4\d\d\b|\bcode=4\d\d\b|\bstatus(?:_code)?=4\d\d\b"
)


def _float(row: dict[str, str], column: str, source: str) -> float:
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{source}: column {column!r}: expected a number, 0 or more, got {raw!r}")
    return value


@guarded("locust")
def read(path: str | Path) -> LoadTestSummary:
    """A summary of Locust's stats CSV; raise InputError for other files and empty runs."""
    source = str(path)
    rows = list(csv.DictReader(io.StringIO(read_text(path, "Locust stats"))))
    header = set(rows[0]) if rows else set()
    history = "Total Request Count" in header
    if not history and "Request Count" not in header:
        raise InputError(
            f"{source}: not a Locust stats CSV: expected the columns of PREFIX_stats.csv "
            "('Name', 'Request Count', 'Failure Count', ...) or PREFIX_stats_history.csv"
        )
    aggregated = [row for row in rows if (row.get("Name") or "").strip() == "Aggregated"]
    if not aggregated:
        raise InputError(f"{source}: no row named 'Aggregated'")
    row = aggregated[-1]
    prefix = "Total " if history else ""
    requests = int(_float(row, f"{prefix}Request Count", source))
    failures = int(_float(row, f"{prefix}Failure Count", source))
    refuse_empty(source, requests, f"{prefix}Request Count is 0")
    client_errors, note = _client_errors(Path(path), failures)
    return LoadTestSummary(
        tool="locust",
        source=source,
        requests=requests,
        errors=failures - client_errors,
        avg_latency_ms=_float(row, f"{prefix}Average Response Time", source),
        p95_latency_ms=_float(row, "95%", source),
        p50_latency_ms=_float(row, f"{prefix}Median Response Time", source),
        notes=(note,),
    )


def failures_file(stats: Path) -> Path | None:
    """``X_stats.csv`` or ``X_stats_history.csv`` → ``X_failures.csv`` when it exists."""
    for suffix in ("_stats_history.csv", "_stats.csv"):
        if stats.name.endswith(suffix):
            candidate = stats.with_name(stats.name.removesuffix(suffix) + "_failures.csv")
            return candidate if candidate.exists() else None
    return None


def _client_errors(stats: Path, failures: int) -> tuple[int, str]:
    """How many failures were 4xx responses, read from the failures file next to ``stats``."""
    found = failures_file(stats)
    if found is None:
        return 0, "no _failures.csv next to the stats: every Locust failure counted as an error"
    rows = list(csv.DictReader(io.StringIO(read_text(found, "Locust failures"))))
    if rows and not {"Error", "Occurrences"} <= set(rows[0]):
        raise InputError(f"{found}: expected the columns Method, Name, Error, Occurrences")
    client = 0
    for row in rows:
        if _CLIENT_ERROR.search(row.get("Error") or ""):
            try:
                client += int(row.get("Occurrences") or 0)
            except ValueError:
                raise InputError(f"{found}: Occurrences: expected a count") from None
    client = min(client, failures)
    return client, f"{found.name}: {client} of {failures} failures were 4xx, not counted as errors"
