"""Running rollguard in this process on hostile input, as its console script would."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: tests/fixtures/hostile: the corpus and its manifest.
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"


@dataclass(frozen=True)
class Ran:
    """How one command ended: exit code and what it printed."""

    code: int
    stdout: str
    stderr: str


Rollguard = Callable[..., Ran]

#: A problem line as ``policy check`` and the loaders print it: ``FILE:LINE:COL: field: message``.
LOCATED = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")


def one_line(ran: Ran) -> str:
    """The single line a bad input must produce (fails otherwise): on stderr, or on
    stdout for ``policy check``, whose problems are its output (as a linter's are)."""
    assert "Traceback" not in ran.stderr + ran.stdout
    errors = [line for line in ran.stderr.splitlines() if line.strip()]
    lines = errors or [line for line in ran.stdout.splitlines() if line.strip()]
    shown = ran.stderr or ran.stdout
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{shown}"
    return lines[0]
