"""Every file of tests/fixtures/hostile, run as its manifest says.

Each must give one line on stderr (never a traceback), its documented exit code
(2, invalid input — never 1, "rolled back") and the message's fragment; a
Prometheus answer must be an error measurement, never an exception.
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hostile_runner import CORPUS, Rollguard, one_line

from rollguard.errors import InputError
from rollguard.metrics.prometheus import PrometheusProvider
from rollguard.policy.model import PrometheusSource
from rollguard.security.falco import parse_alerts
from rollguard.signals import Phase, Query, Signal, Version
from servers.answers import answering

CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "corpus.toml").read_text())["case"]


def _ids(kind: str) -> list[Any]:
    chosen = [case for case in CASES if case.get("kind", "cli") == kind]
    return [pytest.param(case, id=case.get("file") or case["run"][0][1]) for case in chosen]


def test_every_file_is_in_the_manifest() -> None:
    named = {case["file"] for case in CASES if "file" in case}
    stored = {
        str(path.relative_to(CORPUS))
        for path in CORPUS.rglob("*")
        if path.is_file() and path.parent != CORPUS and path.parent.name != "valid"
    }
    assert stored == named
    assert all({"class", "found", "says"} <= set(case) for case in CASES)


@pytest.mark.parametrize("case", _ids("cli"))
def test_a_hostile_input_is_one_line_and_its_exit_code(
    case: dict[str, Any], corpus: Path, tmp_path: Path, rollguard: Rollguard
) -> None:
    if "audit" in case["run"][0]:
        from rollguard.audit.factory import open_store

        open_store(f"sqlite:///{tmp_path / 'audit.db'}").close()  # an empty, existing store
    for argv in case["run"]:
        args = [
            part.format(file=corpus / case.get("file", ""), corpus=corpus, scratch=tmp_path)
            for part in argv
        ]
        ran = rollguard(*args)
        line = one_line(ran)
        assert ran.code == case["exit"], f"{' '.join(argv)}: exit {ran.code}: {line}"
        assert case["says"] in line, line


@pytest.mark.parametrize("case", _ids("answer"))
def test_a_hostile_prometheus_answer_is_an_error_measurement(case: dict[str, Any]) -> None:
    async def measure(url: str) -> Any:
        source = PrometheusSource.model_validate({"address": url, "retries": 0})
        provider = PrometheusProvider(source)
        try:
            query = Query(Signal.ERROR_RATE_PERCENT, Version.CANARY, 60)
            return await provider.measure([query], now=1.0)
        finally:
            await provider.aclose()

    with answering() as server:
        server.body = (CORPUS / case["file"]).read_bytes()
        measured = asyncio.run(measure(server.url))
    assert all(m.phase is Phase.ERROR for m in measured)
    assert case["says"] in measured[0].reason
    assert "\n" not in measured[0].reason
    assert len(measured[0].reason) < 500  # an answer is never echoed whole


@pytest.mark.parametrize("case", _ids("alert"))
def test_a_hostile_falco_alert_is_one_input_error(case: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        parse_alerts((CORPUS / case["file"]).read_text(), where="falco")
    assert case["says"] in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_watch_outlives_a_hostile_prometheus(tmp_path: Path, rollguard: Rollguard) -> None:
    # A deeply nested answer killed the watch with a RecursionError: now it is no data,
    # and a watch that never had data ends inconclusive (4), not rolled back (1).
    with answering() as server:
        server.body = (CORPUS / "prometheus" / "deep.json").read_bytes()
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "target: {deployment: shop}\n"
            f"metrics: {{provider: prometheus, address: '{server.url}', retries: 0}}\n"
            "analysis: {interval: 0.2s, no_data_limit: 100}\n"
            "error_rate_trigger: {threshold: 5%, window: 1m}\n"
        )
        ran = rollguard("watch", "--policy", str(policy), "--for", "1s", "-o", "json")
    assert ran.code == 4, ran.stderr
    assert "nests mappings or lists more than 64 deep" in ran.stdout
    assert "Traceback" not in ran.stderr


def test_the_corpus_files_are_small() -> None:
    sizes = {path.name: path.stat().st_size for path in Path(CORPUS).rglob("*") if path.is_file()}
    assert max(sizes.values()) < 64 * 1024, sizes
