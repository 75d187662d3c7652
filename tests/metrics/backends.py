"""The backends the provider contract suite runs against, one harness each.

A harness knows how to start (or reach) its backend, write known traffic into
it for one version label, and write a policy's ``metrics`` section for it. The
suite (``test_provider_contract.py``) then checks the same behaviours on all.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

#: The variable the suite sets to a wrong secret for the bad-credentials case.
SECRET_ENV = "ROLLGUARD_CONTRACT_SECRET"


@dataclass(frozen=True)
class Traffic:
    """What one version served in the window."""

    requests: int
    errors: int
    latencies_ms: tuple[float, ...] = (10.0, 20.0, 30.0, 40.0)


class Backend(Protocol):
    """One backend under the contract."""

    name: str
    tested_against: str  # the server and version, for the docs' table
    down_words: str  # what the error says when the backend is not there
    stores_points: bool  # a time-series store (the provider sums a window), not an answerer

    def source(self, stable: str, canary: str) -> dict[str, Any]:
        """A ``metrics`` section whose versions are the labels ``stable`` and ``canary``."""

    def feed(self, label: str, traffic: Traffic, *, at: float) -> None:
        """Write ``traffic`` for the version ``label``, stamped ``at``."""

    def at_address(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        """The source pointed at another server (down, slow)."""

    def with_wrong_credentials(self, source: dict[str, Any]) -> dict[str, Any]:
        """The source reading its secret from :data:`SECRET_ENV`."""

    def with_bad_query(self, source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The source with a requests query the backend rejects, and words of its message."""

    def hanging(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        """The source pointed at a backend that never answers (``url``: a silent server)."""


@dataclass
class InfluxDBBackend:
    """Debian's InfluxDB 1.x, started privately with authentication on."""

    url: str
    version: str
    name: str = "influxdb"
    down_words: str = "cannot reach"
    stores_points: bool = True
    tested_against: str = field(init=False)

    def __post_init__(self) -> None:
        self.tested_against = f"InfluxDB {self.version} (Debian influxdb)"
        from servers.influxdb import DATABASE, PASSWORD, USER

        self.database, self.user, self.password = DATABASE, USER, PASSWORD
        self.server: Any = None

    def source(self, stable: str, canary: str) -> dict[str, Any]:
        where = 'FROM "http" WHERE "version" = \'$version\' AND time > $start AND time <= $end'
        return {
            "provider": "influxdb",
            "address": self.url,
            "database": self.database,
            "auth": {"username": self.user, "password_env": "ROLLGUARD_INFLUX_PASSWORD"},
            "timeout": "5s",
            "versions": {"stable": stable, "canary": canary},
            "queries": {
                "requests": f'SELECT sum("requests") {where}',
                "errors": f'SELECT sum("errors") {where}',
                "latency_p95_ms": f'SELECT percentile("latency_ms", 95) {where}',
                "latency_mean_ms": f'SELECT mean("latency_ms") {where}',
            },
        }

    def feed(self, label: str, traffic: Traffic, *, at: float) -> None:
        stamp = int(at)
        lines = [
            f"http,version={label} requests={traffic.requests}i,errors={traffic.errors}i {stamp}"
        ]
        lines += [
            f"http,version={label},sample={i} latency_ms={value} {stamp}"
            for i, value in enumerate(traffic.latencies_ms)
        ]
        self.server.write("\n".join(lines))

    def at_address(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return {**source, "address": url, "retries": 0}

    def hanging(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return self.at_address(source, url)

    def with_wrong_credentials(self, source: dict[str, Any]) -> dict[str, Any]:
        return {**source, "auth": {"username": self.user, "password_env": SECRET_ENV}}

    def with_bad_query(self, source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        queries = {**source["queries"], "requests": "SELEC requests FROM http"}
        return {**source, "queries": queries}, "error parsing query"


def start_influxdb(stack: ExitStack, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    from servers.influxdb import PASSWORD, running_influxdb

    server = stack.enter_context(running_influxdb(directory))
    monkeypatch.setenv("ROLLGUARD_INFLUX_PASSWORD", PASSWORD)
    backend = InfluxDBBackend(server.url, server.version())
    backend.server = server
    return backend


#: Each backend's starter, by provider name.
STARTERS = {"influxdb": start_influxdb}


@dataclass
class GraphiteBackend:
    """Debian's carbon-cache and graphite-web, started privately (no credentials of its own)."""

    server: Any
    name: str = "graphite"
    down_words: str = "cannot reach"
    stores_points: bool = True
    tested_against: str = ""

    def source(self, stable: str, canary: str) -> dict[str, Any]:
        return {
            "provider": "graphite",
            "address": self.server.url,
            "timeout": "10s",
            "versions": {"stable": stable, "canary": canary},
            "queries": {
                "requests": "app.$version.requests",
                "errors": "app.$version.errors",
                "latency_p95_ms": {"target": "app.$version.latency_ms", "aggregate": "max"},
                "latency_mean_ms": {"target": "app.$version.latency_ms", "aggregate": "average"},
            },
        }

    def feed(self, label: str, traffic: Traffic, *, at: float) -> None:
        stamp = int(at)
        points = [
            (f"app.{label}.requests", float(traffic.requests), stamp),
            (f"app.{label}.errors", float(traffic.errors), stamp),
        ]
        points += [
            (f"app.{label}.latency_ms", value, stamp - i)
            for i, value in enumerate(traffic.latencies_ms)
        ]
        self.server.send(points)
        from support import wait_until

        wait_until(
            lambda: (
                len(self.server.points(f"app.{label}.latency_ms", stamp - 60, stamp + 1))
                == len(traffic.latencies_ms)
                and self.server.points(f"app.{label}.errors", stamp - 60, stamp + 1)
            ),
            timeout=30,
            interval=0.1,
            what=f"graphite-web to serve the points of {label}",
        )

    def at_address(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return {**source, "address": url, "retries": 0}

    def hanging(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return self.at_address(source, url)

    def with_wrong_credentials(self, source: dict[str, Any]) -> dict[str, Any]:
        pytest.skip(
            "graphite-web's render API has no credentials of its own (they belong to a proxy "
            "in front of it); the shared HTTP edge's 401/403 handling is covered by the others"
        )

    def with_bad_query(self, source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        queries = {**source["queries"], "requests": "nosuchfunction(app.$version.requests)"}
        return {**source, "queries": queries}, "unknown function: nosuchfunction"


def start_graphite(stack: ExitStack, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    from servers.graphite import running_graphite

    server = stack.enter_context(running_graphite(directory))
    return GraphiteBackend(server, tested_against=f"graphite-web {server.version()} + carbon")


STARTERS["graphite"] = start_graphite


@dataclass
class WebBackend:
    """A real JSON endpoint on loopback (the web provider's target is any such service)."""

    url: str
    stats: Any
    name: str = "web"
    down_words: str = "cannot reach"
    stores_points: bool = False
    tested_against: str = "a JSON endpoint on loopback (Python's http.server)"

    def source(self, stable: str, canary: str) -> dict[str, Any]:
        def at(path: str) -> dict[str, str]:
            return {"url": f"{self.url}/stats?version=$version&window=$window", "json_path": path}

        return {
            "provider": "web",
            "headers_env": {"Authorization": "ROLLGUARD_WEB_AUTHORIZATION"},
            "versions": {"stable": stable, "canary": canary},
            "queries": {
                "requests": at("$.data.requests"),
                "errors": at("$.data.errors"),
                "latency_p95_ms": at("$.data.latency_ms.p95"),
                "latency_mean_ms": at("$.data.latency_ms.mean"),
            },
        }

    def feed(self, label: str, traffic: Traffic, *, at: float) -> None:
        self.stats.record(label, traffic.requests, traffic.errors, list(traffic.latencies_ms))

    def at_address(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        queries = {
            name: {**query, "url": query["url"].replace(self.url, url)}
            for name, query in source["queries"].items()
        }
        return {**source, "queries": queries, "retries": 0}

    def hanging(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return self.at_address(source, url)

    def with_wrong_credentials(self, source: dict[str, Any]) -> dict[str, Any]:
        return {**source, "headers_env": {"Authorization": SECRET_ENV}}

    def with_bad_query(self, source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        query = {"url": f"{self.url}/stats?version=$version&metric=nope", "json_path": "$.n"}
        return {**source, "queries": {**source["queries"], "requests": query}}, "unknown parameter"


def start_web(stack: ExitStack, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    from servers.json_endpoint import TOKEN, running_json_endpoint

    url, stats = stack.enter_context(running_json_endpoint())
    monkeypatch.setenv("ROLLGUARD_WEB_AUTHORIZATION", f"Bearer {TOKEN}")
    return WebBackend(url, stats)


STARTERS["web"] = start_web


#: A real program for the command provider: prints one statistic of one version, read
#: from a JSON file (nothing for a version it has no record of); ``--sleep S`` hangs first.
STATS_PROGRAM = """import json, sys, time
if sys.argv[1] == "--sleep":
    time.sleep(float(sys.argv[2]))
    sys.argv[1:3] = []
path, version, name = sys.argv[1:4]
if name not in ("requests", "errors", "p95", "mean"):
    sys.exit(f"stats: unknown statistic {name!r}")
found = json.load(open(path)).get(version)
print("" if found is None else found[name])
"""


@dataclass
class CommandBackend:
    """Real programs (a Python script run as a child process) printing each number."""

    directory: Path
    name: str = "command"
    down_words: str = "cannot run"
    stores_points: bool = False
    tested_against: str = "a program printing one number (a Python script)"

    def __post_init__(self) -> None:
        self.program = self.directory / "stats.py"
        self.program.write_text(STATS_PROGRAM)
        self.data = self.directory / "stats.json"
        self.data.write_text("{}")

    def source(self, stable: str, canary: str) -> dict[str, Any]:
        def run(name: str) -> list[str]:
            return [sys.executable, str(self.program), str(self.data), "$version", name]

        return {
            "provider": "command",
            "versions": {"stable": stable, "canary": canary},
            "queries": {
                "requests": run("requests"),
                "errors": run("errors"),
                "latency_p95_ms": run("p95"),
                "latency_mean_ms": run("mean"),
            },
        }

    def feed(self, label: str, traffic: Traffic, *, at: float) -> None:
        ordered = sorted(traffic.latencies_ms)
        recorded = json.loads(self.data.read_text())
        recorded[label] = {
            "requests": traffic.requests,
            "errors": traffic.errors,
            "p95": ordered[-1],
            "mean": sum(ordered) / len(ordered),
        }
        self.data.write_text(json.dumps(recorded))

    def at_address(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        """A program that is not there stands for a server that is down."""
        missing = str(self.directory / "no-such-program")
        queries = {name: [missing, *argv[1:]] for name, argv in source["queries"].items()}
        return {**source, "queries": queries}

    def hanging(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        queries = {
            name: [argv[0], argv[1], "--sleep", "30", *argv[2:]]
            for name, argv in source["queries"].items()
        }
        return {**source, "queries": queries}

    def with_wrong_credentials(self, source: dict[str, Any]) -> dict[str, Any]:
        pytest.skip("a program carries its own credentials (metrics.pass_env), not rollguard's")

    def with_bad_query(self, source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        queries = {**source["queries"], "requests": [*source["queries"]["requests"][:-1], "rps"]}
        return {**source, "queries": queries}, "unknown statistic 'rps'"


def start_command(stack: ExitStack, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    return CommandBackend(directory)


STARTERS["command"] = start_command


@dataclass
class CloudWatchBackend:
    """moto's server mode as CloudWatch, fed with real ``PutMetricData`` writes (not AWS)."""

    server: Any
    name: str = "cloudwatch"
    down_words: str = "cannot reach"
    stores_points: bool = True
    tested_against: str = "moto's server mode (CloudWatch API), not AWS"

    def source(self, stable: str, canary: str) -> dict[str, Any]:
        def metric(name: str, stat: str) -> dict[str, Any]:
            return {
                "namespace": "Shop",
                "metric": name,
                "dimensions": {"Version": "$version"},
                "stat": stat,
            }

        return {
            "provider": "cloudwatch",
            "region": "eu-west-1",
            "endpoint_url": self.server.url,
            "access_key_id_env": "ROLLGUARD_AWS_KEY_ID",
            "secret_access_key_env": "ROLLGUARD_AWS_SECRET",
            "versions": {"stable": stable, "canary": canary},
            "queries": {
                "requests": metric("Requests", "Sum"),
                "errors": metric("Errors", "Sum"),
                # moto computes no percentiles: the slowest request stands in for p95 here.
                "latency_p95_ms": metric("Latency", "Maximum"),
                "latency_mean_ms": metric("Latency", "Average"),
            },
        }

    def feed(self, label: str, traffic: Traffic, *, at: float) -> None:
        from servers.moto_cloudwatch import stamp

        version = [{"Name": "Version", "Value": label}]
        data = [
            {
                "MetricName": "Requests",
                "Dimensions": version,
                "Timestamp": stamp(at),
                "Value": traffic.requests,
            },
            {
                "MetricName": "Errors",
                "Dimensions": version,
                "Timestamp": stamp(at),
                "Value": traffic.errors,
            },
        ]
        data += [
            {
                "MetricName": "Latency",
                "Dimensions": version,
                "Timestamp": stamp(at),
                "Value": value,
                "Unit": "Milliseconds",
            }
            for value in traffic.latencies_ms
        ]
        self.server.put("Shop", data)

    def at_address(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return {**source, "endpoint_url": url, "retries": 0}

    def hanging(self, source: dict[str, Any], url: str) -> dict[str, Any]:
        return self.at_address(source, url)

    def with_wrong_credentials(self, source: dict[str, Any]) -> dict[str, Any]:
        return {**source, "secret_access_key_env": SECRET_ENV}

    def with_bad_query(self, source: dict[str, Any]) -> tuple[dict[str, Any], str]:
        pytest.skip(
            "moto accepts any GetMetricData query that botocore sends; statistics, names and "
            "dimension counts are checked at policy load instead"
        )


def start_cloudwatch(stack: ExitStack, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    from servers.moto_cloudwatch import running_moto

    server = stack.enter_context(running_moto(directory))
    monkeypatch.setenv("ROLLGUARD_AWS_KEY_ID", server.key_id)
    monkeypatch.setenv("ROLLGUARD_AWS_SECRET", server.secret)
    return CloudWatchBackend(server)


STARTERS["cloudwatch"] = start_cloudwatch
