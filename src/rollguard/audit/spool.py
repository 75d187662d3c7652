"""A local spool in front of a store: entries written while the database is away are
kept on disk and flushed, in order, before the next append that reaches it.

rollguard refuses to *start* a watch without a reachable store (docs/audit.md);
this covers an outage *during* a watch, so a rollback in progress is never held
up by the audit database and no entry is lost. Each spooled record is one JSON
line, fsynced before ``append`` returns. Delivery to the store is at least once:
a crash between appending an entry to the store and moving the spool's anchor
past it can repeat that entry (it is then visibly duplicated, never missing).

The spool is chained (:mod:`rollguard.audit.spool_chain`), with the trail's
key when it is keyed, so a spool edited, cut or reordered while it waited is
never flushed as if it were true: the entries before the break are flushed,
the rest is *refused* — moved aside to ``<name>.refused-<time>.jsonl`` with its
head, for a person to look at — and a ``spool_refused`` entry in the trail says
which line broke, how, and where the refused entries are. Entries are hashed
into the trail when they reach the store, so the key is never on disk (and any
copy of the key's text in a record is redacted before it is kept).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rollguard.audit.base import AuditRecord, AuditStore, StoreWrapper
from rollguard.audit.keys import AuditKey, KeyMismatchError
from rollguard.audit.spool_chain import Broken, Entry, Head, read_entry, read_head, seal, walk
from rollguard.errors import AuditError

logger = logging.getLogger("rollguard.audit")

#: What ``append`` returns for an entry that is spooled, not yet in the store.
SPOOLED = 0


class SpoolTamperedError(AuditError):
    """The spool does not verify; raised by :meth:`SpooledStore.pending`, never by appends."""


class SpooledStore(StoreWrapper):
    """An :class:`AuditStore` whose appends fall back to a local, chained JSON-lines file."""

    def __init__(
        self,
        store: AuditStore,
        *,
        spool: Path,
        redact: Callable[[AuditRecord], AuditRecord] | None = None,
        key: AuditKey | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``redact`` cleans a record before it is kept on disk; ``key`` MACs the spool."""
        super().__init__(store)
        self.spool = spool
        self.head_path = spool.with_suffix(".head")
        self._redact = redact
        self._key = key
        self._clock = clock

    def append(self, record: AuditRecord) -> int:
        try:
            self.flush()
            return self.inner.append(record)
        except KeyMismatchError:
            raise  # a key that does not fit the trail will not fit later either: nothing kept
        except AuditError as exc:
            with self._locked():
                self._keep(record)
            logger.warning("audit store unavailable, entry kept in %s: %s", self.spool, exc)
            return SPOOLED

    def pending(self) -> Sequence[AuditRecord]:
        """Records waiting in the spool, oldest first; :class:`SpoolTamperedError` on a break."""
        if not self.spool.exists() and not self.head_path.exists():
            return []
        with self._locked():
            _, entries, broken = self._read()
        if broken is not None:
            raise SpoolTamperedError(f"{self.spool}:{broken.line}: {broken.message}")
        return [entry.record for entry in entries]

    def flush(self) -> int:
        """Append every verified spooled record to the store, oldest first; return how many.

        A break in the spool's chain refuses the rest (moved aside and recorded in
        the trail as ``spool_refused``); an unreachable store raises AuditError with
        the anchor past every entry already appended.
        """
        if not self.spool.exists() and not self.head_path.exists():  # the usual case
            return 0
        with self._locked():
            head, entries, broken = self._read()
            for entry in entries:
                self.inner.append(entry.record)
                head = head.flushed(entry.seq, entry.mac)
                self._write_head(head)
            if broken is not None:
                self._refuse(broken, first_line=broken.line, flushed=len(entries))
            else:
                self._remove(self.spool, self.head_path)
        return len(entries)

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

    def _read(self) -> tuple[Head, builtins.list[Entry], Broken | None]:
        """The head, the entries after its anchor that verify, and the first break."""
        lines = self._lines()
        if not self.head_path.exists():
            if any(text.strip() for _, text in lines):
                return Head(), [], Broken(1, "deleted", "the spool's head file is missing")
            return Head(), [], None
        head = read_head(self._text(self.head_path), self._key)
        if head is None:
            return Head(), [], Broken(1, "modified", "the spool's head file was edited")
        entries, broken = walk(head, lines, self._key)
        return head, entries, broken

    def _keep(self, record: AuditRecord) -> None:
        """Chain ``record`` onto the spool (the lock held); a broken spool is refused first."""
        if self._redact is not None:
            record = self._redact(record)
        head = self._tail()
        if head is None:  # the spool does not verify at its end: set it aside, start again
            # The store is away, so nothing can be flushed: the whole spool is set aside.
            broken = self._read()[2] or Broken(1, "modified", "the spool's end does not verify")
            self._refuse(broken, first_line=1)
            head = self._tail() or Head()
        seq = head.last_seq + 1
        line, mac = seal(seq, head.last_hash, record, self._key)
        if not self.head_path.exists():
            self._write_head(head)  # before the first line: a spool without a head is refused
        self._write_line(line)
        self._write_head(head.advanced(seq, mac))

    def _tail(self) -> Head | None:
        """The head, moved onto the last line when a crash left that line past it; None when
        the head or the last line does not verify (checked fully at the next flush)."""
        if not self.head_path.exists():
            return Head() if not self._has_lines() else None
        head = read_head(self._text(self.head_path), self._key)
        lines = [(number, text) for number, text in self._lines() if text.strip()]
        if head is None or not lines:
            return head if head is not None and head.last_seq == head.anchor_seq else None
        number, text = lines[-1]
        last = read_entry(text, number, self._key)
        if isinstance(last, Broken):
            return None
        if (last.seq, last.mac) == (head.last_seq, head.last_hash):
            return head
        if last.seq == head.last_seq + 1 and last.prev == head.last_hash:
            return head.advanced(last.seq, last.mac)
        return None

    def _refuse(self, broken: Broken, *, first_line: int, flushed: int = 0) -> None:
        """Move the spool aside and record why; its entries from ``first_line`` on never
        reach the trail (they stay in the file set aside, for a person to judge)."""
        stamp = self._clock().strftime("%Y%m%dT%H%M%S%fZ")
        kept = self.spool.with_name(f"{self.spool.stem}.refused-{stamp}.jsonl")
        refused = sum(1 for number, text in self._lines() if number >= first_line and text.strip())
        try:
            if self.spool.exists():
                os.replace(self.spool, kept)
            if self.head_path.exists():
                os.replace(self.head_path, kept.with_suffix(".head"))
        except OSError as exc:
            raise AuditError(f"cannot set the tampered spool {self.spool} aside: {exc}") from exc
        reason = (
            f"{self.spool}:{broken.line}: {broken.message}; refused {refused} spooled "
            f"entries from line {first_line} on, kept in {kept} for review"
        )
        logger.error("audit spool refused: %s", reason)
        notice = AuditRecord(
            kind="spool_refused",
            deployment="",
            timestamp=self._clock().isoformat(),
            reason=reason,
            severity="critical",
            action="none",
            outcome="refused",
            evidence={
                "spool": str(self.spool),
                "kept_in": str(kept),
                "line": broken.line,
                "problem": broken.problem,
                "entries_flushed": flushed,
                "entries_refused": refused,
            },
        )
        try:
            self.inner.append(notice)
        except KeyMismatchError:
            raise
        except AuditError:
            self._keep(notice)  # the store is away: the notice waits at the head of a new spool

    def _lines(self) -> builtins.list[tuple[int, str]]:
        if not self.spool.exists():
            return []
        text = self._text(self.spool)
        return list(enumerate(text.splitlines(), start=1))

    def _has_lines(self) -> bool:
        return any(text.strip() for _, text in self._lines())

    def _text(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise AuditError(f"cannot read the audit spool {path}: {exc.strerror}") from exc

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

    def _write_head(self, head: Head) -> None:
        temporary = self.head_path.with_suffix(".head-tmp")
        try:
            self.head_path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(head.text(self._key))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.head_path)
        except OSError as exc:
            raise AuditError(
                f"cannot write the audit spool's head {self.head_path}: {exc.strerror}"
            ) from exc

    @staticmethod
    def _remove(*paths: Path) -> None:
        """The spool first, then its head: a head alone is an empty, valid spool."""
        try:
            for path in paths:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise AuditError(f"cannot clear the audit spool {paths[0]}: {exc.strerror}") from exc
