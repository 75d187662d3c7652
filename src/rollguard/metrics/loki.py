"""Grafana Loki: the policy's LogQL metric queries over ``/loki/api/v1/query``.

Each query is an instant LogQL metric query reduced to one series, such as
``sum(count_over_time({app="shop", version="$version"} |= "status=5" [$window]))``;
it is evaluated at the window's end. Loki answers in Prometheus' format: no
series is no data, several are an error measurement saying so. A query Loki
cannot parse is an error carrying Loki's own message. ``tenant`` is sent as
``X-Scope-OrgID`` for a multi-tenant Loki.

Placeholders: ``$version`` (the version's label value), ``$window`` (a range
such as ``300s``), ``$start`` and ``$end`` (Unix seconds).
"""

from __future__ import annotations

import math
from typing import Any, Unpack

from rollguard.metrics.http import (
    Answer,
    QueryFailed,
    auth_from,
    shown,
)
from rollguard.metrics.http_query import EdgeOptions, HttpQueryProvider
from rollguard.metrics.influxdb import number
from rollguard.metrics.templated import Window, fill
from rollguard.policy.sources import LokiSource


class LokiProvider(HttpQueryProvider[str]):
    """Answers rollguard's queries with the policy's LogQL."""

    def __init__(self, source: LokiSource, **edge: Unpack[EdgeOptions]) -> None:
        super().__init__(
            source,
            source.queries,
            source.signals,
            name="Loki",
            address=str(source.address),
            auth=auth_from(source.auth),
            headers={"X-Scope-OrgID": source.tenant} if source.tenant else None,
            **edge,
        )

    async def run(self, query: str, window: Window, *, count: bool) -> float:
        logql = fill(
            query,
            {
                "version": window.label,
                "window": f"{max(1, round(window.seconds))}s",
                "start": math.floor(window.start),
                "end": math.floor(window.end),
            },
        )
        params = {"query": logql, "time": str(round(window.end * 1e9))}
        answer = await self._edge.request("GET", "/loki/api/v1/query", params=params)
        return _value(self._data(answer), logql)

    def _data(self, answer: Answer) -> dict[str, Any]:
        """The ``data`` of a successful answer; Loki's own message otherwise."""
        if answer.status_code != 200:
            try:
                body = answer.json("Loki")
            except QueryFailed:
                body = None
            message = body.get("error") if isinstance(body, dict) else None
            raise QueryFailed(f"Loki rejected the query: {shown(message or answer.text)}")
        body = answer.json(f"Loki at {self._edge.shown}")
        if not isinstance(body, dict) or body.get("status") != "success":
            raise QueryFailed(f"Loki answered {shown(body)}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryFailed(f"Loki at {self._edge.shown} answered without data")
        return data


def _value(data: dict[str, Any], logql: str) -> float:
    """The one number of an instant metric query."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _point(result)
    if kind == "streams":
        raise QueryFailed(f"{shown(logql)} returned log lines; use a metric query (rate, sum...)")
    if kind != "vector" or not isinstance(result, list):
        raise QueryFailed(f"expected an instant vector from {shown(logql)}, got {shown(kind)}")
    if not result:
        raise QueryFailed(f"no series matched {shown(logql)}", no_data=True)
    if len(result) > 1:
        raise QueryFailed(
            f"{shown(logql)} returned {len(result)} series; aggregate them to one (sum(...))"
        )
    series = result[0]
    return _point(series.get("value") if isinstance(series, dict) else None)


def _point(raw: object) -> float:
    if not isinstance(raw, list) or len(raw) != 2:
        raise QueryFailed(f"Loki answered a sample that is not [time, value]: {shown(raw)}")
    return number(raw[1], "Loki", "the sample")
