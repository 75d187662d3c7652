"""The audit sink ``serve`` hands its watchers, and what the API reads back.

Every record goes to the configured store (when there is one: SQLite or
PostgreSQL through :func:`rollguard.audit.factory.open_store`) and into a
short in-memory list, so the page shows recent entries without a database
round-trip. ``GET /api/v1/audit`` reads the store when one is configured, with
its ids and hashes, and the in-memory list otherwise.

Watchers write through :meth:`AuditView.append_async`: the blocking write runs
on one dedicated thread, so a slow or unreachable database (PostgreSQL's
connect timeout) never stalls the event loop and with it every API request.
One thread keeps the entries in the order they were handed over, and the
caller still resumes only once its entry is durable.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Protocol

from rollguard.audit import base
from rollguard.audit.base import AuditEntry, AuditRecord, AuditSink

RECENT_LENGTH = 500


class AuditStore(AuditSink, Protocol):
    """The part of :class:`~rollguard.audit.sql.SqlAuditStore` the API reads."""

    def list(
        self,
        *,
        since: str | None = None,
        deployment: str | None = None,
        kind: str | None = None,
        newest: int | None = None,
        namespace: str | None = None,
    ) -> Sequence[AuditEntry]:
        """Entries in id order, filtered; ``newest``: only the last N."""


class AuditView:
    """A tee: the store (optional) and the recent records in memory."""

    def __init__(self, store: AuditStore | None = None, *, keep: int = RECENT_LENGTH) -> None:
        self.store = store
        self._recent: deque[tuple[int, AuditRecord]] = deque(maxlen=keep)
        self._count = 0
        self._memory_lock = threading.Lock()  # the writer thread appends, the loop reads
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")

    @property
    def backend(self) -> str:
        """``store`` or ``memory``: where ``GET /api/v1/audit`` reads from."""
        return "store" if self.store is not None else "memory"

    def append(self, record: AuditRecord) -> int:
        """Write through to the store first: a record is recent only once it is durable."""
        if self.store is not None:
            entry_id = self.store.append(record)
            with self._memory_lock:
                self._recent.append((entry_id, record))
            return entry_id
        with self._memory_lock:
            self._count += 1
            self._recent.append((self._count, record))
            return self._count

    async def append_async(self, record: AuditRecord) -> int:
        """:meth:`append` on the writer thread; returns once the record is durable.

        Shielded: a watcher cancelled while its entry waits still gets it written
        (a queued write is never dropped), in its place in the order.
        """
        done = asyncio.wrap_future(self._writer.submit(self.append, record))
        return await asyncio.shield(done)

    def close(self) -> None:
        """Let queued writes finish, then stop the writer thread."""
        self._writer.shutdown(wait=True)

    def recent(
        self, *, deployment: str | None = None, namespace: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest records first, from memory (filtered as the store filters)."""
        out: list[dict[str, Any]] = []
        with self._memory_lock:
            snapshot = list(self._recent)
        for entry_id, record in reversed(snapshot):
            named = deployment is None or record.deployment == deployment
            if named and (namespace is None or record.namespace == namespace):
                out.append({"id": entry_id, **asdict(record)})
                if len(out) >= limit:
                    break
        return out

    async def entries(
        self, *, deployment: str | None = None, namespace: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest entries first: from the store when configured, else from memory."""
        store = self.store
        if store is None:
            return self.recent(deployment=deployment, namespace=namespace, limit=limit)
        # Only the newest rows: the page asks every second, the trail only grows.
        found = await asyncio.to_thread(
            store.list, deployment=deployment, namespace=namespace, newest=limit
        )
        newest = list(found)[::-1]
        return [
            {
                "id": entry.id,
                **asdict(entry.record),
                "hash": entry.hash,
                "prev_hash": entry.prev_hash,
            }
            for entry in newest
        ]

    def durable(self) -> AuditSink:
        """What watchers write to. With a full store, a :class:`DurableView`: the watchers
        then lease their deployment and first finish what a killed ``serve`` left
        half-done (:mod:`rollguard.controller.recovery`), as ``rollguard watch`` does."""
        if isinstance(self.store, base.AuditStore):
            return DurableView(self, self.store)
        return self


class DurableView(base.StoreWrapper):
    """The view as a whole :class:`~rollguard.audit.base.AuditStore`: writes go through the
    view (its writer thread and recent list), reads and leases to the store."""

    def __init__(self, view: AuditView, store: base.AuditStore) -> None:
        super().__init__(store)
        self.view = view

    def append(self, record: AuditRecord) -> int:
        return self.view.append(record)

    async def append_async(self, record: AuditRecord) -> int:
        return await self.view.append_async(record)

    def close(self) -> None:
        """The view owns the store and closes it."""
