"""A Prometheus that answers garbage, endlessly or deeply: an ERROR measurement, never a crash.

The answers come from a real HTTP server on loopback, so the provider reads them
through httpx and TCP exactly as in production.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from rollguard.documents import MAX_ANSWER_BYTES
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.answers import Answers, answering


@pytest.fixture
def hostile() -> Iterator[Answers]:
    with answering() as state:
        state.endless_limit = 64 * MAX_ANSWER_BYTES  # far more than any client should take
        yield state


def measure(url: str, signal: Signal = Signal.CONNECTIONS) -> Measurement:
    async def go() -> Measurement:
        source = PrometheusSource.model_validate({"address": url, "retries": 0})
        provider = PrometheusProvider(source)
        try:
            [measured] = await provider.measure([Query(signal, Version.CANARY, 60)], now=1.0)
            return measured
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_an_endless_answer_is_cut_at_the_limit(hostile: Answers) -> None:
    # A 200 MB answer grew a watcher to 2.25 GB: the body is now read no further than the limit.
    hostile.endless = True
    measured = measure(hostile.url)
    assert measured.phase is Phase.ERROR
    assert f"answered more than {MAX_ANSWER_BYTES:,} bytes; refused" in measured.reason
    assert hostile.sent < 4 * MAX_ANSWER_BYTES  # the provider hung up, it did not read on


def vector(*items: object) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": list(items)}}
    ).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # A RecursionError from a deeply nested answer killed the watch.
        (b'{"status": "success", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "64 deep"),
        (b'{"status": "success", "data": ' + b"[" * 70 + b"]" * 70 + b"}", "64 deep"),
        (vector({"metric": {}, "value": {"v": 1}}), "a sample that is not [time, value]"),
        (vector({"metric": {}}), "a sample that is not [time, value]"),
        (vector([1, "2"]), "a series that is not an object"),
        (vector({"metric": {"a": [1]}, "value": [1, "2"]}), "labels that are not strings"),
        (vector({"metric": {}, "value": [1, ["2"]]}), "a value that is not a number"),
        (vector({"metric": {}, "value": [1, True]}), "a value that is not a number"),
        (b'{"status": "success", "data": {"resultType": "scalar", "result": 7}}', "[time, value]"),
        (b'{"status": "success", "data": {"value": 1' + b"9" * 30 + b"}}", "more than 19 digits"),
        (b'{"status": "error", "errorType": {"x": 1}, "error": "' + b"e" * 5000 + b'"}', "..."),
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"", "the answer is empty"),
    ],
)
def test_a_malformed_answer_is_an_error_measurement(
    hostile: Answers, body: bytes, reason: str
) -> None:
    hostile.body = body
    measured = measure(hostile.url)
    assert measured.phase is Phase.ERROR
    assert reason in measured.reason
    assert "\n" not in measured.reason
    assert len(measured.reason) < 400


def test_a_bucket_bound_that_is_not_a_number_is_an_error(hostile: Answers) -> None:
    hostile.body = vector({"metric": {"le": "fast"}, "value": [1, "0"]})
    hostile.range_body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {"le": "fast"}, "values": [[0.5, "1"], [0.9, "3"]]}],
            },
        }
    ).encode()
    measured = measure(hostile.url, Signal.LATENCY_BUCKETS)
    assert measured.phase is Phase.ERROR
    assert "le='fast'" in measured.reason
