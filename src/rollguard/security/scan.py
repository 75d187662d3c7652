"""Scan a whole access log once (``rollguard security scan-log``): offline triage.

Unlike the live tailer, this reads from the top and uses the times written in
the log, so "401/403 per minute" is per minute of the log's own clock.
A file whose first request line is in another format is refused (it is the
wrong file or the wrong ``--format``); a few odd lines later are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rollguard.errors import InputError
from rollguard.security.accesslog import LogFormat, LogFormatError, parse_line
from rollguard.security.signatures import match_request


@dataclass(frozen=True)
class Hit:
    """One request that matched signatures."""

    line: int
    client: str
    target: str
    signatures: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass
class ScanResult:
    """Totals of one scan."""

    requests: int = 0
    unauthorized: int = 0
    unparsed: int = 0
    first_problem: str | None = None
    hits: list[Hit] = field(default_factory=list)
    unauthorized_by_minute: Counter[int] = field(default_factory=Counter)

    @property
    def peak_unauthorized_per_minute(self) -> int:
        """The most 401/403 responses logged in one calendar minute."""
        return max(self.unauthorized_by_minute.values(), default=0)


def scan_log(path: str | Path, *, fmt: LogFormat = "combined") -> ScanResult:
    """Read every line; raise InputError when the file is not in ``fmt`` at all."""
    result = ScanResult()
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    _scan_line(result, line, number, fmt, str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read access log: {exc.strerror}") from exc
    return result


def _scan_line(result: ScanResult, line: str, number: int, fmt: LogFormat, path: str) -> None:
    try:
        request = parse_line(line, fmt, where=f"{path}:{number}")
    except LogFormatError as exc:
        if result.requests == 0:
            raise  # the very first request line: wrong file or wrong --format
        result.unparsed += 1
        result.first_problem = result.first_problem or str(exc)
        return
    result.requests += 1
    if request.unauthorized:
        result.unauthorized += 1
        if request.time is not None:
            result.unauthorized_by_minute[int(request.time // 60)] += 1
    matches = match_request(request.target, request.user_agent)
    if matches:
        result.hits.append(
            Hit(
                line=number,
                client=request.client,
                target=request.target,
                signatures=tuple(m.signature for m in matches),
                categories=tuple(sorted({m.category for m in matches})),
            )
        )
