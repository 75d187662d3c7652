"""Latency histogram buckets in the replay CSV: ``le_<seconds>`` columns.

A column ``le_0.25`` holds how many of the interval's requests took at most
0.25 s, cumulative like a Prometheus ``_bucket`` series with ``le="0.25"``;
``le_+Inf`` counts every request, so it must equal ``requests``. Bounds are
kept in seconds, the key unit of ``Signal.LATENCY_BUCKETS`` everywhere.

Checked as strictly as the rest of the file: a histogram that is not
cumulative, or counts more requests than the row has, would make the
sequential latency test answer for data that never existed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from rollguard.errors import InputError

PREFIX = "le_"
#: Floating-point slack for counts taken from Prometheus' ``increase``.
_RELATIVE_SLACK = 1e-9

#: ``(bound in seconds, cumulative count)``, ascending, always ending with ``+Inf``.
Buckets = tuple[tuple[float, float], ...]
ParseNumber = Callable[[str, str, str], float | None]


def is_bucket_column(name: str) -> bool:
    """Whether a header name is a histogram bucket column."""
    return name.startswith(PREFIX)


def header_bounds(names: Sequence[str], where: str) -> dict[str, float]:
    """Bucket column name → upper bound in seconds, ascending; empty without buckets."""
    bounds: dict[str, float] = {}
    for name in names:
        if not is_bucket_column(name):
            continue
        raw = name[len(PREFIX) :]
        try:
            bound = float(raw)
        except ValueError:
            bound = math.nan
        if math.isnan(bound) or bound < 0:
            raise InputError(
                f"{where}: column {name!r}: expected le_ and a bucket upper bound in "
                "seconds >= 0 (e.g. le_0.25, le_+Inf)"
            )
        same = next((other for other, b in bounds.items() if b == bound), None)
        if same is not None:
            raise InputError(f"{where}: column {name!r}: the same bucket as {same!r}")
        bounds[name] = bound
    if bounds and all(math.isinf(bound) for bound in bounds.values()):
        raise InputError(
            f"{where}: column {next(iter(bounds))!r}: expected at least one finite "
            "bucket bound besides le_+Inf (e.g. le_0.25)"
        )
    return dict(sorted(bounds.items(), key=lambda item: item[1]))


def full_bounds(bounds: Mapping[str, float]) -> tuple[float, ...]:
    """The bounds every row's buckets have: the columns' plus ``+Inf``."""
    if not bounds:
        return ()
    finite = [bound for bound in bounds.values() if math.isfinite(bound)]
    return (*finite, math.inf)


def row_buckets(
    record: Mapping[str, str],
    bounds: Mapping[str, float],
    *,
    requests: float,
    where: str,
    number: ParseNumber,
) -> Buckets:
    """One row's cumulative counts; ``()`` when its bucket cells are all empty.

    Without a ``le_+Inf`` column the ``+Inf`` bucket is ``requests``.
    """
    if not bounds or not any(record[name] for name in bounds):
        return ()
    slack = _RELATIVE_SLACK * max(requests, 1.0)
    counts: list[tuple[float, float]] = []
    previous: tuple[str, float] | None = None
    for name, bound in bounds.items():
        cell = record[name]
        count = number(cell, name, where)
        if count is None:
            raise InputError(
                f"{where}: {name}: expected a count like the row's other bucket cells "
                "(fill every le_ cell of a row, or none), the cell is empty"
            )
        if previous is not None and count < previous[1] - slack:
            raise InputError(
                f"{where}: {name}: expected at least {previous[0]} ({previous[1]:g}): "
                f"bucket counts are cumulative, got {cell!r}"
            )
        if math.isinf(bound) and abs(count - requests) > slack:
            raise InputError(
                f"{where}: {name}: expected requests ({requests:g}): the +Inf bucket "
                f"counts every request, got {cell!r}"
            )
        if count > requests + slack:
            raise InputError(
                f"{where}: {name}: expected at most requests ({requests:g}), got {cell!r}"
            )
        counts.append((bound, count))
        previous = (name, count)
    if not math.isinf(counts[-1][0]):
        counts.append((math.inf, requests))
    return tuple(counts)


def window_sums(rows_buckets: Sequence[Buckets]) -> dict[float, float] | None:
    """Per-bound sums over the rows that have buckets (None when none has).

    Every row of a file has the same bounds, so the sums stay cumulative.
    """
    present = [buckets for buckets in rows_buckets if buckets]
    if not present:
        return None
    bounds = [bound for bound, _ in present[0]]
    return {
        bound: math.fsum(buckets[index][1] for buckets in present)
        for index, bound in enumerate(bounds)
    }
