"""An audit record's kind is one of KINDS, by type and at run time."""

from __future__ import annotations

import pytest

from rollguard.audit.base import KINDS, AuditRecord
from rollguard.errors import AuditError


@pytest.mark.parametrize("kind", KINDS)
def test_every_listed_kind_is_accepted(kind: str) -> None:
    record = AuditRecord(kind=kind, deployment="shop", timestamp="2026-12-07T10:00:00Z")  # type: ignore[arg-type]
    assert record.kind == kind


@pytest.mark.parametrize("kind", ["rollback", "", "Decision"])
def test_any_other_kind_is_refused(kind: str) -> None:
    with pytest.raises(AuditError, match=f"kind {kind!r} is not one of deployment_start"):
        AuditRecord(kind=kind, deployment="shop", timestamp="2026-12-07T10:00:00Z")  # type: ignore[arg-type]
