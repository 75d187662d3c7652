"""InfluxDB 1.x: the policy's InfluxQL over the ``/query`` HTTP API.

Each query must reduce the window to one number (``SELECT sum(...)``,
``percentile(...)``, ``last(...)``), in one series and one row: several series
(``GROUP BY`` a tag) or rows (``GROUP BY time``) are an error measurement
saying so, as several Prometheus series are. No series, or a null, is no data.

Placeholders: ``$version`` (the version's tag value, as written: quote it,
``'$version'``), ``$start`` and ``$end`` (the window's bounds as quoted RFC 3339
time literals: ``time > $start AND time <= $end``) and ``$window`` (a duration
literal such as ``300s``, for ``time > now() - $window``).
"""

from __future__ import annotations

from typing import Any, Unpack

from rollguard.metrics.http import (
    QueryFailed,
    auth_from,
    shown,
)
from rollguard.metrics.http_query import EdgeOptions, HttpQueryProvider
from rollguard.metrics.templated import Window, fill
from rollguard.policy.sources import InfluxDBSource
from rollguard.timestamps import rfc3339


class InfluxDBProvider(HttpQueryProvider[str]):
    """Answers rollguard's queries with the policy's InfluxQL."""

    def __init__(self, source: InfluxDBSource, **edge: Unpack[EdgeOptions]) -> None:
        super().__init__(
            source,
            source.queries,
            source.signals,
            name="InfluxDB",
            address=str(source.address),
            auth=auth_from(source.auth),
            **edge,
        )
        self._source = source

    async def run(self, query: str, window: Window, *, count: bool) -> float:
        statement = fill(query, placeholders(window))
        params = {"db": self._source.database, "q": statement, "epoch": "s"}
        if self._source.retention_policy is not None:
            params["rp"] = self._source.retention_policy
        answer = await self._edge.request("GET", "/query", params=params)
        body = answer.json(f"InfluxDB at {self._edge.shown}")
        if not isinstance(body, dict):
            raise QueryFailed(f"InfluxDB at {self._edge.shown} answered {shown(body)}")
        if "error" in body:  # a query InfluxDB could not parse (HTTP 400)
            raise QueryFailed(f"InfluxDB rejected the query: {shown(body['error'])}")
        if answer.status_code != 200:
            raise QueryFailed(self._edge.http_reason(answer))
        return _value(body, statement)


def placeholders(window: Window) -> dict[str, str]:
    """What each placeholder becomes in InfluxQL."""
    return {
        "version": window.label,
        "window": f"{round(window.seconds * 1000)}ms",
        "start": _time_literal(window.start),
        "end": _time_literal(window.end),
    }


def _time_literal(seconds: float) -> str:
    return "'" + rfc3339(seconds) + "'"


def _value(body: dict[str, Any], statement: str) -> float:
    """The one number of a one-statement answer."""
    results = body.get("results")
    if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
        raise QueryFailed(f"InfluxDB answered without one result: {shown(body)}")
    result = results[0]
    if "error" in result:  # e.g. "database not found: app"
        raise QueryFailed(f"InfluxDB rejected the query: {shown(result['error'])}")
    series = result.get("series") or []
    if not series:
        raise QueryFailed(f"no series matched {shown(statement)}", no_data=True)
    if len(series) > 1:
        raise QueryFailed(
            f"{shown(statement)} returned {len(series)} series; aggregate them to one "
            "(drop GROUP BY)"
        )
    rows = series[0].get("values") if isinstance(series[0], dict) else None
    if not isinstance(rows, list) or not rows:
        raise QueryFailed(f"no rows from {shown(statement)}", no_data=True)
    if len(rows) > 1:
        raise QueryFailed(
            f"{shown(statement)} returned {len(rows)} rows; reduce the window to one "
            "(an aggregate without GROUP BY time)"
        )
    row = rows[0]
    if not isinstance(row, list) or len(row) < 2:
        raise QueryFailed(f"InfluxDB answered a row without a value: {shown(row)}")
    return number(row[-1], "InfluxDB", statement)


def number(raw: object, backend: str, query: str) -> float:
    """A JSON number from ``backend``; null is no data, anything else an error."""
    if raw is None:
        raise QueryFailed(f"{shown(query)} is null (nothing in the window)", no_data=True)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            pass
    raise QueryFailed(f"{backend} returned a value that is not a number: {shown(repr(raw))}")
