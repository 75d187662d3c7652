"""Credentials, TLS options and retries, against a small real HTTP server that records requests."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollguard.errors import ProviderError
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from support import free_port, wait_until

VECTOR = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "42"]}]},
}


@dataclass
class Recorder:
    """Answers like Prometheus; fails the first ``failures`` requests with ``failure_code``."""

    headers: list[dict[str, str]] = field(default_factory=list)
    failures: int = 0
    failure_code: int = 503
    required_auth: str | None = None
    delay_seconds: float = 0.0
    retry_after: str | None = None
    url: str = ""


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    state = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.headers.append(dict(self.headers))
            time.sleep(state.delay_seconds)
            if state.failures > 0:
                state.failures -= 1
                extra = {"Retry-After": state.retry_after} if state.retry_after else {}
                self._send(state.failure_code, {"status": "error", "error": "busy"}, extra)
            elif state.required_auth and self.headers.get("Authorization") != state.required_auth:
                self._send(401, {"status": "error", "error": "unauthorized"})
            else:
                self._send(200, VECTOR)

        def _send(self, code: int, body: object, extra: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    class Quiet(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            return  # a client that timed out and hung up is what the timeout test wants

    server = Quiet(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _measure(source: PrometheusSource, **options: Any) -> Measurement:
    async def go() -> Measurement:
        provider = PrometheusProvider(source, **{"backoff_seconds": 0.001, **options})
        try:
            [measured] = await provider.measure(
                [Query(Signal.CONNECTIONS, Version.CANARY, 60)], now=1.0
            )
            return measured
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_bearer_token_comes_from_the_environment(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cret")
    recorder.required_auth = "Bearer s3cret"
    source = PrometheusSource.model_validate(
        {"address": recorder.url, "auth": {"bearer_token_env": "PROM_TOKEN"}}
    )
    measured = _measure(source)
    assert (measured.phase, measured.value) == (Phase.OK, 42.0)


def test_wrong_basic_credentials_are_an_error_without_the_secret(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_PASSWORD", "wrong-password")
    recorder.required_auth = "Basic dXNlcjpyaWdodA=="  # user:right
    source = PrometheusSource.model_validate(
        {"address": recorder.url, "auth": {"username": "user", "password_env": "PROM_PASSWORD"}}
    )
    measured = _measure(source)
    assert measured.phase is Phase.ERROR
    assert "refused the credentials (HTTP 401)" in measured.reason
    assert "wrong-password" not in measured.reason
    assert len(recorder.headers) == 1  # a 4xx is not retried


def test_a_password_in_the_address_is_never_in_a_reason(recorder: Recorder) -> None:
    recorder.required_auth = "Basic dXNlcjpyaWdodA=="  # user:right; the address says user:wrong
    address = recorder.url.replace("http://", "http://user:wrong-password@")
    refused = _measure(PrometheusSource.model_validate({"address": address}))
    dead = f"http://user:wrong-password@127.0.0.1:{free_port()}"
    unreachable = _measure(PrometheusSource.model_validate({"address": dead, "retries": 0}))
    assert "refused the credentials (HTTP 401)" in refused.reason
    assert "cannot reach Prometheus at http://user:***@127.0.0.1:" in unreachable.reason
    assert "wrong-password" not in refused.reason + unreachable.reason


def test_missing_credential_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    source = PrometheusSource.model_validate(
        {"address": "http://127.0.0.1:9", "auth": {"bearer_token_env": "NOT_SET_ANYWHERE"}}
    )
    with pytest.raises(ProviderError, match=r"\$NOT_SET_ANYWHERE"):
        PrometheusProvider(source)


def test_server_errors_are_retried_then_answered(recorder: Recorder) -> None:
    recorder.failures = 2
    source = PrometheusSource.model_validate({"address": recorder.url, "retries": 2})
    measured = _measure(source)
    assert (measured.phase, measured.value) == (Phase.OK, 42.0)
    assert len(recorder.headers) == 3


def test_retries_give_up_with_the_last_reason(recorder: Recorder) -> None:
    recorder.failures = 10
    source = PrometheusSource.model_validate({"address": recorder.url, "retries": 1})
    measured = _measure(source)
    assert measured.phase is Phase.ERROR
    assert "HTTP 503" in measured.reason
    assert len(recorder.headers) == 2


def test_skipping_tls_verification_warns(caplog: pytest.LogCaptureFixture) -> None:
    source = PrometheusSource.model_validate(
        {"address": "https://127.0.0.1:9", "insecure_skip_verify": True}
    )
    with caplog.at_level(logging.WARNING, logger="rollguard.metrics.prometheus"):
        provider = PrometheusProvider(source)
        asyncio.run(provider.aclose())
    assert "verification is OFF" in caplog.text


def test_missing_ca_file_is_named() -> None:
    source = PrometheusSource.model_validate(
        {"address": "https://127.0.0.1:9", "ca_file": "/nonexistent/ca.pem"}
    )
    with pytest.raises(ProviderError, match=r"/nonexistent/ca\.pem"):
        PrometheusProvider(source)


def test_a_slow_server_times_out_into_an_error(recorder: Recorder) -> None:
    recorder.delay_seconds = 1.0
    source = PrometheusSource.model_validate(
        {"address": recorder.url, "timeout": "0.2s", "retries": 1}
    )
    measured = _measure(source)
    assert measured.phase is Phase.ERROR
    assert "did not answer in time" in measured.reason
    # Both requests were sent before their timeouts; under load the server's thread
    # may read the second only after the client gave up on it.
    wait_until(lambda: len(recorder.headers) >= 2, what="the retried request to arrive")
    assert len(recorder.headers) == 2  # a timeout is retried, once


@pytest.mark.parametrize(("retry_after", "waits"), [("7", [7.0, 7.0]), (None, [0.2, 0.4])])
def test_a_429_waits_as_long_as_retry_after_asks(
    recorder: Recorder, retry_after: str | None, waits: list[float]
) -> None:
    recorder.failures, recorder.failure_code, recorder.retry_after = 2, 429, retry_after
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    source = PrometheusSource.model_validate({"address": recorder.url, "retries": 2})
    measured = _measure(source, backoff_seconds=None, sleep=sleep)
    assert (measured.phase, measured.value) == (Phase.OK, 42.0)
    assert slept == waits  # without Retry-After: the shared backoff, 0.2 s doubling
    assert len(recorder.headers) == 3
