"""Fixtures for the metrics tests: two real exporters (stable, canary) on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollguard.errors import InputError
from rollguard.metrics.recording import read_recording
from rollguard.policy.model import ScrapeSource
from servers.exporter import ExporterServer


@pytest.fixture
def stable_server() -> Iterator[ExporterServer]:
    """The stable version's exporter."""
    server = ExporterServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def canary_server() -> Iterator[ExporterServer]:
    """The canary version's exporter."""
    server = ExporterServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def scrape_source(stable_server: ExporterServer, canary_server: ExporterServer) -> ScrapeSource:
    """A scrape source pointing at the two live exporters."""
    return ScrapeSource.model_validate(
        {
            "stable": stable_server.url,
            "canary": canary_server.url,
            "scrape_interval": 1,
            "timeout": 5,  # generous: the machine is shared; the timeout test sets its own
        }
    )


@pytest.fixture
def refused_recording(tmp_path: Path) -> Callable[[str], str]:
    """Write ``text`` as run.csv and return the InputError the replay reader raises."""

    def refuse(text: str) -> str:
        path = tmp_path / "run.csv"
        path.write_text(text)
        with pytest.raises(InputError) as caught:
            read_recording(path)
        message = str(caught.value)
        assert message.startswith(str(path))
        return message

    return refuse
