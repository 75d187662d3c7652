"""Datadog: the policy's metrics queries through the scalar query API (``/api/v2/query/scalar``).

Each query (``sum:trace.http.request.hits{service:shop,version:$version}.as_count()``)
is reduced to one number over the window by its ``aggregator`` (``sum`` for
counts, ``avg`` otherwise unless the policy says). The query must give one
group: several (a ``by {...}``) are an error measurement; no value, or null,
is no data. The API key and application key come from the variables the
policy names and are sent as ``DD-API-KEY`` and ``DD-APPLICATION-KEY``;
a 403 names those fields, never the keys.

Placeholders: ``$version`` (the version's tag value), ``$window`` (seconds),
``$start`` and ``$end`` (Unix seconds).

Datadog cannot be reached from where rollguard is tested: the tests check this
module against the answer documents of Datadog's API reference.
"""

from __future__ import annotations

import math
from typing import Any, Unpack

from rollguard.metrics.http import (
    QueryFailed,
    env_secret,
    shown,
)
from rollguard.metrics.http_query import EdgeOptions, HttpQueryProvider
from rollguard.metrics.influxdb import number
from rollguard.metrics.templated import Window, fill
from rollguard.policy.sources import DatadogMetricQuery, DatadogSource


class DatadogProvider(HttpQueryProvider[DatadogMetricQuery]):
    """Answers rollguard's queries with the policy's Datadog metrics queries."""

    def __init__(self, source: DatadogSource, **edge: Unpack[EdgeOptions]) -> None:
        super().__init__(
            source,
            source.queries,
            source.signals,
            name="Datadog",
            address=str(source.address),
            headers={
                "DD-API-KEY": env_secret(source.api_key_env, "metrics.api_key_env"),
                "DD-APPLICATION-KEY": env_secret(source.app_key_env, "metrics.app_key_env"),
            },
            credentials_field="metrics.api_key_env and metrics.app_key_env",
            **edge,
        )

    async def run(self, query: DatadogMetricQuery, window: Window, *, count: bool) -> float:
        text = fill(
            query.query,
            {
                "version": window.label,
                "window": f"{round(window.seconds)}",
                "start": math.floor(window.start),
                "end": math.floor(window.end),
            },
        )
        request = {
            "data": {
                "type": "scalar_request",
                "attributes": {
                    "from": math.floor(window.start * 1000),
                    "to": math.floor(window.end * 1000),
                    "formulas": [{"formula": "a"}],
                    "queries": [
                        {
                            "data_source": "metrics",
                            "name": "a",
                            "query": text,
                            "aggregator": query.aggregator or ("sum" if count else "avg"),
                        }
                    ],
                },
            }
        }
        answer = await self._edge.request("POST", "/api/v2/query/scalar", json=request)
        body = answer.json(f"Datadog at {self._edge.shown}")
        if answer.status_code != 200:
            errors = body.get("errors") if isinstance(body, dict) else None
            raise QueryFailed(f"Datadog rejected the query: {shown(errors or body)}")
        return _value(body, text)


def _value(body: Any, query: str) -> float:
    """The one value of the formula's column."""
    columns = _get(body, "data", "attributes", "columns")
    numbers = [c for c in columns or [] if isinstance(c, dict) and c.get("type") == "number"]
    if len(numbers) != 1:
        raise QueryFailed(f"Datadog answered without one number column: {shown(body)}")
    values = numbers[0].get("values")
    if not isinstance(values, list):
        raise QueryFailed(f"Datadog answered a column without values: {shown(numbers[0])}")
    if not values:
        raise QueryFailed(f"no series matched {shown(query)}", no_data=True)
    if len(values) > 1:
        raise QueryFailed(
            f"{shown(query)} gave {len(values)} groups; aggregate them to one (drop by {{...}})"
        )
    return number(values[0], "Datadog", query)


def _get(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body
