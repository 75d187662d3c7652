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
import logging
import math
import os
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rollguard import documents, promql
from rollguard.errors import ProviderError
from rollguard.metrics.scrape import display_url
from rollguard.policy.model import PrometheusSource
from rollguard.retry import SETTINGS, Sleep, call_with_retries, retry_after_seconds
from rollguard.signals import Measurement, Query

logger = logging.getLogger("rollguard.metrics.prometheus")


class _Failed(Exception):
    """One query could not be answered; becomes an ERROR or NO_DATA measurement.

    ``retry`` marks a failure that asking again may fix (unreachable, timeout, 429,
    5xx); ``retry_after_seconds`` is the wait the server asked for, if any.
    """

    def __init__(
        self,
        reason: str,
        *,
        no_data: bool = False,
        retry: bool = False,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.no_data = no_data
        self.retry = retry
        self.retry_after_seconds = retry_after_seconds


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
    ) -> None:
        self._source = source
        self._retry = SETTINGS["prometheus"].with_retries(
            source.retries, backoff_seconds=backoff_seconds
        )
        self._sleep = sleep
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=source.timeout, verify=_verify(source), auth=_auth(source)
        )
        self._base = str(source.address).rstrip("/")
        # For messages: an address may carry user:password, which must never be printed.
        self._shown = display_url(self._base)

    async def collect(self, *, now: float) -> None:
        """Prometheus scrapes by itself; nothing to refresh."""

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query, evaluated at ``now``; the queries run concurrently."""
        return list(await asyncio.gather(*(self._measure_one(q, now) for q in queries)))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _measure_one(self, query: Query, now: float) -> Measurement:
        expressions = promql.build(query, self._source)
        try:
            if expressions.requests is not None and expressions.requests != expressions.value:
                samples, request_samples = await asyncio.gather(
                    self._instant(expressions.value, now), self._instant(expressions.requests, now)
                )
                requests = _count(request_samples)
            else:
                samples = await self._instant(expressions.value, now)
                requests = None
            if expressions.per_bucket:
                return _buckets(query, now, samples, expressions.value)
            value = _single(samples, expressions.value)
            if expressions.requests == expressions.value:
                requests = value
        except _Failed as failed:
            if failed.no_data:
                return Measurement.no_data(query, now, failed.reason)
            return Measurement.error(query, now, failed.reason)
        return Measurement.ok(query, now, value, requests=requests)

    async def _instant(self, expression: str, at: float) -> list[Sample]:
        data = await self._get("/api/v1/query", {"query": expression, "time": at})
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "scalar":
            return [Sample({}, _point(result))]
        if kind != "vector" or not isinstance(result, list):
            raise _Failed(f"expected an instant vector from {expression!r}, got {_shown(kind)}")
        return [_sample(item) for item in result]

    async def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET with retries (rollguard.retry); return the ``data`` of a successful answer."""
        url = self._base + path

        async def attempt() -> _Answer:
            try:
                response = await _capped_get(self._client, url, params, self._shown)
            except httpx.TimeoutException as exc:
                reason = f"Prometheus at {self._shown} did not answer in time ({exc})"
                raise _Failed(reason, retry=True) from exc
            except httpx.TransportError as exc:
                reason = f"cannot reach Prometheus at {self._shown}: {exc}"
                raise _Failed(reason, retry=True) from exc
            if response.status_code == 429 or response.status_code >= 500:
                raise _Failed(
                    _http_reason(response, self._shown),
                    retry=True,
                    retry_after_seconds=retry_after_seconds(response.headers.get("Retry-After")),
                )
            return response

        response = await call_with_retries(
            attempt,
            settings=self._retry,
            retry_on=lambda exc: isinstance(exc, _Failed) and exc.retry,
            sleep=self._sleep,
        )
        return _data(response, self._shown)


@dataclass(frozen=True)
class _Answer:
    """A response read within the size limit."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


async def _capped_get(
    client: httpx.AsyncClient, url: str, params: Mapping[str, Any], shown: str
) -> _Answer:
    """GET, reading the body (decompressed) no further than the limit."""
    limit = documents.MAX_ANSWER_BYTES
    async with client.stream("GET", url, params=dict(params)) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise _Failed(f"Prometheus at {shown} answered more than {limit:,} bytes; refused")
    return _Answer(response.status_code, response.headers, bytes(body))


def _data(response: _Answer, base: str) -> dict[str, Any]:
    """The ``data`` of a Prometheus API answer, or the reason it has none."""
    if response.status_code in (401, 403):
        raise _Failed(
            f"Prometheus at {base} refused the credentials (HTTP {response.status_code}); "
            "check metrics.auth"
        )
    try:
        body = documents.load_json(response.content, source=f"Prometheus at {base}", what="answer")
    except documents.DocumentError as exc:
        if response.status_code >= 400:
            raise _Failed(_http_reason(response, base)) from exc
        raise _Failed(str(exc)) from exc
    if not isinstance(body, dict):
        raise _Failed(f"Prometheus at {base} answered something that is not an API response")
    if body.get("status") != "success":
        kind = _shown(body.get("errorType", "error"))
        raise _Failed(f"Prometheus rejected the query ({kind}): {_shown(body.get('error', '?'))}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise _Failed(f"Prometheus at {base} answered without data")
    return data


def _http_reason(response: _Answer, base: str) -> str:
    return f"Prometheus at {base} answered HTTP {response.status_code}: {_shown(response.text)}"


def _shown(raw: object, limit: int = 200) -> str:
    """Part of an answer, fit for a reason: one line, at most ``limit`` characters."""
    text = " ".join(str(raw).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _point(raw: object) -> float:
    """The value of a ``[time, "value"]`` pair."""
    if not isinstance(raw, list) or len(raw) != 2:
        raise _Failed(f"Prometheus answered a sample that is not [time, value]: {_shown(raw)}")
    return _number(raw[1])


def _sample(item: object) -> Sample:
    """One series of an instant vector: ``{"metric": {...}, "value": [time, "value"]}``."""
    if not isinstance(item, dict):
        raise _Failed(f"Prometheus answered a series that is not an object: {_shown(item)}")
    return Sample(_labels(item), _point(item.get("value")))


def _labels(series: dict[str, Any]) -> Mapping[str, str]:
    labels = series.get("metric", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise _Failed(f"Prometheus answered labels that are not strings: {_shown(labels)}")
    return labels


def _number(raw: object) -> float:
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        try:
            return float(raw)
        except (ValueError, OverflowError):
            pass
    raise _Failed(f"Prometheus returned a value that is not a number: {_shown(repr(raw))}")


def _single(samples: list[Sample], expression: str) -> float:
    """The one value of an aggregated expression; several series mean a bad query."""
    if not samples:
        raise _Failed(f"no series matched {expression}", no_data=True)
    if len(samples) > 1:
        raise _Failed(
            f"{expression} returned {len(samples)} series; aggregate it to one (e.g. sum(...))"
        )
    value = samples[0].value
    if math.isnan(value):
        raise _Failed(f"{expression} is NaN (no traffic in the window?)", no_data=True)
    if math.isinf(value):
        raise _Failed(f"{expression} is {value}", no_data=True)
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


def _verify(source: PrometheusSource) -> bool | str:
    if source.insecure_skip_verify:
        logger.warning(
            "TLS certificate verification is OFF for Prometheus at %s "
            "(metrics.insecure_skip_verify); anyone on the path can forge metrics",
            source.address,
        )
        return False
    if source.ca_file is not None:
        if not os.path.isfile(source.ca_file):
            raise ProviderError(f"metrics.ca_file {source.ca_file!r} does not exist")
        return source.ca_file
    return True


def _auth(source: PrometheusSource) -> httpx.Auth | None:
    """Credentials from the environment variables the policy names; never logged."""
    auth = source.auth
    if auth.bearer_token_env is not None:
        token = _env(auth.bearer_token_env, "metrics.auth.bearer_token_env")
        return _Bearer(token)
    if auth.username is not None:
        if auth.password_env is None:
            raise ProviderError("metrics.auth.username needs metrics.auth.password_env")
        return httpx.BasicAuth(auth.username, _env(auth.password_env, "metrics.auth.password_env"))
    return None


def _env(name: str, field: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ProviderError(f"{field} names ${name}, which is not set in the environment")
    return value


class _Bearer(httpx.Auth):
    """``Authorization: Bearer <token>``; the token never appears in reprs or logs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "_Bearer(<hidden>)"
