"""The backends the provider contract suite runs against, one harness each.

A harness knows how to start (or reach) its backend, write known traffic into
it for one version label, and write a policy's ``metrics`` section for it. The
suite (``test_provider_contract.py``) then checks the same behaviours on all.
"""

from __future__ import annotations

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


@dataclass
class InfluxDBBackend:
    """Debian's InfluxDB 1.x, started privately with authentication on."""

    url: str
    version: str
    name: str = "influxdb"
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
