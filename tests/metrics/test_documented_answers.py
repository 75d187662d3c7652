"""Loki, Datadog and New Relic against their vendors' documented answers (not the services).

These services cannot run here (tests/fixtures/providers/SOURCES.md says why and
names the source of each document). Each document is served by a real HTTP
server on loopback, so the provider's whole HTTP path runs; the checks are the
contract suite's where a document can show them: the value, an empty answer is
no data, the vendor's error message is carried, refused credentials name the
provider and never the secret, several series are an error, and the request
carries the version, the window and the credentials where the API wants them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rollguard.metrics.factory import make_provider
from rollguard.policy.model import Policy
from rollguard.signals import Measurement, Phase, Query, Signal, Version
from servers.documented import Documented, documented_server
from servers.silent import silent_server
from support import free_port

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers"
SECRET_ENV = "ROLLGUARD_DOCUMENTED_SECRET"
WINDOW = 120.0


@dataclass(frozen=True)
class Vendor:
    """One provider, the documents that show each behaviour, and what its request must carry."""

    name: str
    source: Callable[[str], dict[str, Any]]
    value: str  # a document whose one value is 7
    empty: str
    error: tuple[str, int, str]  # document, status, words of the vendor's message
    several: str | None  # a document with several series or rows


def _loki(url: str) -> dict[str, Any]:
    selector = '{app="shop", version="$version"}'
    return {
        "provider": "loki",
        "address": url,
        "tenant": "team-a",
        "auth": {"bearer_token_env": SECRET_ENV},
        "versions": {"stable": "v1", "canary": "v2"},
        "queries": {
            "requests": f"sum(count_over_time({selector} [$window]))",
            "errors": f'sum(count_over_time({selector} |= "status=5" [$window]))',
        },
    }


def _datadog(url: str) -> dict[str, Any]:
    scope = "service:shop,version:$version"
    return {
        "provider": "datadog",
        "address": url,
        "api_key_env": SECRET_ENV,
        "app_key_env": "ROLLGUARD_DOCUMENTED_APP_KEY",
        "versions": {"stable": "v1", "canary": "v2"},
        "queries": {
            "requests": f"sum:trace.http.request.hits{{{scope}}}.as_count()",
            "errors": f"sum:trace.http.request.errors{{{scope}}}.as_count()",
        },
    }


def _newrelic(url: str) -> dict[str, Any]:
    where = "FROM Transaction WHERE appName = 'shop' AND tags.version = '$version'"
    return {
        "provider": "newrelic",
        "address": f"{url}/graphql",
        "account_id": 1234567,
        "api_key_env": SECRET_ENV,
        "versions": {"stable": "v1", "canary": "v2"},
        "queries": {
            "requests": f"SELECT count(*) {where} SINCE $start UNTIL $end",
            "errors": f"SELECT count(*) {where} AND error IS true SINCE $start UNTIL $end",
            "latency_p95_ms": f"SELECT percentile(duration, 95) {where} SINCE $start UNTIL $end",
        },
    }


VENDORS = {
    "loki": Vendor(
        "loki",
        _loki,
        "loki-vector.json",
        "loki-empty.json",
        ("loki-parse-error.txt", 400, "syntax error: unexpected IDENTIFIER"),
        None,
    ),
    "datadog": Vendor(
        "datadog",
        _datadog,
        "datadog-scalar.json",
        "datadog-empty.json",
        ("datadog-error.json", 400, "Rule 'scope_expr' didn't match"),
        "datadog-grouped.json",
    ),
    "newrelic": Vendor(
        "newrelic",
        _newrelic,
        "newrelic-count.json",
        "newrelic-empty.json",
        ("newrelic-error.json", 200, "NRQL Syntax Error"),
        "newrelic-facet.json",
    ),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "key-" + uuid.uuid4().hex
    monkeypatch.setenv(SECRET_ENV, value)
    monkeypatch.setenv("ROLLGUARD_DOCUMENTED_APP_KEY", "app-" + uuid.uuid4().hex)
    return value


@pytest.fixture
def server() -> Iterator[Documented]:
    with documented_server() as state:
        yield state


def _document(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def _measure(
    source: dict[str, Any], signal: Signal, tmp_path: Path, *, now: float | None = None
) -> Measurement:
    policy = Policy.model_validate(
        {
            "target": {"deployment": "shop"},
            "metrics": source,
            "error_rate_trigger": {"threshold": "5%"},
        }
    )
    provider = make_provider(policy, base_dir=tmp_path)
    try:
        got = await provider.measure(
            [Query(signal, Version.CANARY, WINDOW)], now=now or time.time()
        )
    finally:
        await provider.aclose()
    return got[0]


async def test_the_documented_value_is_measured_and_the_request_carries_the_version(
    vendor: Vendor, server: Documented, secret: str, tmp_path: Path
) -> None:
    server.answer(_document(vendor.value))
    now = 1_765_000_000.0
    got = await _measure(vendor.source(server.url), Signal.REQUESTS, tmp_path, now=now)
    assert got.phase is Phase.OK, got.reason
    assert got.value == pytest.approx(7)
    sent = server.requests[-1]
    if vendor.name == "loki":
        assert sent.path == "/loki/api/v1/query"
        assert sent.query["query"] == ['sum(count_over_time({app="shop", version="v2"} [120s]))']
        assert sent.query["time"] == [str(int(now * 1e9))]
        assert sent.headers["x-scope-orgid"] == "team-a"
        assert sent.headers["authorization"] == f"Bearer {secret}"
    elif vendor.name == "datadog":
        assert (sent.method, sent.path) == ("POST", "/api/v2/query/scalar")
        attributes = json.loads(sent.body)["data"]["attributes"]
        assert attributes["queries"][0]["query"] == (
            "sum:trace.http.request.hits{service:shop,version:v2}.as_count()"
        )
        assert attributes["queries"][0]["aggregator"] == "sum"
        assert (attributes["from"], attributes["to"]) == ((now - WINDOW) * 1000, now * 1000)
        assert sent.headers["dd-api-key"] == secret
    else:
        assert (sent.method, sent.path) == ("POST", "/graphql")
        variables = json.loads(sent.body)["variables"]
        assert variables["accountId"] == 1234567
        assert "tags.version = 'v2'" in variables["nrql"]
        assert f"SINCE {int((now - WINDOW) * 1000)} UNTIL {int(now * 1000)}" in variables["nrql"]
        assert sent.headers["api-key"] == secret


async def test_an_empty_answer_is_no_data(
    vendor: Vendor, server: Documented, secret: str, tmp_path: Path
) -> None:
    server.answer(_document(vendor.empty))
    got = await _measure(vendor.source(server.url), Signal.ERROR_RATE_PERCENT, tmp_path)
    assert got.phase is Phase.NO_DATA, got.reason
    assert got.value is None


async def test_a_bad_query_carries_the_vendors_message(
    vendor: Vendor, server: Documented, secret: str, tmp_path: Path
) -> None:
    document, status, words = vendor.error
    server.answer(_document(document), status=status, content_type="text/plain")
    got = await _measure(vendor.source(server.url), Signal.REQUESTS, tmp_path)
    assert got.phase is Phase.ERROR
    assert words in got.reason
    assert "rejected the query" in got.reason


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_name_the_provider_never_the_secret(
    vendor: Vendor, server: Documented, secret: str, tmp_path: Path, status: int
) -> None:
    body = _document("datadog-forbidden.json") if vendor.name == "datadog" else b"unauthorized"
    server.answer(body, status=status)
    got = await _measure(vendor.source(server.url), Signal.REQUESTS, tmp_path)
    assert got.phase is Phase.ERROR
    assert "refused the credentials" in got.reason
    assert vendor.name in got.reason.lower().replace(" ", "")
    assert secret not in got.reason


async def test_several_series_are_an_error_not_a_sum(
    vendor: Vendor, server: Documented, secret: str, tmp_path: Path
) -> None:
    if vendor.several is None:
        document = json.loads(_document(vendor.value))
        document["data"]["result"] *= 2
        server.answer(json.dumps(document).encode())
    else:
        server.answer(_document(vendor.several))
    got = await _measure(vendor.source(server.url), Signal.REQUESTS, tmp_path)
    assert got.phase is Phase.ERROR
    assert "2" in got.reason


async def test_a_server_that_is_down_or_hangs_is_an_error(
    vendor: Vendor, secret: str, tmp_path: Path
) -> None:
    down = {**vendor.source(f"http://127.0.0.1:{free_port()}"), "retries": 0}
    got = await _measure(down, Signal.REQUESTS, tmp_path)
    assert got.phase is Phase.ERROR
    assert "cannot reach" in got.reason
    with silent_server() as url:
        hanging = {**vendor.source(url), "retries": 0, "timeout": "0.3s"}
        got = await _measure(hanging, Signal.REQUESTS, tmp_path)
    assert got.phase is Phase.ERROR
    assert "in time" in got.reason


async def test_a_new_relic_percentile_is_unwrapped(
    server: Documented, secret: str, tmp_path: Path
) -> None:
    server.answer(_document("newrelic-percentile.json"))
    got = await _measure(_newrelic(server.url), Signal.LATENCY_P95_MS, tmp_path)
    assert got.phase is Phase.OK, got.reason
    assert got.value == pytest.approx(0.0325)
