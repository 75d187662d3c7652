"""Read a recorded metrics series (the replay CSV, docs/replay-format.md).

Strict on purpose: a backtest that silently skipped a bad row would answer a
different question than the one asked. Every problem is an
:class:`~rollguard.errors.InputError` reading ``file:line: column: what was
expected``, and nothing half-read is returned.

Bounded on purpose too: a backtest ticks from the first row's time to the
last one's, one row step at a time, so one row at time ``1e18`` (or on
9999-12-31) would make it tick forever. A recording spans at most
:data:`MAX_SPAN_SECONDS` and at most :data:`MAX_STEPS` of its own row steps,
and its file is at most :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from rollguard import documents
from rollguard.errors import InputError
from rollguard.metrics import recording_buckets
from rollguard.metrics.recording_buckets import Buckets
from rollguard.signals import Version
from rollguard.textfile import read_text

REQUIRED = ("time", "version", "requests", "errors", "latency_p95_ms", "memory_mb")
OPTIONAL = ("latency_p50_ms", "latency_mean_ms", "cpu_percent", "connections", "unauthorized")
COUNTS = ("requests", "errors", "unauthorized")
_MUST_BE_FILLED = ("time", "version", "requests", "errors")
#: Required columns that bucket columns make optional (the quantiles come from them).
_OPTIONAL_WITH_BUCKETS = ("latency_p95_ms",)
#: A year (and a day): "would this policy have fired last month?" fits with room to spare.
MAX_SPAN_SECONDS = 366 * 86400.0
#: Row steps from the first row to the last: a week of rows every 5 s (120,960) or a
#: month every 30 s (89,280). A backtest keeps each step's evaluation (a few kB each).
MAX_STEPS = 150_000
#: A month of 5-second rows for both versions is about 30 MB.
MAX_FILE_BYTES = documents.MAX_REPORT_BYTES


@dataclass(frozen=True)
class Row:
    """One interval of one version: counts are increments during ``(time - span, time]``."""

    line: int
    time: float
    version: Version
    requests: float
    errors: float
    latency_p95_ms: float | None
    memory_mb: float | None
    latency_p50_ms: float | None = None
    latency_mean_ms: float | None = None
    cpu_percent: float | None = None
    connections: float | None = None
    unauthorized: float | None = None
    span: float | None = None  # seconds since this version's previous row
    buckets: Buckets = ()  # cumulative (le seconds, count), ending at +Inf; () unmeasured


@dataclass(frozen=True)
class Recording:
    """A whole file: its rows in time order and the optional columns it has."""

    source: str
    rows: tuple[Row, ...]
    columns: frozenset[str]
    rfc3339: bool  # times were RFC 3339 (now seconds since the epoch)
    bounds: tuple[float, ...] = ()  # histogram bucket bounds, seconds, ending at +Inf

    def step(self, version: Version) -> float | None:
        """The median time between rows of one version (None with fewer than 2 rows)."""
        spans = [row.span for row in self.rows if row.version == version and row.span]
        return statistics.median(spans) if spans else None


def read_recording(path: str | Path) -> Recording:
    """Read and validate a replay file; raise :class:`InputError` on the first problem."""
    text = read_text(path, "recording", max_bytes=MAX_FILE_BYTES)
    return parse_recording(text, source=str(path))


def parse_recording(text: str, *, source: str = "<replay>") -> Recording:
    """Validate replay CSV held in memory."""
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InputError(f"{source}:1: header: empty file, expected {','.join(REQUIRED)}")
    header_line, header_text = lines[0]
    header = _header(_fields(header_text), source, header_line)
    bounds = recording_buckets.header_bounds(header, f"{source}:{header_line}: header")
    rows: list[Row] = []
    rfc3339: bool | None = None
    for number, line in lines[1:]:
        where = f"{source}:{number}"
        cells = _fields(line)
        if len(cells) != len(header):
            raise InputError(f"{where}: expected {len(header)} fields, got {len(cells)}")
        record = dict(zip(header, cells, strict=True))
        time, is_rfc3339 = _time(record["time"], where)
        if rfc3339 is None:
            rfc3339 = is_rfc3339
        elif is_rfc3339 != rfc3339:
            kind = "RFC 3339 times" if rfc3339 else "seconds since start"
            raise InputError(f"{where}: time: expected {kind} like the first row")
        row = _row(record, number, time, where)
        buckets = recording_buckets.row_buckets(
            record, bounds, requests=row.requests, where=where, number=_number
        )
        rows.append(replace(row, buckets=buckets) if buckets else row)
    _check_order(rows, source)
    recording = Recording(
        source=source,
        rows=tuple(_with_spans(rows)),
        columns=frozenset(header),
        rfc3339=bool(rfc3339),
        bounds=recording_buckets.full_bounds(bounds),
    )
    _check_span(recording)
    return recording


def _fields(line: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([line]))]


def _header(names: list[str], source: str, line: int) -> list[str]:
    where = f"{source}:{line}: header"
    known = ", ".join((*REQUIRED, *OPTIONAL, "le_<seconds>"))
    for name in names:
        bucket = recording_buckets.is_bucket_column(name)
        if name not in REQUIRED and name not in OPTIONAL and not bucket:
            raise InputError(f"{where}: unknown column {name!r} (known: {known})")
        if names.count(name) > 1:
            raise InputError(f"{where}: column {name!r} appears twice")
    has_buckets = any(recording_buckets.is_bucket_column(name) for name in names)
    for name in REQUIRED:
        if name not in names and not (has_buckets and name in _OPTIONAL_WITH_BUCKETS):
            raise InputError(f"{where}: missing column {name!r} (required: {','.join(REQUIRED)})")
    return names


def _time(cell: str, where: str) -> tuple[float, bool]:
    if not cell:
        raise InputError(f"{where}: time: expected seconds since start or an RFC 3339 time")
    try:
        seconds = float(cell)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            raise InputError(f"{where}: time: expected seconds since start >= 0, got {cell!r}")
        return seconds, False
    try:
        moment = datetime.fromisoformat(cell)
    except ValueError:
        raise InputError(
            f"{where}: time: expected seconds since start or an RFC 3339 time "
            f"(e.g. 2025-06-26T10:00:00Z), got {cell!r}"
        ) from None
    if moment.tzinfo is None:
        raise InputError(f"{where}: time: expected a UTC offset (e.g. Z) in {cell!r}")
    return moment.timestamp(), True


def _row(record: dict[str, str], line: int, time: float, where: str) -> Row:
    for name in _MUST_BE_FILLED:
        if not record[name]:
            raise InputError(f"{where}: {name}: expected a value, the cell is empty")
    try:
        version = Version(record["version"].lower())
    except ValueError:
        raise InputError(
            f"{where}: version: expected stable or canary, got {record['version']!r}"
        ) from None
    values = {
        name: _number(record[name], name, where)
        for name in REQUIRED[2:] + OPTIONAL
        if name in record
    }
    requests = values["requests"]
    assert requests is not None  # noqa: S101 filled, checked above
    for name in ("errors", "unauthorized"):
        count = values.get(name)
        if count is not None and count > requests:
            raise InputError(
                f"{where}: {name}: expected at most requests ({requests:g}), got {count:g}"
            )
    errors = values["errors"]
    assert errors is not None  # noqa: S101 a required column, checked above
    return Row(
        line=line,
        time=time,
        version=version,
        requests=requests,
        errors=errors,
        latency_p95_ms=values.get("latency_p95_ms"),  # optional when the file has buckets
        memory_mb=values.get("memory_mb"),
        latency_p50_ms=values.get("latency_p50_ms"),
        latency_mean_ms=values.get("latency_mean_ms"),
        cpu_percent=values.get("cpu_percent"),
        connections=values.get("connections"),
        unauthorized=values.get("unauthorized"),
    )


def _number(cell: str, name: str, where: str) -> float | None:
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
        shown = "a number"
    else:
        shown = "a finite number"
    if not math.isfinite(value):
        raise InputError(f"{where}: {name}: expected {shown}, got {cell!r}")
    if value < 0:
        counted = name in COUNTS or recording_buckets.is_bucket_column(name)
        what = "count" if counted else "value"
        raise InputError(f"{where}: {name}: expected a non-negative {what}, got {cell!r}")
    return value


def _check_order(rows: Sequence[Row], source: str) -> None:
    seen: set[tuple[float, Version]] = set()
    previous: Row | None = None
    for row in rows:
        where = f"{source}:{row.line}: time"
        if previous is not None and row.time < previous.time:
            raise InputError(
                f"{where}: expected rows in time order, but this row is earlier "
                f"than line {previous.line}"
            )
        if (row.time, row.version) in seen:
            raise InputError(f"{where}: a second {row.version.value} row for the same time")
        seen.add((row.time, row.version))
        previous = row


def _check_span(recording: Recording) -> None:
    """Refuse a recording a backtest could not walk through in bounded time and memory."""
    if not recording.rows:
        return
    first, last = recording.rows[0], recording.rows[-1]
    span = last.time - first.time
    where = f"{recording.source}:{last.line}: time"
    if span > MAX_SPAN_SECONDS:
        raise InputError(
            f"{where}: the rows span {_days(span)} (line {first.line} to line {last.line}); "
            f"a recording covers at most {_days(MAX_SPAN_SECONDS)}: split the file"
        )
    step = max((s for v in Version if (s := recording.step(v)) is not None), default=None)
    if step is not None and span / step > MAX_STEPS:
        raise InputError(
            f"{where}: rows every {step:g}s over {_days(span)} make {span / step:,.0f} steps; "
            f"a backtest walks at most {MAX_STEPS:,}: split the file or thin its rows"
        )


def _days(seconds: float) -> str:
    return f"{seconds / 86400:,.1f} days" if seconds >= 86400 else f"{seconds:,.0f} s"


def _with_spans(rows: Sequence[Row]) -> list[Row]:
    """Each row's span; a version's first row gets its median step (unknown alone)."""
    last: dict[Version, float] = {}
    spanned = []
    for row in rows:
        before = last.get(row.version)
        spanned.append(replace(row, span=None if before is None else row.time - before))
        last[row.version] = row.time
    steps: dict[Version, float] = {}
    for version in Version:
        spans = [r.span for r in spanned if r.version == version and r.span is not None]
        if spans:
            steps[version] = statistics.median(spans)
    return [
        replace(row, span=steps.get(row.version)) if row.span is None else row for row in spanned
    ]
