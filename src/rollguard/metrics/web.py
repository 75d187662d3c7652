"""``web``: any HTTP endpoint that answers JSON, and a JSONPath to the number in it.

Argo Rollouts' Web provider is the model: a URL (with placeholders), an
optional POST body, headers from the policy or from environment variables
(``headers_env``: a token never sits in the policy), and a JSONPath (RFC 9535,
by python-jsonpath) that must select exactly one value. No match or a null is
no data; several matches are an error; a number or a numeric string is the
value, anything else an error.

Placeholders: ``$version`` (the version's label), ``$window`` (seconds),
``$start`` and ``$end`` (Unix seconds) — in the URL and the body.
"""

from __future__ import annotations

from typing import Any, Unpack

import jsonpath

from rollguard.metrics.http import (
    QueryFailed,
    display_url,
    env_secret,
    shown,
)
from rollguard.metrics.http_query import EdgeOptions, HttpQueryProvider
from rollguard.metrics.influxdb import number
from rollguard.metrics.templated import Window, fill
from rollguard.policy.sources import WebQuery, WebSource


class WebProvider(HttpQueryProvider[WebQuery]):
    """Answers rollguard's queries from the policy's JSON endpoints."""

    def __init__(self, source: WebSource, **edge: Unpack[EdgeOptions]) -> None:
        headers = dict(source.headers)
        for header, variable in source.headers_env.items():
            headers[header] = env_secret(variable, f"metrics.headers_env.{header}")
        super().__init__(
            source,
            source.queries,
            source.signals,
            name="the web endpoint",
            address="",
            headers=headers,
            credentials_field="metrics.headers_env",
            **edge,
        )
        self._paths: dict[str, jsonpath.JSONPath | jsonpath.CompoundJSONPath] = {}

    async def run(self, query: WebQuery, window: Window, *, count: bool) -> float:
        values = {
            "version": window.label,
            "window": f"{window.seconds:g}",
            "start": f"{window.start:.3f}",
            "end": f"{window.end:.3f}",
        }
        url = fill(query.url, values)
        body = fill(query.body, values) if query.body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else None
        answer = await self._edge.request(query.method, url, content=body, headers=headers)
        where = display_url(url)
        if not 200 <= answer.status_code < 300:
            raise QueryFailed(self._edge.http_reason(answer, where))
        document = answer.json(f"the web endpoint {where}")
        found = self._path(query.json_path).findall(document)
        if not found:
            raise QueryFailed(f"{query.json_path} matched nothing at {where}", no_data=True)
        if len(found) > 1:
            raise QueryFailed(
                f"{query.json_path} matched {len(found)} values at {where}; it must select one"
            )
        return number(_one(found), f"the web endpoint {where}", query.json_path)

    def _path(self, expression: str) -> Any:
        if expression not in self._paths:
            self._paths[expression] = jsonpath.compile(expression)
        return self._paths[expression]


def _one(found: list[object]) -> object:
    value = found[0]
    if isinstance(value, dict | list):
        raise QueryFailed(f"the JSONPath selected {shown(value)}, not a number")
    return value
