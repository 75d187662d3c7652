"""The hash chain: canonical JSON, entry hashes, and the walk that verifies them.

Each entry's hash is SHA-256 over the canonical JSON (sorted keys, no spaces,
UTF-8, no NaN) of its id, its record and the previous entry's hash — or, for a
keyed trail, HMAC-SHA256 under the key (:mod:`rollguard.audit.keys`); the first
entry's previous hash is :data:`GENESIS`. The store also keeps a *head* (the
last id and hash) so that deleting or appending entries at the end is caught
too. Everything here is pure so the same walk serves every backend.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from rollguard.audit.base import AuditRecord, Problem, VerifyReport
from rollguard.errors import AuditError
from rollguard.timestamps import parse_rfc3339, rfc3339

if TYPE_CHECKING:
    from rollguard.audit.keys import AuditKey

GENESIS = "0" * 64
#: What ``verify`` says of a trail with no entries: nothing was checked.
EMPTY_MESSAGE = "audit trail empty: no entries to verify"


def canonical_json(value: object) -> str:
    """The one JSON text of a value: sorted keys, compact, NaN and infinity as null."""
    return json.dumps(_clean(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _clean(value: object) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def normalize_timestamp(raw: str) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: fixed width, so text order is time order."""
    try:
        parsed = parse_rfc3339(raw)
    except (ValueError, AttributeError) as exc:
        raise AuditError(f"audit record timestamp {raw!r} is not RFC 3339") from exc
    return rfc3339(parsed)


def normalize_record(record: AuditRecord) -> AuditRecord:
    """The record as it will read back from any backend: UTC time, JSON-clean mappings."""
    return AuditRecord(
        kind=record.kind,
        deployment=record.deployment,
        timestamp=normalize_timestamp(record.timestamp),
        trigger=record.trigger,
        reason=record.reason,
        severity=record.severity,
        action=record.action,
        metrics=json.loads(canonical_json(record.metrics)),
        outcome=record.outcome,
        duration_seconds=float(record.duration_seconds),
        affected_users=int(record.affected_users),
        policy_digest=record.policy_digest,
        evidence=json.loads(canonical_json(record.evidence)),
        executor_output=json.loads(canonical_json(record.executor_output)),
        watch_id=record.watch_id,
        namespace=record.namespace,
    )


_FIELDS = tuple(item.name for item in fields(AuditRecord))
#: Hashed only when set: entries written before namespaces were recorded (and
#: entries about deployments without one) keep the exact text they were hashed with.
OPTIONAL_FIELDS = frozenset({"namespace"})
#: Fields stored (and hashed) as their canonical JSON text.
JSON_FIELDS = frozenset({"metrics", "evidence", "executor_output"})


def record_columns(record: AuditRecord) -> dict[str, Any]:
    """The record as stored: scalars as they are, mappings as canonical JSON text."""
    return {
        name: canonical_json(getattr(record, name))
        if name in JSON_FIELDS
        else getattr(record, name)
        for name in _FIELDS
    }


def columns_hash(
    entry_id: int, columns: Mapping[Any, Any], prev_hash: str, key: AuditKey | None = None
) -> str:
    """SHA-256 (HMAC-SHA256 with ``key``) of the canonical JSON of id, columns and previous hash.

    Hashing the stored text (not a re-parsed value) lets ``verify`` check rows
    without parsing their JSON, and makes any rewrite of that text visible. An
    empty or missing optional field (:data:`OPTIONAL_FIELDS`) is left out of the
    text, so a namespace added to an old entry, or removed from a new one, breaks
    its hash.
    """
    record = {
        name: columns[name] for name in _FIELDS if name not in OPTIONAL_FIELDS or columns.get(name)
    }
    body = {"id": entry_id, "prev_hash": prev_hash, "record": record}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if key is not None:
        return key.digest(text.encode("utf-8"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(
    entry_id: int, record: AuditRecord, prev_hash: str, key: AuditKey | None = None
) -> str:
    """The hash an entry holding ``record`` at ``entry_id`` after ``prev_hash`` must have."""
    return columns_hash(entry_id, record_columns(record), prev_hash, key)


@dataclass(frozen=True)
class Link:
    """One stored row as the chain walk sees it: its hashes and its recomputed hash."""

    id: int
    prev_hash: str
    hash: str
    actual_hash: str


def verify_entries(
    entries: Iterable[Link],
    *,
    head: tuple[int, str] | None,
    owner_of: Callable[[str], int | None],
) -> VerifyReport:
    """Walk the chain in id order and name the first break.

    ``head`` is the store's (last id, last hash), ``None`` when nothing was
    ever appended; ``owner_of(hash)`` finds the id of the entry whose stored
    hash is ``hash`` (it tells a reordering from a deletion).
    """
    iterator: Iterator[Link] = iter(entries)
    current = next(iterator, None)
    previous: Link | None = None
    grand_id: int | None = None  # the id before ``previous``: tells an insertion
    expected, count = GENESIS, 0
    while current is not None:
        following = next(iterator, None)
        if head is not None and current.id > head[0]:
            message = (
                f"entry {current.id} was appended outside rollguard (the head is entry {head[0]})"
            )
            return _broken(count, expected, current.id, "inserted", message)
        around = _Around(previous, grand_id, following, expected)
        problem = _check(current, around, owner_of)
        if problem is not None:
            kind, entry_id, message = problem
            return _broken(count, expected, entry_id, kind, message)
        count += 1
        grand_id = previous.id if previous else None
        previous, expected, current = current, current.hash, following
    return _check_head(previous, head, count, expected)


@dataclass(frozen=True)
class _Around:
    """An entry's neighbours in the walk, and the hash it should link to."""

    previous: Link | None
    grand_id: int | None
    following: Link | None
    expected: str


def _check(
    entry: Link, around: _Around, owner_of: Callable[[str], int | None]
) -> tuple[Problem, int, str] | None:
    """``(problem, entry id, message)`` for the first thing wrong with ``entry``, else ``None``."""
    previous, grand_id, following, expected = (
        around.previous,
        around.grand_id,
        around.following,
        around.expected,
    )
    after = f"entry {previous.id}" if previous else "the start of the chain"
    if entry.prev_hash == expected:
        if entry.actual_hash != entry.hash:
            return (
                "modified",
                entry.id,
                f"entry {entry.id} was modified: its content no longer matches its hash",
            )
        return None
    owner = owner_of(entry.prev_hash)
    if previous is not None and owner is not None and owner == grand_id:
        return (
            "inserted",
            previous.id,
            f"entry {previous.id} was inserted: entry {entry.id} follows entry {owner}",
        )
    if owner is not None and (previous is None or owner != previous.id):
        return (
            "reordered",
            entry.id,
            f"entry {entry.id} is out of order: it follows entry {owner}, not {after}",
        )
    if following is not None and following.prev_hash == expected:
        return (
            "inserted",
            entry.id,
            f"entry {entry.id} was inserted after {after}: it is not in the chain",
        )
    if previous is not None and entry.id == previous.id + 1:
        return (
            "modified",
            previous.id,
            f"entry {previous.id} was modified: entry {entry.id} recorded a different hash for it",
        )
    missing = _missing(previous, entry)
    return "deleted", entry.id, f"{missing} deleted between {after} and entry {entry.id}"


def _missing(previous: Link | None, entry: Link) -> str:
    first = previous.id + 1 if previous else 1
    last = entry.id - 1
    if last < first:
        return "entries were"
    return f"entry {first} was" if first == last else f"entries {first}-{last} were"


def _check_head(
    last: Link | None, head: tuple[int, str] | None, count: int, expected: str
) -> VerifyReport:
    if head is None:
        if last is None:
            # Nothing to check is not "intact": readers say "empty" (a false green else).
            return VerifyReport(ok=True, entries=0, head_hash=GENESIS, message=EMPTY_MESSAGE)
        return _broken(
            count, expected, last.id, "inserted", "entries exist but the store never appended any"
        )
    head_id, head_hash = head
    if last is None or last.id < head_id:
        first = last.id + 1 if last else 1
        return _broken(
            count,
            expected,
            first,
            "deleted",
            f"entries {first}-{head_id} were deleted from the end of the chain",
        )
    if last.hash != head_hash:
        return _broken(
            count, expected, last.id, "modified", f"entry {last.id} does not match the head hash"
        )
    return VerifyReport(ok=True, entries=count, head_hash=expected)


def _broken(
    count: int, head_hash: str, entry_id: int, problem: Problem, message: str
) -> VerifyReport:
    return VerifyReport(
        ok=False,
        entries=count,
        head_hash=head_hash,
        entry_id=entry_id,
        problem=problem,
        message=message,
    )
