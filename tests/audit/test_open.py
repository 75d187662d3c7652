"""Opening a store: bad paths, foreign files and a PostgreSQL that is down are clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rollguard.audit.factory import open_store
from rollguard.errors import AuditError, ExitCode, UsageError
from support import free_port


def test_the_default_relative_path_is_created_under_base_dir(tmp_path: Path) -> None:
    store = open_store(base_dir=tmp_path)
    try:
        assert (tmp_path / ".rollguard" / "audit.db").is_file()
        with sqlite3.connect(tmp_path / ".rollguard" / "audit.db") as connection:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        store.close()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is a spreadsheet, not a database\n" * 200)
    with pytest.raises(AuditError, match="file is not a database") as caught:
        open_store(f"sqlite:///{path}")
    assert caught.value.exit_code == ExitCode.AUDIT_BROKEN
    assert path.read_bytes().startswith(b"this is a spreadsheet")


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(
        AuditError, match=r"not a rollguard audit database \(it holds other tables: users\)"
    ):
        open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert tables == {"users"}
    assert mode == "delete"


def test_an_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n")
    with pytest.raises(AuditError, match="cannot create the audit store folder"):
        open_store(f"sqlite:///{blocker / 'audit.db'}")


def test_a_postgresql_that_is_down_refuses_to_open_without_leaking_the_password() -> None:
    url = f"postgresql://rollguard:s3cret-pw@127.0.0.1:{free_port()}/audit"
    with pytest.raises(AuditError) as caught:
        open_store(url, connect_timeout_seconds=2)
    message = str(caught.value)
    assert "cannot open the audit store at postgresql+psycopg://rollguard:***@127.0.0.1" in message
    assert "s3cret-pw" not in message


def test_an_unknown_url_scheme_is_bad_input_naming_the_field_and_the_accepted_schemes() -> None:
    with pytest.raises(UsageError) as caught:
        open_store("mysql://admin:s3cret-pw@db/audit", field="--db")
    message = str(caught.value)
    assert message.startswith("--db: unsupported scheme 'mysql'; accepted schemes: sqlite")
    assert "postgresql (postgresql://USER@HOST/DB)" in message
    assert "s3cret-pw" not in message
    assert caught.value.exit_code == ExitCode.INVALID


def test_a_url_with_a_bad_port_is_refused_without_leaking_the_password() -> None:
    with pytest.raises(UsageError, match="not a database URL") as caught:
        open_store("postgresql://rollguard:s3cret-pw@127.0.0.1:port/audit")
    assert "s3cret-pw" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.INVALID


def test_a_reader_never_creates_a_store_and_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist" / "typo.db"
    with pytest.raises(AuditError, match=f"no audit store at {missing}") as caught:
        open_store(f"sqlite:///{missing}", create=False, field="--db")
    assert caught.value.exit_code == ExitCode.AUDIT_BROKEN
    assert not missing.parent.exists()


def test_three_slashes_name_the_relative_path_and_the_four_slash_spelling(
    tmp_path: Path,
) -> None:
    """``sqlite:///tmp/x.db`` is ``./tmp/x.db``: the message says where it looked and why."""
    real = tmp_path / "trail.db"
    open_store(f"sqlite:///{real}").close()
    relative = str(real).lstrip("/")
    base = tmp_path / "cwd"
    base.mkdir()
    with pytest.raises(AuditError) as caught:
        open_store(f"sqlite:///{relative}", base_dir=base, create=False)
    message = str(caught.value)
    assert f"no audit store at {base / relative}" in message
    assert f"for {real}, which exists, write sqlite:///{real} (four slashes)" in message
    assert not (base / relative).exists()


def test_an_empty_database_file_is_no_store_for_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    sqlite3.connect(path).close()
    with pytest.raises(AuditError, match="holds no audit trail"):
        open_store(f"sqlite:///{path}", create=False)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_writer_creating_a_likely_mistyped_store_says_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relative = str(tmp_path / "x.db").lstrip("/")
    base = tmp_path / "cwd"
    base.mkdir()
    open_store(f"sqlite:///{relative}", base_dir=base).close()
    assert f"creating a new audit store at {base / relative}" in caplog.text
    assert "four slashes" in caplog.text
