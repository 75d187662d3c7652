"""A real HAProxy writes `option httplog` lines; the tailer and provider read them live."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollguard.policy.triggers import RuntimeSecuritySpec
from rollguard.security.provider import SecurityProvider
from rollguard.signals import Query, Signal, Version
from support import free_port, require_binary, wait_until

CONFIG = """
global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout connect 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:{port}
    http-request capture req.hdr(User-Agent) len 200
    http-request deny deny_status 403 if {{ path_beg /admin }}
    http-request return status 401 if {{ path_beg /private }}
    http-request return status 200 content-type text/plain string ok
"""


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """HAProxy in the foreground on loopback, its log lines written to a file."""
    binary = require_binary("haproxy", hint="apt-get install haproxy")
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(CONFIG.format(port=port))
    log = tmp_path / "access.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(binary), "-f", str(config), "-db"], stdout=out, stderr=subprocess.PIPE
        )
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return httpx.get(url + "/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answering, timeout=15, what="haproxy to answer")
        wait_until(lambda: log.read_text().count("\n") >= 1, what="haproxy's first log line")
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.real_server
async def test_haproxy_httplog_through_the_provider(
    haproxy: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = haproxy
    spec = RuntimeSecuritySpec(access_log=str(log), access_log_format="haproxy")
    provider = SecurityProvider.from_policy(spec, None, base_dir=tmp_path)
    await provider.collect(now=100.0)  # the readiness probe, logged before, is not judged
    before = log.read_text().count("\n")
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        for _ in range(3):
            await client.get("/admin")
        await client.get("/private")
        await client.get("/search", params={"q": "union station"})
        await client.get("/items", params={"id": "1' OR '1'='1"})
        await client.get("/", headers={"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"})
        await client.get("/download", params={"file": "../../../../etc/passwd"})
    wait_until(lambda: log.read_text().count("\n") >= before + 8, what="8 new log lines")
    await provider.collect(now=130.0)
    unauthorized, suspicious = await provider.measure(
        [
            Query(Signal.UNAUTHORIZED_PER_MINUTE, Version.CANARY, 60.0),
            Query(Signal.SUSPICIOUS_EVENTS, Version.CANARY, 60.0),
        ],
        now=130.0,
    )
    await provider.aclose()
    assert provider.tailer is not None
    assert provider.tailer.problems == 0  # every real line parsed
    assert unauthorized.value == 4.0  # three 403 and one 401 in one minute
    assert unauthorized.requests == 8
    assert suspicious.value == 3.0  # SQL injection, scanner, traversal; "union station" is not
    kinds = {event.kind for event in provider.recent_events(start=70.0, end=130.0)}
    assert kinds == {"sql_injection", "scanner", "path_traversal"}
