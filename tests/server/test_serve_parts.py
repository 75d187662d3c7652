"""The pieces of ``serve``: the token, the audit view over a real SQLite store, the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from serve_harness import TOKEN, start_serve, write_policies

from rollguard.audit.factory import open_store
from rollguard.cli.serve_cmd import parse_listen
from rollguard.errors import UsageError
from rollguard.server.auth import TOKEN_ENV, TokenAuth
from support import free_port, wait_until


def test_token_from_file_and_env(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(f"{TOKEN}\n# comment lines after the first are ignored\n")
    from_file = TokenAuth.load(secret, environ={})
    assert from_file.allows(f"Bearer {TOKEN}")
    assert from_file.allows(f"bearer {TOKEN}")
    assert not from_file.allows(f"Bearer {TOKEN}x")
    assert not from_file.allows(TOKEN)
    assert not from_file.allows(None)
    from_env = TokenAuth.load(None, environ={TOKEN_ENV: TOKEN})
    assert from_env.configured
    assert from_env.allows(f"Bearer {TOKEN}")
    unset = TokenAuth.load(None, environ={})
    assert not unset.configured
    assert not unset.allows("Bearer ")


def test_short_or_unreadable_token_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least 16 characters"):
        TokenAuth.load(None, environ={TOKEN_ENV: "short"})
    with pytest.raises(UsageError, match="cannot read the API token"):
        TokenAuth.load(tmp_path / "missing", environ={})


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:9000", ("::1", 9000))],
)
def test_listen_address(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8080", "localhost:", "host:99999", ":80"])
def test_bad_listen_address(listen: str) -> None:
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        parse_listen(listen)


def test_audit_endpoint_reads_the_sqlite_store_with_its_hash_chain(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    write_policies(folder)
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        with start_serve(folder, store=store) as served:
            served.wait_status("shop", "rolled_back")
            body = served.client.get("/api/v1/audit", params={"deployment": "shop"}).json()
        assert body["backend"] == "store"
        entries = body["entries"]
        assert entries[0]["kind"] == "deployment_end"
        assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
        assert entries[0]["prev_hash"] == entries[1]["hash"]
        assert store.verify().ok
        assert {e.record.kind for e in store.list(deployment="shop")} >= {
            "decision",
            "action_result",
        }
    finally:
        store.close()


def test_serve_command_runs_and_answers(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_policies(tmp_path)
    port = free_port()
    env = {**cli_env, TOKEN_ENV: TOKEN}
    process = subprocess.Popen(
        [
            *rollguard_cmd,
            "serve",
            *("--policies", str(tmp_path), "--listen", f"127.0.0.1:{port}"),
            *("--replay-speed", "20", "--log-level", "warning"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, what="rollguard serve to be ready")
        listed = httpx.get(f"{url}/api/v1/deployments").json()
        assert sorted(d["name"] for d in listed["deployments"]) == ["cart", "shop"]
        paused = httpx.post(
            f"{url}/api/v1/deployments/cart/pause", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert paused.json()["status"] == "paused"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert "broken.yaml:4:3" in stderr
    assert TOKEN not in stderr


def test_serve_without_a_folder_is_one_message(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    result = subprocess.run(
        [*rollguard_cmd, "serve", "--policies", str(tmp_path / "nope")],
        env={k: v for k, v in cli_env.items() if k != TOKEN_ENV},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "not a folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.path.basename(str(tmp_path / "nope")) in result.stderr
