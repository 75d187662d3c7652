"""The ignore file: accepted risks, each with a reason and an expiry date.

    ignores:
      - id: CVE-2019-14697
        package: musl            # optional: only this package
        reason: static binary, musl is not loaded
        expires: 2026-03-31      # ignored up to and including this day (UTC)

A reason and an expiry are required: an exception nobody explained, or one
that never ends, is how a known-bad package ships forever. An expired entry
stops ignoring and the gate says so, so the finding is seen again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from rollguard import documents
from rollguard.errors import InputError
from rollguard.scanners.findings import Finding
from rollguard.textfile import read_text


class IgnoreEntry(BaseModel):
    """One accepted finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: date
    package: str | None = None

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason must say why the risk is accepted")
        return value.strip()

    def matches(self, finding: Finding) -> bool:
        """Same id (case-insensitive) and, when given, the same package."""
        return self.id.upper() == finding.id.upper() and (
            self.package is None or self.package == finding.package
        )


@dataclass(frozen=True)
class IgnoreOutcome:
    """Findings after the ignore file, and what it did."""

    kept: tuple[Finding, ...]
    ignored: tuple[tuple[Finding, IgnoreEntry], ...]
    notes: tuple[str, ...]  # expired entries, entries that matched nothing


def load_ignores(path: str | Path) -> list[IgnoreEntry]:
    """Read and validate an ignore file; raise InputError naming file, line and field."""
    name = str(path)
    raw = read_text(path, "ignore file", max_bytes=documents.MAX_CONFIG_BYTES)
    document = documents.load_yaml(raw, source=name, what="ignore file")
    if document is None:
        return []
    entries = document.get("ignores") if isinstance(document, CommentedMap) else document
    if not isinstance(entries, CommentedSeq):
        raise InputError(f"{name}:1: expected a list of entries under 'ignores:'")
    out = []
    for index, entry in enumerate(entries):
        line = entries.lc.item(index)[0] + 1
        try:
            out.append(IgnoreEntry.model_validate(_plain(entry)))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "(entry)"
            if isinstance(entry, CommentedMap) and error["loc"] and error["loc"][0] in entry:
                line = entry.lc.key(error["loc"][0])[0] + 1
            message = "required (every ignore needs id, reason and expires)"
            if error["type"] != "missing":
                message = str(error["msg"]).removeprefix("Value error, ")
            raise InputError(f"{name}:{line}: ignores[{index}].{field}: {message}") from None
    return out


def _plain(node: Any) -> Any:
    """ruamel's round-trip mapping as a plain dict (dates stay dates)."""
    if isinstance(node, CommentedMap):
        return {str(key): value for key, value in node.items()}
    return node


def apply_ignores(
    findings: Iterable[Finding], entries: Iterable[IgnoreEntry], *, today: date
) -> IgnoreOutcome:
    """Drop findings an unexpired entry covers; expired entries ignore nothing and say so."""
    entries = list(entries)
    active = [entry for entry in entries if entry.expires >= today]
    kept: list[Finding] = []
    ignored: list[tuple[Finding, IgnoreEntry]] = []
    used: set[int] = set()
    for finding in findings:
        entry = next((entry for entry in active if entry.matches(finding)), None)
        if entry is None:
            kept.append(finding)
        else:
            ignored.append((finding, entry))
            used.add(id(entry))
    notes: list[str] = []
    for entry in entries:
        if entry.expires < today:
            hits = sum(1 for finding in kept if entry.matches(finding))
            consequence = f"{hits} finding(s) counted again" if hits else "it matches nothing now"
            notes.append(
                f"ignore for {entry.id} expired on {entry.expires.isoformat()} "
                f"(reason was: {entry.reason}): {consequence}"
            )
        elif id(entry) not in used:
            notes.append(f"ignore for {entry.id} matched no finding; remove it if it is fixed")
    return IgnoreOutcome(kept=tuple(kept), ignored=tuple(ignored), notes=tuple(notes))
