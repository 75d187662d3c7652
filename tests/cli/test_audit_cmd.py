"""``rollguard audit`` as a user runs it: a real process, a real store, exit codes."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.cli.audit_options import since_timestamp
from rollguard.errors import UsageError


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url)
    for n, deployment in enumerate(["shop", "search", "shop"]):
        store.append(
            AuditRecord(
                kind="action_result",
                deployment=deployment,
                timestamp=f"2026-11-2{n}T09:00:00Z",
                trigger="error_rate_trigger",
                reason="error_rate_exceeded",
                severity="critical",
                action="immediate_rollback",
                metrics={"errorRate": 7.5, "latency": 180.0, "memoryUsage": 210.0},
                outcome="success",
                duration_seconds=3.25,
                affected_users=120 + n,
            )
        )
    store.close()
    return url


def _run(
    rollguard_cmd: list[str], env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*rollguard_cmd, "audit", *args], env=env, capture_output=True, text=True, check=False
    )


def test_list_json_filters_by_deployment(
    rollguard_cmd: list[str], cli_env: dict[str, str], db: str
) -> None:
    done = _run(rollguard_cmd, cli_env, "list", "--deployment", "shop", "-o", "json", "--db", db)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["id"] for row in rows] == [1, 3]
    assert rows[1]["affectedUsers"] == 122
    assert rows[0]["metrics"]["errorRate"] == 7.5


def test_export_csv_and_show(rollguard_cmd: list[str], cli_env: dict[str, str], db: str) -> None:
    done = _run(rollguard_cmd, cli_env, "export", "-o", "csv", "--db", db)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["deployment"] for row in rows] == ["shop", "search", "shop"]
    assert rows[2]["prevHash"] == rows[1]["hash"]
    shown = _run(rollguard_cmd, cli_env, "show", "2", "-o", "json", "--db", db)
    assert json.loads(shown.stdout)["hash"] == rows[1]["hash"]


def test_output_is_dash_o_as_elsewhere_and_dash_capital_o_a_hidden_deprecated_alias(
    rollguard_cmd: list[str], cli_env: dict[str, str], db: str
) -> None:
    verified = _run(rollguard_cmd, cli_env, "verify", "-o", "json", "--db", db)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["entries"] == 3
    legacy = _run(rollguard_cmd, cli_env, "verify", "-O", "json", "--db", db)
    assert legacy.returncode == 0, legacy.stderr
    assert json.loads(legacy.stdout) == json.loads(verified.stdout)
    assert "-O is deprecated; use -o/--output" in legacy.stderr
    for command in ("list", "show", "verify"):
        shown = _run(rollguard_cmd, cli_env, command, "--help")
        assert re.search(r"--output\s+-o\s", shown.stdout), shown.stdout
        assert "-O" not in shown.stdout


def test_verify_exits_0_then_6_naming_the_modified_entry(
    rollguard_cmd: list[str], cli_env: dict[str, str], db: str
) -> None:
    intact = _run(rollguard_cmd, cli_env, "verify", "--db", db)
    assert intact.returncode == 0
    assert "audit trail intact: 3 entries" in intact.stdout
    engine = create_engine(db)
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_entries_no_update"))
        connection.execute(text("UPDATE audit_entries SET affected_users = 1 WHERE id = 2"))
    engine.dispose()
    broken = _run(rollguard_cmd, cli_env, "verify", "--db", db)
    assert broken.returncode == 6
    assert "entry 2 was modified" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_since_garbage_exits_2_with_one_message(
    rollguard_cmd: list[str], cli_env: dict[str, str], db: str
) -> None:
    done = _run(rollguard_cmd, cli_env, "list", "--since=30 fortnights", "--db", db)
    assert done.returncode == 2
    assert "--since: expected a duration such as 30d" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_foreign_file_exits_6_with_one_message(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not sqlite\n" * 100)
    done = _run(rollguard_cmd, cli_env, "verify", "--db", f"sqlite:///{path}")
    assert done.returncode == 6
    assert "file is not a database" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_db_url_of_another_scheme_exits_2_naming_the_option(
    rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    done = _run(rollguard_cmd, cli_env, "verify", "--db", "mysql://db/audit")
    assert done.returncode == 2
    assert "--db: unsupported scheme 'mysql'; accepted schemes: sqlite" in done.stderr
    assert "Traceback" not in done.stderr


def test_since_accepts_durations_and_dates() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert since_timestamp("30d", now=now) == "2026-10-28T10:00:00.000000Z"
    assert since_timestamp("90m", now=now) == "2026-11-27T08:30:00.000000Z"
    assert since_timestamp("2026-11-01", now=now) == "2026-11-01T00:00:00.000000Z"
    assert since_timestamp(None) is None
    for garbage in ("soon", "30 fortnights", "-5d", ""):
        with pytest.raises(UsageError, match="expected a duration such as 30d"):
            since_timestamp(garbage, now=now)


def test_policy_names_the_store_relative_to_its_folder(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "rollguard.yaml").write_text(
        "target: {deployment: shop}\n"
        'metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}\n'
        "audit: {url: 'sqlite:///trail/audit.db'}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    store = open_store(f"sqlite:///{folder / 'trail' / 'audit.db'}")
    store.append(AuditRecord(kind="gate", deployment="shop", timestamp="2026-11-27T09:00:00Z"))
    store.close()
    done = _run(rollguard_cmd, cli_env, "verify", "--policy", str(folder / "rollguard.yaml"))
    assert done.returncode == 0, done.stderr
    assert "audit trail intact: 1 entries" in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "list"],
        ["audit", "show", "1"],
        ["audit", "export"],
        ["audit", "verify"],
        ["report"],
    ],
)
@pytest.mark.parametrize("how", ["--db", "default"])
def test_reading_commands_never_create_a_store(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path, command: list[str], how: str
) -> None:
    missing = tmp_path / "does-not-exist" / "typo.db"
    args = [*command, "--db", f"sqlite:///{missing}"] if how == "--db" else command
    expected = missing if how == "--db" else tmp_path / ".rollguard" / "audit.db"
    done = subprocess.run(
        [*rollguard_cmd, *args],
        env={k: v for k, v in cli_env.items() if k != "ROLLGUARD_AUDIT_DB"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 6, done.stdout + done.stderr
    assert f"no audit store at {expected}" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_verify_of_an_empty_trail_says_empty_and_exits_4(
    rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    open_store(url).close()
    done = _run(rollguard_cmd, cli_env, "verify", "--db", url)
    assert done.returncode == 4, done.stderr
    assert "audit trail empty" in done.stdout
    assert "intact" not in done.stdout
    as_json = _run(rollguard_cmd, cli_env, "verify", "--db", url, "-o", "json")
    assert as_json.returncode == 4
    assert json.loads(as_json.stdout)["empty"] is True
