"""``serve``'s listener under slow and idle clients (Slowloris), and its Host check.

Idle, half-header and half-body connections are closed at their deadline, past
the connection cap the slowest are closed first, and ``/healthz`` answers all along.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serve_harness import TOKEN, start_serve, write_policies
from serve_process import serve_process, stop

from rollguard.security.listener import Limits
from rollguard.server.hosts import allowed_hosts
from slow_clients import slow_clients, wait_all_closed

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 (compared, never bound)
FAST = Limits(header_seconds=0.5, body_seconds=0.5, max_connections=100)


def _healthz(url: str, host: str | None = None) -> int:
    headers = {"Host": host} if host else {}
    return httpx.get(f"{url}/healthz", headers=headers, timeout=5).status_code


def test_slow_clients_are_closed_and_healthz_answers_meanwhile(tmp_path: Path) -> None:
    write_policies(tmp_path)
    with start_serve(tmp_path, limits=FAST) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with slow_clients(port, idle=100, headers=100, bodies=100) as held:
            for _ in range(5):  # 300 slow clients, a cap of 100: the slowest make room
                assert _healthz(served.url) == 200
            assert wait_all_closed(held, timeout=30) == len(held)
        assert _healthz(served.url) == 200
        assert (
            served.client.post(
                "/api/v1/deployments/cart/pause", headers={"Authorization": f"Bearer {TOKEN}"}
            ).json()["status"]
            == "paused"
        )  # a request that takes its time is not cut short


def test_rollguard_serve_survives_a_thousand_idle_connections(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_policies(tmp_path)
    with serve_process(tmp_path, rollguard_cmd, cli_env) as (process, url):
        port = int(url.rsplit(":", 1)[1])
        with slow_clients(port, idle=600, headers=300, bodies=200) as held:
            for _ in range(5):
                assert _healthz(url) == 200
            # Past the default cap of 256 the slowest are closed at once; the rest
            # at the 10 s header or body deadline.
            assert wait_all_closed(held, timeout=60) == len(held)
        assert _healthz(url) == 200
        stderr = stop(process)
    assert "Traceback" not in stderr


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST."])
def test_loopback_names_are_answered(tmp_path: Path, host: str) -> None:
    write_policies(tmp_path)
    with start_serve(tmp_path) as served:
        port = served.url.rsplit(":", 1)[1]
        assert _healthz(served.url, f"{host}:{port}") == 200
        assert _healthz(served.url, host) == 200


def test_another_host_name_is_refused_as_dns_rebinding(tmp_path: Path) -> None:
    write_policies(tmp_path)
    with start_serve(tmp_path) as served:
        for path in ("/api/v1/deployments", "/api/v1/audit", "/", "/healthz"):
            answer = httpx.get(
                f"{served.url}{path}", headers={"Host": "attacker.example:8080"}, timeout=5
            )
            assert answer.status_code == 400, path
            assert answer.json()["error"] == "bad_request"
            assert "attacker.example" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("listen", "given", "expected"),
    [
        ("127.0.0.1", [], {"localhost", "127.0.0.1", "::1"}),
        ("::1", [], {"localhost", "127.0.0.1", "::1"}),
        ("10.0.0.5", [], {"localhost", "127.0.0.1", "::1", "10.0.0.5"}),
        (EVERY_ADDRESS, [], None),
        (EVERY_ADDRESS, ["rollguard.internal", "Rollguard.Internal:8080"], {"rollguard.internal"}),
        ("127.0.0.1", ["*"], None),
    ],
)
def test_allowed_hosts_follow_the_listen_address(
    listen: str, given: list[str], expected: set[str] | None
) -> None:
    found = allowed_hosts(listen, given)
    assert (set(found) if found is not None else None) == expected


def test_allowed_host_option(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_policies(tmp_path)
    options = ("--allowed-host", "rollguard.internal", "--allowed-host", "127.0.0.1")
    with serve_process(tmp_path, rollguard_cmd, cli_env, *options) as (_, url):
        port = url.rsplit(":", 1)[1]
        assert _healthz(url, f"rollguard.internal:{port}") == 200
        assert _healthz(url, "localhost") == 400  # only the names given
