"""``rollguard audit verify`` and ``report`` on a keyed trail, as a user runs them; and the
key itself in none of the outputs, errors or stored bytes of the commands that take it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.audit.keys import key_from_env

KEY = "k3y-cli-5e9d0a7c41b2f6e8-never-shown"
WRONG = "wrong-key-0b7e4f1d9c2a5e3f8a6d"


@pytest.fixture
def keyed_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url, key=key_from_env("K", field="test", environ={"K": KEY}))
    for n in range(3):
        store.append(
            AuditRecord(
                kind="action_result",
                deployment="shop",
                timestamp=f"2026-11-2{n}T09:00:00Z",
                trigger="error_rate_trigger",
                action="immediate_rollback",
                outcome="success",
                affected_users=10 + n,
            )
        )
    store.close()
    return url


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "AUDIT_KEY": KEY, "WRONG_KEY": WRONG}


def _run(cmd: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, check=False)


def _key_id() -> str:
    return key_from_env("K", field="test", environ={"K": KEY}).id


def test_verify_needs_the_key_of_a_keyed_trail(
    rollguard_cmd: list[str], env: dict[str, str], keyed_db: str
) -> None:
    bare = _run(rollguard_cmd, env, "audit", "verify", "--db", keyed_db)
    assert bare.returncode == 2
    assert f"is keyed (key id {_key_id()}): verifying it needs the key" in bare.stderr
    assert "Traceback" not in bare.stderr
    keyed = _run(rollguard_cmd, env, "audit", "verify", "--db", keyed_db, "--key-env", "AUDIT_KEY")
    assert keyed.returncode == 0, keyed.stderr
    assert "audit trail intact: 3 entries, head " in keyed.stdout
    assert f"keyed (key id {_key_id()})" in keyed.stdout
    shown = _run(
        rollguard_cmd,
        env,
        "audit",
        "verify",
        "--db",
        keyed_db,
        "--key-env",
        "AUDIT_KEY",
        "-o",
        "json",
    )
    assert json.loads(shown.stdout)["key_id"] == _key_id()


def test_verify_with_another_key_exits_6_naming_the_first_entry(
    rollguard_cmd: list[str], env: dict[str, str], keyed_db: str
) -> None:
    done = _run(rollguard_cmd, env, "audit", "verify", "--db", keyed_db, "--key-env", "WRONG_KEY")
    assert done.returncode == 6
    assert "entry 1 was modified" in done.stderr
    assert f"keyed with key id {_key_id()}" in done.stderr


def test_an_unset_key_variable_exits_2(
    rollguard_cmd: list[str], env: dict[str, str], keyed_db: str
) -> None:
    done = _run(rollguard_cmd, env, "audit", "verify", "--db", keyed_db, "--key-env", "NOPE")
    assert done.returncode == 2
    assert "--key-env: environment variable NOPE is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_policy_names_the_key_variable_for_verify_and_report(
    rollguard_cmd: list[str], env: dict[str, str], keyed_db: str, tmp_path: Path
) -> None:
    policy = tmp_path / "rollguard.yaml"
    policy.write_text(
        "target: {deployment: shop}\n"
        'metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}\n'
        f"audit: {{url: '{keyed_db}', key_env: AUDIT_KEY}}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    verified = _run(rollguard_cmd, env, "audit", "verify", "--policy", str(policy))
    assert verified.returncode == 0, verified.stderr
    assert f"keyed (key id {_key_id()})" in verified.stdout
    listed = _run(rollguard_cmd, {**env, "AUDIT_KEY": ""}, "audit", "list", "--policy", str(policy))
    assert listed.returncode == 0, listed.stderr  # reading needs no key
    unkeyed = _run(rollguard_cmd, env, "report", "--since", "3650d", "--db", keyed_db)
    assert unkeyed.returncode == 2
    assert "verifying it needs the key" in unkeyed.stderr
    report = _run(rollguard_cmd, env, "report", "--since", "3650d", "--policy", str(policy))
    assert report.returncode == 0, report.stderr
    assert "Audit trail complete" in report.stdout


def test_the_key_is_in_no_output_error_or_stored_byte(
    rollguard_cmd: list[str], env: dict[str, str], keyed_db: str, tmp_path: Path
) -> None:
    runs = [
        ("audit", "verify", "--db", keyed_db, "--key-env", "AUDIT_KEY"),
        ("audit", "verify", "--db", keyed_db, "--key-env", "AUDIT_KEY", "-o", "json"),
        ("audit", "verify", "--db", keyed_db, "--key-env", "WRONG_KEY"),
        ("audit", "verify", "--db", keyed_db, "--key-env", "WRONG_KEY", "-o", "json"),
        ("audit", "verify", "--db", keyed_db),
        ("audit", "list", "--db", keyed_db, "-o", "json"),
        ("audit", "show", "2", "--db", keyed_db, "-o", "json"),
        ("audit", "export", "-o", "csv", "--db", keyed_db),
        ("report", "--since", "3650d", "--db", keyed_db, "--key-env", "AUDIT_KEY"),
        ("report", "--since", "3650d", "--db", keyed_db, "--key-env", "WRONG_KEY"),
        ("audit", "verify", "--help"),
    ]
    engine = create_engine(keyed_db)
    with engine.begin() as connection:  # a broken keyed trail too: its message names no key
        connection.execute(text("DROP TRIGGER audit_entries_no_update"))
        connection.execute(text("UPDATE audit_entries SET affected_users = 0 WHERE id = 2"))
    engine.dispose()
    outputs = [_run(rollguard_cmd, env, *args) for args in runs]
    assert {done.returncode for done in outputs} >= {0, 2, 6}
    for args, done in zip(runs, outputs, strict=True):
        assert KEY not in done.stdout + done.stderr, args
        assert WRONG not in done.stdout + done.stderr, args
    assert "entry 2 was modified" in outputs[0].stderr
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("audit.db*"))
    assert KEY.encode() not in stored
    assert _key_id().encode() in stored  # the mark: a key id, not the key
