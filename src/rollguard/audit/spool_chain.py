"""The outage spool's own chain: an edited, deleted or reordered spooled entry shows.

Each spool line is one entry::

    {"seq": 7, "prev": "<mac of entry 6>", "mac": "<mac>", "record": {...}}

where ``mac`` is SHA-256 — HMAC-SHA256 under the trail's key for a keyed
trail — of a tag and the canonical JSON of ``seq``, ``prev`` and ``record``.
A *head* file beside the spool holds, under its own MAC, the *anchor* (the
last entry flushed into the store) and the *last* entry kept, so entries cut
from the end show too (the head points past the last line). The walk here is
pure: :mod:`rollguard.audit.spool` does the files and the flushing.

Limits (docs/security.md): without a key, someone who can write the spool can
rebuild the whole chain and head; with a key they cannot, but they can still
delete the spool and head together, or put back an older copy of both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from rollguard.audit.base import AuditRecord, Problem
from rollguard.audit.chain import GENESIS, canonical_json

if TYPE_CHECKING:
    from rollguard.audit.keys import AuditKey

_ENTRY_TAG = b"rollguard spool entry\n"
_HEAD_TAG = b"rollguard spool head\n"


def _mac(tag: bytes, body: Mapping[str, Any], key: AuditKey | None) -> str:
    text = tag + canonical_json(body).encode("utf-8")
    return key.digest(text) if key is not None else hashlib.sha256(text).hexdigest()


@dataclass(frozen=True)
class Head:
    """Where the spool's chain starts (``anchor``, flushed) and ends (``last``, kept)."""

    anchor_seq: int = 0
    anchor_hash: str = GENESIS
    last_seq: int = 0
    last_hash: str = GENESIS

    def advanced(self, seq: int, mac: str) -> Head:
        """The head after entry ``seq`` was kept."""
        return replace(self, last_seq=seq, last_hash=mac)

    def flushed(self, seq: int, mac: str) -> Head:
        """The head after entry ``seq`` reached the store."""
        return replace(self, anchor_seq=seq, anchor_hash=mac)

    def text(self, key: AuditKey | None) -> str:
        body = asdict(self)
        return json.dumps({**body, "mac": _mac(_HEAD_TAG, body, key)}, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Entry:
    """One verified spool line."""

    number: int  # the line in the file, 1-based
    seq: int
    prev: str
    mac: str
    record: AuditRecord


@dataclass(frozen=True)
class Broken:
    """The first thing wrong with a spool: where, what kind, and a sentence."""

    line: int
    problem: Problem
    message: str


def seal(seq: int, prev: str, record: AuditRecord, key: AuditKey | None) -> tuple[str, str]:
    """The spool line for ``record`` as entry ``seq`` after ``prev``, and its MAC."""
    # Through JSON first, so the MAC covers exactly what a reader will parse back.
    data = json.loads(json.dumps(asdict(record), default=str))
    mac = _mac(_ENTRY_TAG, {"seq": seq, "prev": prev, "record": data}, key)
    line = json.dumps({"seq": seq, "prev": prev, "mac": mac, "record": data}, allow_nan=True)
    return line + "\n", mac


def read_head(text: str, key: AuditKey | None) -> Head | None:
    """The head a head file holds, or None when it is not one rollguard wrote with ``key``."""
    try:
        data = json.loads(text)
        head = Head(
            anchor_seq=int(data["anchor_seq"]),
            anchor_hash=str(data["anchor_hash"]),
            last_seq=int(data["last_seq"]),
            last_hash=str(data["last_hash"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return head if data.get("mac") == _mac(_HEAD_TAG, asdict(head), key) else None


def read_entry(text: str, number: int, key: AuditKey | None) -> Entry | Broken:
    """One line as a verified entry, or why it is not one."""
    try:
        data = json.loads(text)
        seq, prev, mac, fields = data["seq"], data["prev"], data["mac"], data["record"]
        if not isinstance(seq, int) or not isinstance(fields, dict):
            raise TypeError("seq or record")
        expected = _mac(_ENTRY_TAG, {"seq": seq, "prev": prev, "record": fields}, key)
        record = AuditRecord(**fields)
    except (ValueError, KeyError, TypeError, RecursionError):
        return Broken(
            number,
            "modified",
            f"line {number} is not a chained spool entry "
            "(edited, or written by an older rollguard)",
        )
    if mac != expected:
        return Broken(
            number,
            "modified",
            f"line {number} (entry {seq}) was edited: it no longer matches its MAC",
        )
    return Entry(number, seq, str(prev), str(mac), record)


def walk(
    head: Head, lines: Iterable[tuple[int, str]], key: AuditKey | None
) -> tuple[list[Entry], Broken | None]:
    """The entries after the anchor that verify, in order, and the first break (or None).

    Lines at or before the anchor were flushed already (a crash came between the
    flush and the spool's rewrite) and are skipped. A line past the head's last
    entry is accepted when it chains on: a crash can come between writing a
    line and its head.
    """
    good: list[Entry] = []
    seq, prev, number = head.anchor_seq, head.anchor_hash, 0
    numbered = [(n, text) for n, text in lines if text.strip()]
    for index, (number, text) in enumerate(numbered):
        entry = read_entry(text, number, key)
        if isinstance(entry, Broken):
            return good, entry
        if not good and entry.seq <= head.anchor_seq:
            continue
        problem = _out_of_chain(entry, seq, prev, later=numbered[index + 1 :])
        if problem is not None:
            return good, problem
        good.append(entry)
        seq, prev = entry.seq, entry.mac
    if seq < head.last_seq:
        gone = _span(seq + 1, head.last_seq)
        return good, Broken(number + 1, "deleted", f"{gone} deleted from the end of the spool")
    if seq == head.last_seq and prev != head.last_hash:
        return good, Broken(number, "modified", f"entry {seq} does not match the spool's head")
    return good, None


def _out_of_chain(
    entry: Entry, seq: int, prev: str, *, later: list[tuple[int, str]]
) -> Broken | None:
    line = f"line {entry.number} (entry {entry.seq})"
    if entry.seq > seq + 1:
        for number, text in later:  # the missing entry further down: moved, not deleted
            if _seq_of(text) == seq + 1:
                early = f"{line} is out of order: entry {seq + 1} comes after it, at line {number}"
                return Broken(entry.number, "reordered", early)
        gone = _span(seq + 1, entry.seq - 1)
        return Broken(entry.number, "deleted", f"{gone} deleted before {line}")
    if entry.seq <= seq:
        late = f"{line} is out of order: entry {seq} came before it"
        return Broken(entry.number, "reordered", late)
    if entry.prev != prev:
        return Broken(entry.number, "reordered", f"{line} does not follow entry {seq}")
    return None


def _span(first: int, last: int) -> str:
    return f"entry {first} was" if first == last else f"entries {first}-{last} were"


def _seq_of(text: str) -> object:
    """A line's ``seq`` as written (unverified: only to word a message)."""
    try:
        return json.loads(text).get("seq")
    except (ValueError, AttributeError, RecursionError):
        return None
