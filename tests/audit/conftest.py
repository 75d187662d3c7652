"""Audit stores over every backend: the same contract for SQLite and a real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import StoreFactory

from rollguard.audit.factory import open_store
from rollguard.audit.keys import AuditKey
from rollguard.audit.sql import SqlAuditStore
from servers.postgres import PostgresServer, postgres_server

__all__ = ["postgres_server"]

_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to a new, empty store on one backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_schema(f"audit_{next(_counter)}")


@pytest.fixture
def open_stores(store_url: str) -> Iterator[StoreFactory]:
    """Opens as many stores on the same database as a test wants (with a key or not);
    closes them after."""
    opened: list[SqlAuditStore] = []

    def make(key: AuditKey | None = None) -> SqlAuditStore:
        opened.append(open_store(store_url, key=key))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_stores: StoreFactory) -> SqlAuditStore:
    return open_stores()
