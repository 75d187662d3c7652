"""``serve`` gives back a watcher's Prometheus connection when the watcher cannot be built.

Watchers are assembled in a worker thread, each with a share of the batcher's
connection to its Prometheus; a policy whose notifier cannot be built (its URL's
environment variable is unset) fails after its share was taken.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rollguard.audit.base import MemoryAuditSink
from rollguard.engine.evaluate import Evaluation
from rollguard.errors import RollguardError
from rollguard.generate.source import load_source
from rollguard.metrics.batching import QueryBatcher
from rollguard.policy.model import PrometheusSource
from rollguard.server.wiring import default_factory

UNSET = "ROLLGUARD_TEST_HOOK_URL_NEVER_SET"
ADDRESS = "http://127.0.0.1:9"  # never asked: no watcher runs here


def policy(deployment: str, *, notify: bool) -> str:
    channels = f"notifications: {{channels: {{hook: {{type: webhook, url_env: {UNSET}}}}}}}\n"
    return (
        f"name: {deployment}\n"
        f"target: {{deployment: {deployment}, executor: {{type: noop}}}}\n"
        f"metrics: {{provider: prometheus, address: '{ADDRESS}'}}\n"
        "error_rate_trigger: {threshold: 5%, measurement_window: 1m, action: immediate_rollback}\n"
        + (channels if notify else "")
    )


def hook(evaluation: Evaluation) -> None:
    """Nothing is evaluated here."""


async def test_a_watcher_that_cannot_be_built_gives_its_connection_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    (tmp_path / "good.yaml").write_text(policy("good", notify=False))
    (tmp_path / "bad.yaml").write_text(policy("bad", notify=True))
    batcher = QueryBatcher()
    build = default_factory(MemoryAuditSink(), batcher=batcher)
    bad = load_source(tmp_path / "bad.yaml")

    good = await asyncio.to_thread(build, load_source(tmp_path / "good.yaml"), hook)
    assert batcher.connections == 1
    with pytest.raises(RollguardError, match=UNSET):
        await asyncio.to_thread(build, bad, hook)
    assert batcher.connections == 1  # still the good watcher's
    await good.provider.aclose()
    assert batcher.connections == 0  # the failed watcher's share went back too

    with pytest.raises(RollguardError, match=UNSET):
        await asyncio.to_thread(build, bad, hook)
    assert batcher.connections == 0


@pytest.mark.parametrize("made_on_the_loop", [True, False], ids=["loop-used", "no-loop-yet"])
async def test_an_abandoned_last_share_closes_the_connection(made_on_the_loop: bool) -> None:
    """On the loop the connection's sockets belong to, or, when no loop used it, at once."""
    batcher = QueryBatcher()
    source = PrometheusSource(provider="prometheus", address=ADDRESS)
    if made_on_the_loop:
        provider = batcher.provider(source)
    else:
        provider = await asyncio.to_thread(batcher.provider, source)
    client = batcher.edge(provider.connection)._client
    assert not client.is_closed

    await asyncio.to_thread(batcher.abandon, provider)

    assert client.is_closed
    assert batcher.connections == 0
    assert provider.closed
    await provider.aclose()  # already given back: nothing more to release
    assert batcher.connections == 0
