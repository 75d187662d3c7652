"""The whole loop on real parts: HAProxy in front of stable and canary, Prometheus
scraping HAProxy's own exporter, and a policy that watches and acts through both.

Used by the watch tests and by ``bench/rollback_latency.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from servers.haproxy import BACKEND, HaproxyServer, running_haproxy
from servers.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from servers.version_http import VersionServer, running_version_servers

CANARY_REQUESTS = f'haproxy_server_http_responses_total{{proxy="{BACKEND}",server="canary"}}'


@dataclass
class RealStack:
    """The running parts."""

    versions: dict[str, VersionServer]
    haproxy: HaproxyServer
    prometheus: PrometheusServer

    def policy_yaml(
        self,
        *,
        window: str = "10s",
        interval: str = "0.5s",
        no_data_limit: int = 3,
        retries: int = 0,
    ) -> str:
        """A policy: error rate from HAProxy's metrics via Prometheus, acted on through HAProxy."""
        return f"""
name: real-stack
target:
  deployment: shop
  executor: {{type: haproxy, socket: "{self.haproxy.socket_path}", backend: {BACKEND}}}
metrics:
  provider: prometheus
  address: "{self.prometheus.url}"
  stable_selector: 'proxy="{BACKEND}",server="stable"'
  canary_selector: 'proxy="{BACKEND}",server="canary"'
  timeout: 2s
  retries: {retries}
  names: {{requests_total: haproxy_server_http_responses_total}}
analysis: {{interval: {interval}, min_requests: 10, persistence: 2, no_data_limit: {no_data_limit}}}
error_rate_trigger:
  threshold: 5%
  measurement_window: {window}
  action: immediate_rollback
"""


@contextmanager
def running_real_stack(directory: Path, *, canary_weight: int = 50) -> Iterator[RealStack]:
    """Start the version servers, HAProxy and Prometheus; stop them all afterwards."""
    with (
        running_version_servers("stable", "canary") as versions,
        running_haproxy(
            directory / "haproxy",
            stable=versions["stable"].address,
            canary=versions["canary"].address,
            canary_weight=canary_weight,
        ) as haproxy,
    ):
        target = ScrapeTarget(f"127.0.0.1:{haproxy.port}", {}, job="haproxy")
        with running_prometheus(directory / "prometheus", [target]) as prometheus:
            yield RealStack(versions, haproxy, prometheus)
