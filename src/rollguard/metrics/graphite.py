"""Graphite: the policy's render targets over ``/render?format=json``.

Each target must give one series (combine several with ``sumSeries``,
``maxSeries`` ...); its points inside the window are reduced to one number by
the query's ``aggregate`` (``sum`` for counts, ``average`` for the rest unless
the policy says otherwise). No series, or only nulls, is no data; several
series are an error measurement saying so. ``noCache`` is always sent, so a
cached render never stands in for the present.

Placeholders: ``$version`` (a path node or tag value), ``$window`` (an interval
such as ``300s``, for ``summarize``), ``$start`` and ``$end`` (Unix seconds).
"""

from __future__ import annotations

import math
from typing import Unpack

from rollguard.metrics.http import (
    QueryFailed,
    auth_from,
    shown,
)
from rollguard.metrics.http_query import EdgeOptions, HttpQueryProvider
from rollguard.metrics.templated import Window, aggregate, fill
from rollguard.policy.sources import GraphiteSource, GraphiteTarget


class GraphiteProvider(HttpQueryProvider[GraphiteTarget]):
    """Answers rollguard's queries with the policy's Graphite targets."""

    def __init__(self, source: GraphiteSource, **edge: Unpack[EdgeOptions]) -> None:
        super().__init__(
            source,
            source.queries,
            source.signals,
            name="Graphite",
            address=str(source.address),
            auth=auth_from(source.auth),
            **edge,
        )

    async def run(self, query: GraphiteTarget, window: Window, *, count: bool) -> float:
        start, end = math.floor(window.start), math.floor(window.end)
        target = fill(
            query.target,
            {
                "version": window.label,
                "window": f"{round(window.seconds)}s",
                "start": start,
                "end": end,
            },
        )
        params = {
            "target": target,
            "from": start,
            "until": end,
            "format": "json",
            "noCache": "true",
        }
        answer = await self._edge.request("GET", "/render", params=params)
        if answer.status_code != 200:  # graphite-web answers 400 with its reason as text
            raise QueryFailed(f"Graphite rejected the target: {shown(answer.text)}")
        series = answer.json(f"Graphite at {self._edge.shown}")
        if not isinstance(series, list):
            raise QueryFailed(f"Graphite answered {shown(series)}, not a list of series")
        if not series:
            raise QueryFailed(f"no series matched {shown(target)}", no_data=True)
        if len(series) > 1:
            raise QueryFailed(
                f"{shown(target)} gave {len(series)} series; combine them to one (sumSeries)"
            )
        how = query.aggregate or ("sum" if count else "average")
        return aggregate(_points(series[0], start, end), how)


def _points(series: object, start: int, end: int) -> list[float]:
    """The non-null values stamped inside ``(start, end]``, oldest first."""
    datapoints = series.get("datapoints") if isinstance(series, dict) else None
    if not isinstance(datapoints, list):
        raise QueryFailed(f"Graphite answered a series without datapoints: {shown(series)}")
    values = []
    for point in datapoints:
        if not isinstance(point, list) or len(point) != 2:
            raise QueryFailed(
                f"Graphite answered a point that is not [value, time]: {shown(point)}"
            )
        value, stamp = point
        if value is None or not isinstance(stamp, int | float) or not start < stamp <= end:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise QueryFailed(f"Graphite answered a value that is not a number: {shown(value)}")
        values.append(float(value))
    return values
