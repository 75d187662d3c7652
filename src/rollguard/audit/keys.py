"""The secret key of a keyed audit chain, and the mark that says a trail is keyed.

With a key, each entry's hash is HMAC-SHA256(key, canonical text) instead of
SHA-256, so someone who can write the database but does not hold the key can
no longer rebuild a consistent chain. The key only ever comes from an
environment variable (``audit.key_env``, ``--key-env``); what is stored, shown
and logged is its *key id*, the first 16 hex digits of
HMAC(key, ``"rollguard audit key id"``), never the key.

A trail is keyed or not from its first entry on, for good: the first append
writes a mark (``chain_key`` in ``audit_meta``) and every later append checks
it. Databases written before keys existed have no mark and are unkeyed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import fields, replace

from rollguard.audit.base import AuditRecord, VerifyReport
from rollguard.errors import AuditError, UsageError
from rollguard.policy.model import key_env_problem

#: The ``audit_meta`` key holding the mark.
MARK_KEY = "chain_key"
UNKEYED = "unkeyed"
_KEYED_PREFIX = "hmac-sha256:"
_KEY_ID_MESSAGE = b"rollguard audit key id"
#: Shorter keys are refused: a guessable key protects nothing.
MIN_KEY_BYTES = 16
#: What the key's text becomes wherever it turns up in a record.
REDACTED = "[audit key redacted]"


class KeyMismatchError(AuditError):
    """An append refused because the key does not fit the trail; nothing was written.

    Unlike an unreachable store, this is never spooled for later: retrying
    cannot make the key fit.
    """


class AuditKey:
    """A secret key; its ``repr`` and ``str`` show only the key id and where it came from."""

    __slots__ = ("_secret", "id", "source")

    def __init__(self, secret: bytes, *, source: str) -> None:
        self._secret = secret
        self.source = source
        self.id = hmac.new(secret, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:16]

    def digest(self, text: bytes) -> str:
        """HMAC-SHA256 of ``text`` under this key, as hex."""
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def redact(self, record: AuditRecord) -> AuditRecord:
        """``record`` with every occurrence of the key's text replaced by :data:`REDACTED`.

        A rollback command that prints its environment, or an error that quotes
        it, must not carry the key into the trail (or into the spool).
        """
        secret = self._secret.decode("utf-8", errors="replace")
        changes = {item.name: _scrub(getattr(record, item.name), secret) for item in fields(record)}
        return AuditRecord(**changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id}, source={self.source})"

    __str__ = __repr__


def _scrub(value: object, secret: str) -> object:
    if isinstance(value, str):
        return value.replace(secret, REDACTED)
    if isinstance(value, Mapping):
        return {_scrub(name, secret): _scrub(item, secret) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, secret) for item in value]
    return value


def key_from_env(name: str, *, field: str, environ: Mapping[str, str] | None = None) -> AuditKey:
    """The key held by environment variable ``name``; bad input (exit 2) when unusable."""
    problem = key_env_problem(name)
    if problem is not None:
        raise UsageError(f"{field}: {problem}")
    raw = (os.environ if environ is None else environ).get(name, "")
    if not raw:
        raise UsageError(f"{field}: environment variable {name} is not set")
    secret = raw.encode("utf-8")
    if len(secret) < MIN_KEY_BYTES:
        raise UsageError(
            f"{field}: the key in ${name} is shorter than {MIN_KEY_BYTES} bytes; "
            "use a random one, e.g. `openssl rand -hex 32`"
        )
    return AuditKey(secret, source=f"${name}")


def mark(key: AuditKey | None) -> str:
    """The mark the first append writes for a trail hashed with ``key``."""
    return UNKEYED if key is None else f"{_KEYED_PREFIX}{key.id}"


def marked_key_id(stored: str | None) -> str | None:
    """The key id a stored mark names; ``None`` for an unkeyed trail (or no mark yet)."""
    if stored is None or not stored.startswith(_KEYED_PREFIX):
        return None
    return stored.removeprefix(_KEYED_PREFIX)


def check_append(stored: str | None, *, entries: bool, key: AuditKey | None, where: str) -> None:
    """Refuse an append whose key does not fit the trail (:class:`KeyMismatchError`)."""
    key_id = marked_key_id(stored)
    if key_id is not None and key is None:
        raise KeyMismatchError(
            f"the audit trail at {where} is keyed (key id {key_id}): appending needs its key; "
            "name the variable holding it in the policy's audit.key_env"
        )
    if key_id is not None and key is not None and key.id != key_id:
        raise KeyMismatchError(
            f"the audit trail at {where} is keyed with key id {key_id}, but the key in "
            f"{key.source} has key id {key.id}; use the trail's key"
        )
    if key_id is None and key is not None and (entries or stored is not None):
        raise KeyMismatchError(
            f"the audit trail at {where} was started without a key, and a trail is keyed "
            f"from its first entry on; drop the key ({key.source}) or use a new store"
        )


def need_key_to_verify(stored: str | None, key: AuditKey | None, *, where: str) -> None:
    """A keyed trail cannot be verified without its key: bad input (exit 2)."""
    key_id = marked_key_id(stored)
    if key_id is not None and key is None:
        raise UsageError(
            f"the audit trail at {where} is keyed (key id {key_id}): verifying it needs the key; "
            "give --key-env NAME (or a --policy whose audit.key_env names it)"
        )


def judge(report: VerifyReport, stored: str | None, key: AuditKey | None) -> VerifyReport:
    """The chain walk's report, failed and explained when the mark disagrees with the key.

    Verify with a key always walks with that key, whatever the mark says: an
    attacker can rewrite the mark as easily as the rows, so the mark only
    explains a failure, it never excuses one.
    """
    if key is None:
        return report
    keyed = replace(report, key_id=key.id)
    key_id = marked_key_id(stored)
    if key_id == key.id or (report.ok and report.entries == 0):
        return keyed
    said = "unkeyed" if key_id is None else f"keyed with key id {key_id}"
    why = (
        f"the store says the trail is {said}, not keyed with the given key (key id {key.id}): "
        "a wrong key, or a trail rewritten without this key"
    )
    if not report.ok:
        return replace(keyed, message=f"{report.message}; {why}")
    return replace(keyed, ok=False, problem="modified", message=f"the key mark was changed: {why}")
