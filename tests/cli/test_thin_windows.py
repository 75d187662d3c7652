"""A sequential trigger whose window is shorter than its source's scrapes can feed is named.

``policy check`` says so when the policy states the scrape interval; ``watch``
says so before its first evaluation, asking a real Prometheus for its global
``scrape_interval`` when the policy does not state one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from cli.conftest import Invoke
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from servers.metrics_app import running_metrics_app
from servers.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from support import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sequential-policy.yaml"
SEQUENTIAL = {"error_rate_trigger", "latency_trigger"}


def _write(folder: Path, name: str, interval: str, **metrics: Any) -> Path:
    raw: dict[str, Any] = YAML(typ="safe").load(EXAMPLE)
    raw["analysis"]["interval"] = interval
    raw["metrics"].update(metrics)
    path = folder / name
    path.write_text(json.dumps(raw))
    return path


def test_policy_check_warns_and_stays_valid(tmp_path: Path, invoke_cli: Invoke) -> None:
    thin = _write(tmp_path, "thin.yaml", "10s", scrape_interval="15s")
    wide = _write(tmp_path, "wide.yaml", "30s", scrape_interval="15s")
    done = invoke_cli("policy", "check", str(thin), str(wide))
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert f"{thin}: ok" in lines
    assert f"{wide}: ok" in lines
    warned = [line for line in lines if ": warning: " in line]
    assert {line.split(": warning: ")[1].split(":")[0] for line in warned} == SEQUENTIAL
    assert all(line.startswith(f"{thin}: warning: ") for line in warned)
    assert "metrics.scrape_interval 15s" in warned[0]

    done = invoke_cli("policy", "check", str(thin), str(wide), "-o", "json")
    assert done.returncode == 0
    files = {item["file"]: item for item in json.loads(done.stdout)["files"]}
    assert {w["trigger"] for w in files[str(thin)]["warnings"]} == SEQUENTIAL
    assert files[str(wide)]["warnings"] == []


def test_policy_check_cannot_know_prometheus_interval_unless_told(
    tmp_path: Path, invoke_cli: Invoke
) -> None:
    done = invoke_cli("policy", "check", str(_write(tmp_path, "p.yaml", "1s")))
    assert done.returncode == 0
    assert "warning" not in done.stdout


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping every 2 s (its global scrape_interval)."""
    with running_metrics_app() as app:
        target = ScrapeTarget(f"127.0.0.1:{app.port}", {})
        directory = tmp_path_factory.mktemp("prometheus")
        with running_prometheus(directory, [target], scrape_interval="2s") as server:
            yield server


@pytest.mark.real_server
def test_the_global_scrape_interval_is_read_from_prometheus(
    prometheus: PrometheusServer,
) -> None:
    async def ask(address: str) -> float | None:
        provider = PrometheusProvider(
            PrometheusSource(address=address, retries=0), backoff_seconds=0
        )
        try:
            return await provider.global_scrape_interval()
        finally:
            await provider.aclose()

    assert asyncio.run(ask(prometheus.url)) == 2.0
    # nothing listening: unknown, never a guess
    assert asyncio.run(ask(f"http://127.0.0.1:{free_port()}")) is None


@pytest.mark.real_server
@pytest.mark.parametrize(("interval", "warned"), [("3s", SEQUENTIAL), ("4s", set())])
def test_watch_says_so_before_its_first_evaluation(
    prometheus: PrometheusServer,
    tmp_path: Path,
    invoke_cli: Invoke,
    interval: str,
    warned: set[str],
) -> None:
    policy = _write(tmp_path, "p.yaml", interval, address=prometheus.url)
    done = invoke_cli("watch", "--policy", str(policy), "--for", "1s", "-o", "json")
    objects = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    first = next(o for o in objects if o["type"] != "warning")
    assert first["type"] == "evaluation"  # every warning came before it
    warnings = [o for o in objects if o["type"] == "warning"]
    assert {w["trigger"] for w in warnings} == warned
    for warning in warnings:
        assert "Prometheus' global scrape_interval 2s" in warning["reason"]
        assert "set analysis.interval to 4s or more" in warning["reason"]
