"""New Relic: the policy's NRQL through NerdGraph (``POST /graphql``).

Each NRQL query must reduce the window to one number in one row:
``SELECT count(*) FROM Transaction WHERE appName = 'shop' AND tags.version =
'$version' SINCE $start UNTIL $end``. The row's one value is the number (a
percentile's ``{"95": v}`` is unwrapped); no row or a null is no data; several
rows (``FACET``, ``TIMESERIES``) or values are an error measurement. NRQL
errors come back as GraphQL ``errors`` and are reported with New Relic's own
message. The user API key comes from the variable the policy names and is sent
as ``API-Key``.

Placeholders: ``$version``, ``$window`` (seconds), ``$start`` and ``$end``
(Unix milliseconds, as ``SINCE``/``UNTIL`` take them).

New Relic cannot be reached from where rollguard is tested: the tests check
this module against the answer documents of New Relic's NerdGraph docs.
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
from rollguard.policy.sources import NewRelicSource

#: The one GraphQL document rollguard sends; the account and NRQL are variables.
NRQL_DOCUMENT = (
    "query($accountId: Int!, $nrql: Nrql!) "
    "{ actor { account(id: $accountId) { nrql(query: $nrql) { results } } } }"
)


class NewRelicProvider(HttpQueryProvider[str]):
    """Answers rollguard's queries with the policy's NRQL."""

    def __init__(self, source: NewRelicSource, **edge: Unpack[EdgeOptions]) -> None:
        super().__init__(
            source,
            source.queries,
            source.signals,
            name="New Relic",
            address=str(source.address),
            headers={"API-Key": env_secret(source.api_key_env, "metrics.api_key_env")},
            credentials_field="metrics.api_key_env",
            **edge,
        )
        self._account = source.account_id

    async def run(self, query: str, window: Window, *, count: bool) -> float:
        nrql = fill(
            query,
            {
                "version": window.label,
                "window": f"{round(window.seconds)}",
                "start": math.floor(window.start * 1000),
                "end": math.floor(window.end * 1000),
            },
        )
        request = {
            "query": NRQL_DOCUMENT,
            "variables": {"accountId": self._account, "nrql": nrql},
        }
        answer = await self._edge.request("POST", self._edge.base, json=request)
        body = answer.json(f"New Relic at {self._edge.shown}")
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            messages = [e.get("message", e) if isinstance(e, dict) else e for e in errors]
            raise QueryFailed(
                f"New Relic rejected the query: {shown('; '.join(map(str, messages)))}"
            )
        if answer.status_code != 200:
            raise QueryFailed(self._edge.http_reason(answer))
        return _value(body, nrql)


def _value(body: Any, nrql: str) -> float:
    results = body
    for key in ("data", "actor", "account", "nrql", "results"):
        results = results.get(key) if isinstance(results, dict) else None
    if not isinstance(results, list):
        raise QueryFailed(f"New Relic answered without NRQL results: {shown(body)}")
    if not results:
        raise QueryFailed(f"no rows from {shown(nrql)}", no_data=True)
    if len(results) > 1:
        raise QueryFailed(
            f"{shown(nrql)} returned {len(results)} rows; reduce it to one (no FACET or TIMESERIES)"
        )
    return number(_one(results[0], nrql), "New Relic", nrql)


def _one(row: object, nrql: str) -> object:
    """The single value of a row, unwrapping ``{"percentile.duration": {"95": v}}``."""
    while isinstance(row, dict):
        values = [v for k, v in row.items() if k not in ("beginTimeSeconds", "endTimeSeconds")]
        if len(values) != 1:
            raise QueryFailed(f"{shown(nrql)} returned {len(values)} values in its row; select one")
        row = values[0]
    return row
