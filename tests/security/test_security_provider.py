"""SecurityProvider: answers the security signals, delegates the rest, errors are data."""

from __future__ import annotations

from pathlib import Path

import httpx

from rollguard.metrics.replay import ReplayProvider
from rollguard.policy.triggers import RuntimeSecuritySpec
from rollguard.security.provider import SecurityProvider
from rollguard.signals import Phase, Query, Signal, Version
from support import free_port

UNAUTH = Query(Signal.UNAUTHORIZED_PER_MINUTE, Version.CANARY, 120.0)
SUSPICIOUS = Query(Signal.SUSPICIOUS_EVENTS, Version.CANARY, 60.0)
REQUESTS = Query(Signal.REQUESTS, Version.CANARY, 60.0)


def _line(target: str, status: int = 200, agent: str = "Mozilla/5.0") -> str:
    stamp = "[27/Nov/2026:09:00:00 +0000]"
    return f'10.0.0.7 - - {stamp} "GET {target} HTTP/1.1" {status} 10 "-" "{agent}"\n'


def _replay(tmp_path: Path) -> ReplayProvider:
    csv = tmp_path / "r.csv"
    csv.write_text(
        "time,version,requests,errors,latency_p95_ms,memory_mb\n"
        "1000,canary,500,5,100,200\n1000,stable,500,0,90,190\n"
    )
    return ReplayProvider.from_file(csv)


SECRET = "falco-secret-0123456789abcdef"


async def test_answers_from_log_and_falco_and_delegates(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    port = free_port()
    spec = RuntimeSecuritySpec(
        unauthorized_access_attempts="5 per minute",
        suspicious_patterns="immediate_detection",
        access_log="access.log",
        falco_listen=f"127.0.0.1:{port}",
        falco_secret_env="FALCO_SECRET",
        falco_min_priority="error",
    )
    provider = SecurityProvider.from_policy(
        spec,
        _replay(tmp_path),
        base_dir=tmp_path,
        clock=lambda: 1000.0,
        environ={"FALCO_SECRET": SECRET},
    )
    try:
        await provider.collect(now=900.0)
        with log.open("a") as handle:
            handle.writelines([_line("/admin", 403)] * 6 + [_line("/login", 401)] * 4)
            handle.write(_line("/x?id=1 UNION SELECT pass FROM users"))
            handle.write(_line("/", 200, "sqlmap/1.7"))
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {SECRET}"}) as client:
            url = f"http://127.0.0.1:{port}/"
            await client.post(url, json={"priority": "Critical", "rule": "shell", "output": "sh"})
            await client.post(url, json={"priority": "Warning", "rule": "cat", "output": "cat"})
        await provider.collect(now=1000.0)
        unauth, requests, suspicious = await provider.measure(
            [UNAUTH, REQUESTS, SUSPICIOUS], now=1000.0
        )
    finally:
        await provider.aclose()
    assert unauth.value == 10 / 2  # 10 responses of 401/403 over a 2-minute window
    assert unauth.requests == 12
    assert requests.value == 500  # delegated to the replay provider, order kept
    # 2 signature matches + 1 Falco alert at or above "error"; the Warning is ignored.
    assert suspicious.value == 3.0
    kinds = sorted(event.kind for event in provider.recent_events(start=940.0, end=1000.0))
    assert kinds == ["falco", "scanner", "sql_injection"]


async def test_missing_log_is_an_error_measurement(tmp_path: Path) -> None:
    spec = RuntimeSecuritySpec(access_log=str(tmp_path / "nope.log"))
    provider = SecurityProvider.from_policy(spec, None, base_dir=tmp_path)
    await provider.collect(now=10.0)
    [measured] = await provider.measure([UNAUTH], now=10.0)
    assert measured.phase is Phase.ERROR
    assert "does not exist" in measured.reason


async def test_log_in_another_format_is_an_error_measurement(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    provider = SecurityProvider.from_policy(
        RuntimeSecuritySpec(access_log="access.log"), None, base_dir=tmp_path
    )
    await provider.collect(now=1.0)
    log.write_text('{"level": "info", "path": "/"}\n')
    await provider.collect(now=2.0)
    [measured] = await provider.measure([SUSPICIOUS], now=2.0)
    assert measured.phase is Phase.ERROR
    assert "not a combined access-log line" in measured.reason


async def test_without_a_log_unauthorized_goes_to_the_inner_provider(tmp_path: Path) -> None:
    provider = SecurityProvider.from_policy(None, _replay(tmp_path), base_dir=tmp_path)
    [measured] = await provider.measure([UNAUTH], now=1000.0)
    # The replay file has no "unauthorized" column: the inner provider says so.
    assert measured.phase is Phase.NO_DATA
    assert "unauthorized" in measured.reason
