"""A local spool in front of a store: entries written while the database is away are
kept on disk and flushed, in order, before the next append that reaches it.

rollguard refuses to *start* a watch without a reachable store (docs/audit.md);
this covers an outage *during* a watch, so a rollback in progress is never held
up by the audit database and no entry is lost. Each spooled record is one JSON
line, fsynced before ``append`` returns. Delivery to the store is at least once:
a crash between a successful flush and the spool's rewrite can repeat the
last flushed entry (it is then visibly duplicated, never silently missing).

The spool holds records, not hashes: entries are hashed when they reach the
store, with the store's key for a keyed trail, so the key is never on disk
(and any copy of the key's text in a record is redacted before it is kept).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from rollguard.audit.base import AuditRecord, AuditStore, StoreWrapper
from rollguard.audit.keys import KeyMismatchError
from rollguard.errors import AuditError

logger = logging.getLogger("rollguard.audit")

#: What ``append`` returns for an entry that is spooled, not yet in the store.
SPOOLED = 0


class SpooledStore(StoreWrapper):
    """An :class:`AuditStore` whose appends fall back to a local JSON-lines file."""

    def __init__(
        self,
        store: AuditStore,
        *,
        spool: Path,
        redact: Callable[[AuditRecord], AuditRecord] | None = None,
    ) -> None:
        """``redact`` cleans a record before it is kept on disk (a keyed store's key)."""
        super().__init__(store)
        self.spool = spool
        self._redact = redact

    def append(self, record: AuditRecord) -> int:
        try:
            self.flush()
            return self.inner.append(record)
        except KeyMismatchError:
            raise  # a key that does not fit the trail will not fit later either: nothing kept
        except AuditError as exc:
            self._keep(record)
            logger.warning("audit store unavailable, entry kept in %s: %s", self.spool, exc)
            return SPOOLED

    def pending(self) -> Sequence[AuditRecord]:
        """Records waiting in the spool, oldest first."""
        if not self.spool.exists():
            return []
        records: builtins.list[AuditRecord] = []
        for number, line in enumerate(self.spool.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(AuditRecord(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise AuditError(f"{self.spool}:{number}: not a spooled audit record") from exc
        return records

    def flush(self) -> int:
        """Append every spooled record to the store, oldest first; return how many."""
        if not self.spool.exists():  # the usual case: nothing to lock, nothing to read
            return 0
        with self._locked():
            waiting = self.pending()
            for index, record in enumerate(waiting):
                self.inner.append(record)
                self._rewrite(waiting[index + 1 :])
        return len(waiting)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the spool's lock file: watchers sharing a store URL (and so this spool)
        must not flush the same records twice or rewrite away one just kept."""
        try:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            handle = self.spool.with_suffix(".lock").open("a")
        except OSError as exc:
            raise AuditError(f"cannot lock the audit spool {self.spool}: {exc.strerror}") from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _keep(self, record: AuditRecord) -> None:
        if self._redact is not None:
            record = self._redact(record)
        line = json.dumps(asdict(record), default=str) + "\n"
        with self._locked():
            self._write_line(line)

    def _write_line(self, line: str) -> None:
        try:
            with self.spool.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise AuditError(
                f"the audit store is unavailable and the spool {self.spool} "
                f"cannot be written: {exc.strerror}"
            ) from exc

    def _rewrite(self, remaining: Sequence[AuditRecord]) -> None:
        temporary = self.spool.with_suffix(".tmp")
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                for record in remaining:
                    handle.write(json.dumps(asdict(record), default=str) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.spool)
            if not remaining:
                self.spool.unlink(missing_ok=True)
        except OSError as exc:
            raise AuditError(
                f"cannot rewrite the audit spool {self.spool}: {exc.strerror}"
            ) from exc
