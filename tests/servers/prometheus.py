"""A real Prometheus server for tests and demos, started on loopback with a temp dir.

``running_prometheus`` writes a config scraping the given targets every second,
starts the Debian ``prometheus`` binary on a free port and returns once every
target is up and has been scraped (it polls ``/api/v1/query?query=up``; it never
sleeps and hopes).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers.process import exited, start_on_free_port, terminate
from support import require_binary, wait_until

INSTANT_QUERY = "/api/v1/query"
#: A request no code under test makes, counted by Prometheus apart from the queries.
SENTINEL = "/api/v1/status/buildinfo"


@dataclass(frozen=True)
class ScrapeTarget:
    """One ``host:port`` to scrape, with target labels (e.g. ``version``)."""

    address: str
    labels: Mapping[str, str]
    job: str = "app"


@dataclass
class PrometheusServer:
    """A running Prometheus; ``url`` is its HTTP API base."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expression: str) -> list[dict[str, object]]:
        """Run an instant query directly (for test oracles and waits)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def value(self, expression: str) -> float | None:
        """The single value of an instant query, or None without a series."""
        result = self.query(expression)
        if len(result) != 1:
            return None
        pair = result[0]["value"]
        assert isinstance(pair, list)
        return float(pair[1])

    def answered(self, handler: str) -> float:
        """Prometheus' own count of requests ``handler`` served (every status code), read
        live from its /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        mark = f'handler="{handler}"'
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("prometheus_http_requests_total{") and mark in line
        )

    def count_queries(self, work: Callable[[], object]) -> int:
        """How many instant queries ``work()`` made Prometheus answer.

        Prometheus counts a request just after answering it, so a sentinel request to
        another handler marks the end: once it is counted, so is every query before it.
        """
        queries = self.answered(INSTANT_QUERY)
        sentinels = self.answered(SENTINEL)
        work()
        httpx.get(f"{self.url}{SENTINEL}", timeout=5).raise_for_status()
        wait_until(
            lambda: self.answered(SENTINEL) > sentinels,
            what="Prometheus to count the sentinel request",
        )
        return int(self.answered(INSTANT_QUERY) - queries)

    def stop(self) -> None:
        terminate(self.process)


def write_config(
    path: Path, targets: Sequence[ScrapeTarget], *, scrape_interval: str = "1s"
) -> None:
    """A config scraping every target each ``scrape_interval`` (JSON is valid YAML)."""
    jobs: dict[str, list[dict[str, object]]] = {}
    for target in targets:
        jobs.setdefault(target.job, []).append(
            {"targets": [target.address], "labels": dict(target.labels)}
        )
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "scrape_interval": scrape_interval, "static_configs": static}
            for job, static in jobs.items()
        ],
    }
    path.write_text(json.dumps(config, indent=2))


def _all_up(server: PrometheusServer, count: int) -> bool:
    if server.process.poll() is not None:
        log = server.directory / "prometheus.log"
        raise exited("prometheus", server.process.returncode, log)
    try:
        result = server.query("up == 1")
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    return len(result) >= count


@contextmanager
def running_prometheus(
    directory: Path, targets: Sequence[ScrapeTarget], *, scrape_interval: str = "1s"
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` every ``scrape_interval`` (a Prometheus
    duration); stop it and keep its log in ``directory``."""
    binary = require_binary("prometheus", hint="apt-get install prometheus")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    write_config(config, targets, scrape_interval=scrape_interval)
    log_path = directory / "prometheus.log"

    def start(port: int) -> PrometheusServer:
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return PrometheusServer(process, port, directory)

    def wait_ready(server: PrometheusServer) -> None:
        wait_until(
            lambda: _all_up(server, len(targets)),
            timeout=60,
            interval=0.2,
            what=f"Prometheus on port {server.port} to scrape {len(targets)} target(s)",
        )

    server = start_on_free_port(start, wait_ready)
    try:
        yield server
    finally:
        server.stop()
