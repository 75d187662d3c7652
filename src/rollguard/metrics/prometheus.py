"""The production metrics provider: PromQL over a Prometheus server's HTTP API.

Expressions come from :mod:`rollguard.promql`. Everything that can go
wrong on the way (server down, timeout, bad credentials, bad PromQL, an empty
result, NaN or infinity) becomes a ``NO_DATA`` or ``ERROR`` measurement with
the reason; nothing is ever turned into a number. Transport failures, 429 and
5xx answers are retried (:mod:`rollguard.retry`: exponential backoff, or the
wait a ``Retry-After`` header asks for); 4xx answers (bad query, bad
credentials) are not, since asking again cannot help.

An answer is untrusted input: it is read no further than
:data:`~rollguard.documents.MAX_ANSWER_BYTES`, parsed within the depth limit of
:mod:`rollguard.documents`, and any shape other than Prometheus' own is an
``ERROR`` measurement naming what was wrong — never an exception that could
end a watch.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from rollguard import documents, promql
from rollguard.metrics.http import Answer, HttpEdge, QueryFailed, auth_from, verify_option
from rollguard.policy.model import PrometheusSource
from rollguard.policy.units import parse_duration
from rollguard.retry import SETTINGS, Sleep
from rollguard.signals import Measurement, Query


@dataclass(frozen=True)
class Sample:
    """One series' value from an instant query."""

    labels: Mapping[str, str]
    value: float


class PrometheusProvider:
    """Answers rollguard queries with PromQL; one shared HTTP client per provider."""

    def __init__(
        self,
        source: PrometheusSource,
        *,
        client: httpx.AsyncClient | None = None,
        backoff_seconds: float | None = None,
        sleep: Sleep = asyncio.sleep,
        edge: HttpEdge | None = None,
    ) -> None:
        self._source = source
        self._edge = edge or prometheus_edge(
            source, client=client, backoff_seconds=backoff_seconds, sleep=sleep
        )
        self._built: dict[Query, promql.Expressions] = {}

    async def collect(self, *, now: float) -> None:
        """Prometheus scrapes by itself; nothing to refresh."""

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query, evaluated at ``now``; the queries run concurrently."""
        return list(await asyncio.gather(*(self._measure_one(q, now) for q in queries)))

    async def aclose(self) -> None:
        await self._edge.aclose()

    async def global_scrape_interval(self) -> float | None:
        """Seconds of Prometheus' global ``scrape_interval`` (``/api/v1/status/config``).

        None when it cannot be read (a server without that API, an answer not shaped
        as Prometheus' own): it only decides a warning, never a measurement.
        """
        try:
            answer = await self._edge.request("GET", "/api/v1/status/config")
            data = _data(answer, self._edge)
        except QueryFailed:
            return None
        return _global_scrape_interval(data.get("yaml"))

    async def _measure_one(self, query: Query, now: float) -> Measurement:
        expressions = self._built.get(query)
        if expressions is None:  # the same queries come back every interval
            expressions = self._built[query] = promql.build(query, self._source)
        try:
            if expressions.requests is not None and expressions.requests != expressions.value:
                samples, request_samples = await asyncio.gather(
                    self._samples(query, expressions.value, now, requests=False),
                    self._samples(query, expressions.requests, now, requests=True),
                )
                requests = _count(request_samples)
            else:
                samples = await self._samples(query, expressions.value, now, requests=False)
                requests = None
            if expressions.per_bucket:
                return _buckets(query, now, samples, expressions.value)
            value = _single(samples, expressions.value)
            if expressions.requests == expressions.value:
                requests = value
        except QueryFailed as failed:
            if failed.no_data:
                return Measurement.no_data(query, now, failed.reason)
            return Measurement.error(query, now, failed.reason)
        return Measurement.ok(query, now, value, requests=requests)

    async def _samples(
        self, query: Query, expression: str, at: float, *, requests: bool
    ) -> list[Sample]:
        """The series answering ``expression`` (the value's, or the ``requests`` behind it)
        of ``query``; :mod:`rollguard.metrics.batching` answers many queries at once here."""
        return await instant(self._edge, expression, at)


def prometheus_edge(
    source: PrometheusSource,
    *,
    client: httpx.AsyncClient | None = None,
    backoff_seconds: float | None = None,
    sleep: Sleep = asyncio.sleep,
) -> HttpEdge:
    """The HTTP edge to a source's Prometheus: its timeout, retries, credentials and TLS."""
    address = str(source.address)
    return HttpEdge(
        name="Prometheus",
        base=address,
        timeout=source.timeout,
        retry=SETTINGS["prometheus"].with_retries(source.retries, backoff_seconds=backoff_seconds),
        auth=auth_from(source.auth),
        verify=verify_option(
            name="Prometheus",
            address=address,
            ca_file=source.ca_file,
            insecure=source.insecure_skip_verify,
        ),
        client=client,
        sleep=sleep,
    )


async def instant(
    edge: HttpEdge, expression: str, at: float, *, shown: str | None = None
) -> list[Sample]:
    """The series of an instant query at ``at``; ``shown`` names a long expression in reasons.

    Long expressions (a batch of deployments) are sent as a form (POST), which
    Prometheus accepts as it does GET, so no URL grows past a proxy's limit.
    """
    params = {"query": expression, "time": at}
    if len(expression) > _LONGEST_GET:
        answer = await edge.request(
            "POST",
            "/api/v1/query",
            content=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        answer = await edge.request("GET", "/api/v1/query", params=params)
    data = _data(answer, edge)
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        return [Sample({}, _point(result))]
    if kind != "vector" or not isinstance(result, list):
        what = shown or expression
        raise QueryFailed(f"expected an instant vector from {what!r}, got {_shown(kind)}")
    return [_sample(item) for item in result]


#: Longer expressions are POSTed (a URL of a few kilobytes is safe everywhere).
_LONGEST_GET = 2048


def _data(answer: Answer, edge: HttpEdge) -> dict[str, Any]:
    """The ``data`` of a Prometheus API answer, or the reason it has none."""
    body = answer.json(f"Prometheus at {edge.shown}")
    if not isinstance(body, dict):
        raise QueryFailed(
            f"Prometheus at {edge.shown} answered something that is not an API answer"
        )
    if body.get("status") != "success":
        kind = _shown(body.get("errorType", "error"))
        message = _shown(body.get("error", "?"))
        raise QueryFailed(f"Prometheus rejected the query ({kind}): {message}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise QueryFailed(f"Prometheus at {edge.shown} answered without data")
    return data


def _global_scrape_interval(text: object) -> float | None:
    """``global.scrape_interval`` of a loaded configuration (Prometheus writes its default)."""
    if not isinstance(text, str):
        return None
    try:
        config = documents.load_yaml(
            text, source="Prometheus' configuration", max_bytes=documents.MAX_ANSWER_BYTES
        )
        return parse_duration(config["global"]["scrape_interval"])
    except (documents.DocumentError, TypeError, KeyError, ValueError):
        return None


def _shown(raw: object, limit: int = 200) -> str:
    """Part of an answer, fit for a reason: one line, at most ``limit`` characters."""
    text = " ".join(str(raw).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _point(raw: object) -> float:
    """The value of a ``[time, "value"]`` pair."""
    if not isinstance(raw, list) or len(raw) != 2:
        raise QueryFailed(f"Prometheus answered a sample that is not [time, value]: {_shown(raw)}")
    return _number(raw[1])


def _sample(item: object) -> Sample:
    """One series of an instant vector: ``{"metric": {...}, "value": [time, "value"]}``."""
    if not isinstance(item, dict):
        raise QueryFailed(f"Prometheus answered a series that is not an object: {_shown(item)}")
    return Sample(_labels(item), _point(item.get("value")))


def _labels(series: dict[str, Any]) -> Mapping[str, str]:
    labels = series.get("metric", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise QueryFailed(f"Prometheus answered labels that are not strings: {_shown(labels)}")
    return labels


def _number(raw: object) -> float:
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        try:
            return float(raw)
        except (ValueError, OverflowError):
            pass
    raise QueryFailed(f"Prometheus returned a value that is not a number: {_shown(repr(raw))}")


def _single(samples: list[Sample], expression: str) -> float:
    """The one value of an aggregated expression; several series mean a bad query."""
    if not samples:
        raise QueryFailed(f"no series matched {expression}", no_data=True)
    if len(samples) > 1:
        raise QueryFailed(
            f"{expression} returned {len(samples)} series; aggregate it to one (e.g. sum(...))"
        )
    value = samples[0].value
    if math.isnan(value):
        raise QueryFailed(f"{expression} is NaN (no traffic in the window?)", no_data=True)
    if math.isinf(value):
        raise QueryFailed(f"{expression} is {value}", no_data=True)
    return value


def _count(samples: list[Sample]) -> float | None:
    """The request count behind a value; unknown (None) rather than a guessed zero."""
    if len(samples) != 1 or not math.isfinite(samples[0].value):
        return None
    return samples[0].value


def _buckets(query: Query, now: float, samples: list[Sample], expression: str) -> Measurement:
    """Histogram bucket increases keyed by upper bound; the value is the request count."""
    buckets: dict[float, float] = {}
    for sample in samples:
        bound = sample.labels.get("le")
        if bound is None:
            return Measurement.error(query, now, f"{expression} returned a series without le")
        if math.isnan(sample.value):
            return Measurement.no_data(query, now, f"{expression} has a NaN bucket")
        try:
            buckets[float(bound)] = sample.value
        except ValueError:
            return Measurement.error(query, now, f"{expression} returned le={_shown(bound)!r}")
    if math.inf not in buckets:
        return Measurement.no_data(query, now, f"no +Inf bucket in {expression}")
    total = buckets[math.inf]
    return Measurement.ok(query, now, total, requests=total, buckets=buckets)
