"""Real demo servers for tests: services and routers on loopback, and a metrics reader."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rollguard.demo import router, service
from rollguard.demo.servers import ThreadServer, serve_in_thread

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextmanager
def service_in_thread(
    version: str, *, role: str = "canary", router_url: str | None = None
) -> Iterator[ThreadServer]:
    """One demo service version served from a thread of the test process."""
    server = serve_in_thread(service.create_app(version, role=role, router_url=router_url))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Deployment:
    """A stable and a canary service behind a router, all real servers."""

    stable: ThreadServer
    canary: ThreadServer
    router: ThreadServer


@contextmanager
def deployment(canary_percent: int = 20) -> Iterator[Deployment]:
    """Stable v1, canary v2 and the router in front of them."""
    with service_in_thread("v1", role="stable") as stable, service_in_thread("v2") as canary:
        app = router.create_app(stable.url, canary.url, canary_percent=canary_percent)
        front = serve_in_thread(app)
        try:
            yield Deployment(stable, canary, front)
        finally:
            front.stop()


def scrape(url: str) -> Samples:
    """Every sample at ``url/metrics`` by (name, labels), parsed as Prometheus would."""
    text = httpx.get(f"{url}/metrics", timeout=5).raise_for_status().text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value, 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
