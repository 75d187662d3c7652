"""``rollguard serve`` refuses bad options with exit 2 and one message, never a traceback."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]
TOKEN = {"ROLLGUARD_API_TOKEN": "0123456789abcdef0123"}


def test_unknown_log_level_is_a_usage_error(run_cli: Run, tmp_path: Path) -> None:
    done = run_cli("serve", "--policies", str(tmp_path), "--log-level", "loud", env=TOKEN)
    assert done.returncode == 2
    assert "'loud' is not one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_listen_address_in_use_exits_2_not_3(run_cli: Run, tmp_path: Path) -> None:
    """uvicorn's own exit code (3) would read as "blocked"; the CLI says invalid input."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            "serve", "--policies", str(tmp_path), "--listen", f"127.0.0.1:{port}", env=TOKEN
        )
    assert done.returncode == 2, done.stderr
    assert f"--listen 127.0.0.1:{port}: cannot listen there: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


KEY = "serve-k3y-7c1e9a2b5d4f6083-secret"


def _keyed_trail(tmp_path: Path) -> str:
    from rollguard.audit.base import AuditRecord
    from rollguard.audit.factory import open_store
    from rollguard.audit.keys import key_from_env

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url, key=key_from_env("K", field="test", environ={"K": KEY}))
    store.append(
        AuditRecord(kind="deployment_start", deployment="shop", timestamp="2026-11-27T09:00:00Z")
    )
    store.close()
    return url


def test_a_keyed_trail_without_its_key_stops_serve_before_it_listens(
    run_cli: Run, tmp_path: Path
) -> None:
    url = _keyed_trail(tmp_path)
    policies = tmp_path / "policies"
    policies.mkdir()
    bare = run_cli("serve", "--policies", str(policies), "--audit-url", url, env=TOKEN)
    wrong = run_cli(
        "serve",
        *("--policies", str(policies), "--audit-url", url, "--audit-key-env", "WRONG_KEY"),
        env={**TOKEN, "WRONG_KEY": "another-key-0b7e4f1d9c2a5e3f"},
    )
    for done in (bare, wrong):
        assert done.returncode == 6, done.stderr
        assert "keyed" in done.stderr
        assert "Traceback" not in done.stderr
        assert KEY not in done.stdout + done.stderr


def test_serve_with_the_trails_key_gets_past_the_key_check(run_cli: Run, tmp_path: Path) -> None:
    """The key is checked before the address is bound: a taken port then shows the key passed."""
    url = _keyed_trail(tmp_path)
    policies = tmp_path / "policies"
    policies.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            "serve",
            *("--policies", str(policies), "--audit-url", url),
            *("--audit-key-env", "AUDIT_KEY", "--listen", f"127.0.0.1:{port}"),
            env={**TOKEN, "AUDIT_KEY": KEY},
        )
    assert done.returncode == 2, done.stderr
    assert "cannot listen there: Address already in use" in done.stderr
    assert KEY not in done.stdout + done.stderr
