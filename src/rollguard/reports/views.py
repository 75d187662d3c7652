"""What the report reads, as structural types: any audit store's entries fit.

The reports layer may not import the audit layer (they are independent
siblings); these protocols describe the few attributes it needs, and the
audit store's values satisfy them without either side knowing the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class RecordView(Protocol):
    """The fields of an audit record the report uses."""

    @property
    def kind(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def watch_id(self) -> str: ...
    @property
    def timestamp(self) -> str: ...
    @property
    def trigger(self) -> str | None: ...
    @property
    def severity(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def affected_users(self) -> int: ...
    @property
    def evidence(self) -> Mapping[str, object]: ...


class EntryView(Protocol):
    """A stored entry: its id and record."""

    @property
    def id(self) -> int: ...
    @property
    def record(self) -> RecordView: ...


class VerifyView(Protocol):
    """The outcome of verifying the chain."""

    @property
    def ok(self) -> bool: ...
    @property
    def entries(self) -> int: ...
    @property
    def head_hash(self) -> str: ...
    @property
    def message(self) -> str: ...


class ReportSource(Protocol):
    """The two store methods a report needs."""

    def list(
        self,
        *,
        since: str | None = None,
        deployment: str | None = None,
        kind: str | None = None,
        details: bool = True,
        namespace: str | None = None,
    ) -> Sequence[EntryView]: ...

    def verify(self) -> VerifyView: ...
