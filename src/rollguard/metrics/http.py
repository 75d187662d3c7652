"""The one HTTP edge of the query-API providers: bounded reads, retries, credentials.

Every provider that asks a server over HTTP (Prometheus, InfluxDB, Graphite,
Loki, Datadog, New Relic, web) sends its requests through :class:`HttpEdge`,
so each gets the same guarantees, written once:

- an answer is read no further than :data:`~rollguard.documents.MAX_ANSWER_BYTES`;
- timeouts, refused connections, HTTP 429 and 5xx are retried through
  :mod:`rollguard.retry` (the ``metrics`` settings, or the provider's own),
  honouring ``Retry-After``; other answers are returned, since asking again
  cannot fix a bad query or bad credentials;
- 401 and 403 become a failure that names the provider and the field holding
  the credentials, never the credentials themselves;
- secrets come from environment variables the policy names; URLs are shown
  with any password masked.

Failures are :class:`QueryFailed`, which each provider turns into an ``ERROR``
or ``NO_DATA`` measurement: errors are data.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from rollguard import documents
from rollguard.errors import ProviderError
from rollguard.policy.sources import HttpAuth, HttpSource
from rollguard.retry import (
    SETTINGS,
    RetrySettings,
    Sleep,
    call_with_retries,
    retry_after_seconds,
)

logger = logging.getLogger("rollguard.metrics.http")


class QueryFailed(Exception):
    """One query could not be answered; becomes an ERROR (or NO_DATA) measurement.

    ``retry`` marks a failure that asking again may fix (unreachable, timeout, 429,
    5xx); ``retry_after_seconds`` is the wait the server asked for, if any;
    ``too_large`` an answer past the size limit (a smaller question may fit).
    """

    def __init__(
        self,
        reason: str,
        *,
        no_data: bool = False,
        retry: bool = False,
        retry_after_seconds: float | None = None,
        too_large: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.no_data = no_data
        self.retry = retry
        self.retry_after_seconds = retry_after_seconds
        self.too_large = too_large


def shown(raw: object, limit: int = 200) -> str:
    """Part of an answer, fit for a reason: one line, at most ``limit`` characters."""
    return documents.excerpt(" ".join(str(raw).split()), limit)


@dataclass(frozen=True)
class Answer:
    """A response read within the size limit."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self, source: str) -> Any:
        """The body as JSON (size and depth bounded), or :class:`QueryFailed` saying why not."""
        try:
            return documents.load_json(self.content, source=source, what="answer")
        except documents.DocumentError as exc:
            if self.status_code >= 400:
                reason = f"{source} answered HTTP {self.status_code}: {shown(self.text)}"
                raise QueryFailed(reason) from exc
            raise QueryFailed(str(exc)) from exc


class HttpEdge:
    """Requests to one server, for one provider (``name`` appears in every reason)."""

    def __init__(
        self,
        *,
        name: str,
        base: str,
        timeout: float,
        retry: RetrySettings,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        credentials_field: str = "metrics.auth",
    ) -> None:
        self.name = name
        self.base = base.rstrip("/")
        self.shown = display_url(self.base)
        self._retry = retry
        self._sleep = sleep
        self._credentials_field = credentials_field
        self._headers = dict(headers or {})
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=verify, auth=auth)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """The answer to one request (retried while retrying may help); 401/403 fail."""
        target = url if url.startswith(("http://", "https://")) else self.base + url
        where = self.shown or display_url(target)  # a provider without one base (web)
        sent = {**self._headers, **(headers or {})}

        async def attempt() -> Answer:
            try:
                answer = await self._capped(
                    method, target, params=params, json=json, content=content, headers=sent
                )
            except httpx.TimeoutException as exc:
                reason = f"{self.name} at {where} did not answer in time ({exc})"
                raise QueryFailed(reason, retry=True) from exc
            except httpx.TransportError as exc:
                reason = f"cannot reach {self.name} at {where}: {exc}"
                raise QueryFailed(reason, retry=True) from exc
            if answer.status_code == 429 or answer.status_code >= 500:
                raise QueryFailed(
                    self.http_reason(answer, where),
                    retry=True,
                    retry_after_seconds=retry_after_seconds(answer.headers.get("Retry-After")),
                )
            return answer

        answer = await call_with_retries(
            attempt,
            settings=self._retry,
            retry_on=lambda exc: isinstance(exc, QueryFailed) and exc.retry,
            sleep=self._sleep,
        )
        if answer.status_code in (401, 403):
            raise QueryFailed(
                f"{self.name} at {where} refused the credentials "
                f"(HTTP {answer.status_code}); check {self._credentials_field}"
            )
        return answer

    def http_reason(self, answer: Answer, where: str = "") -> str:
        """What an unexpected status says, with the start of its body."""
        status = answer.status_code
        return f"{self.name} at {where or self.shown} answered HTTP {status}: {shown(answer.text)}"

    async def _capped(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        content: str | None,
        headers: Mapping[str, str],
    ) -> Answer:
        """Send, reading the body (decompressed) no further than the limit."""
        limit = documents.MAX_ANSWER_BYTES
        async with self._client.stream(
            method,
            url,
            params=dict(params) if params is not None else None,
            json=json,
            content=content,
            headers=dict(headers),
        ) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise QueryFailed(
                        f"{self.name} at {self.shown} answered more than {limit:,} bytes; refused",
                        too_large=True,
                    )
        return Answer(response.status_code, response.headers, bytes(body))


def display_url(url: str) -> str:
    """The URL with any password replaced, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def verify_option(*, name: str, address: str, ca_file: str | None, insecure: bool) -> bool | str:
    """httpx's ``verify`` for a source's TLS settings; a missing CA file is a ProviderError."""
    if insecure:
        logger.warning(
            "TLS certificate verification is OFF for %s at %s "
            "(metrics.insecure_skip_verify); anyone on the path can forge metrics",
            name,
            display_url(address),
        )
        return False
    if ca_file is not None:
        if not os.path.isfile(ca_file):
            raise ProviderError(f"metrics.ca_file {ca_file!r} does not exist")
        return ca_file
    return True


def auth_from(spec: HttpAuth) -> httpx.Auth | None:
    """Credentials from the environment variables the policy names; never logged."""
    if spec.bearer_token_env is not None:
        return Bearer(env_secret(spec.bearer_token_env, "metrics.auth.bearer_token_env"))
    if spec.username is not None:
        if spec.password_env is None:
            raise ProviderError("metrics.auth.username needs metrics.auth.password_env")
        password = env_secret(spec.password_env, "metrics.auth.password_env")
        return httpx.BasicAuth(spec.username, password)
    return None


def env_secret(name: str, field: str) -> str:
    """The value of the variable ``field`` names; a ProviderError (naming both) when unset."""
    value = os.environ.get(name)
    if not value:
        raise ProviderError(f"{field} names ${name}, which is not set in the environment")
    return value


class Bearer(httpx.Auth):
    """``Authorization: Bearer <token>``; the token never appears in reprs or logs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "Bearer(<hidden>)"


def source_edge(
    source: HttpSource,
    *,
    name: str,
    address: str,
    client: httpx.AsyncClient | None,
    backoff_seconds: float | None,
    sleep: Sleep,
    auth: httpx.Auth | None = None,
    headers: Mapping[str, str] | None = None,
    credentials_field: str = "metrics.auth",
) -> HttpEdge:
    """The edge of a policy source: its timeout, retries and TLS settings, the ``metrics`` retry."""
    return HttpEdge(
        name=name,
        base=address,
        timeout=source.timeout,
        retry=SETTINGS["metrics"].with_retries(source.retries, backoff_seconds=backoff_seconds),
        auth=auth,
        headers=headers,
        verify=verify_option(
            name=name,
            address=address or "(metrics.queries)",
            ca_file=source.ca_file,
            insecure=source.insecure_skip_verify,
        ),
        client=client,
        sleep=sleep,
        credentials_field=credentials_field,
    )
