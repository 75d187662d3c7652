"""The command-line grammar every command shares, as kubectl's.

- ``-o/--output`` is always the output *format* (text, json, md, ...);
- a file to write is always ``-f/--output-file`` (or a positional argument);
- ``-p/--policy`` is always the policy file.

Old spellings (``report -o FILE``, ``--out``, ``--format``) stay as hidden
options that still work and warn (:func:`deprecated`). A test walks the whole
command tree and checks the grammar.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

T = TypeVar("T")


class OutputFormat(StrEnum):
    """Rich text for people, JSON for machines."""

    TEXT = "text"
    JSON = "json"


class ReportFormat(StrEnum):
    """The compliance report's formats."""

    MD = "md"
    HTML = "html"
    JSON = "json"


class ExportFormat(StrEnum):
    """``audit export``'s formats."""

    JSON = "json"
    CSV = "csv"


OUTPUT_HELP = "Output format: text or json."
FILE_HELP = "Write to this file instead of stdout."

PolicyOption = Annotated[Path, typer.Option("--policy", "-p", help="The policy file.")]
OptionalPolicyOption = Annotated[
    Path | None, typer.Option("--policy", "-p", help="The policy file.", show_default=False)
]
OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help=OUTPUT_HELP)]
OutputFileOption = Annotated[
    Path | None, typer.Option("--output-file", "-f", help=FILE_HELP, show_default=False)
]
BaselineOption = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        help="A performance-baseline.json overriding the policy's baseline.file.",
        show_default=False,
    ),
]
#: ``--out FILE``: the old spelling of ``--output-file`` (hidden, warns).
LegacyOutOption = Annotated[Path | None, typer.Option("--out", hidden=True)]


def deprecated(value: T | None, current: T, *, old: str, new: str) -> T:
    """``value`` (given with the old spelling ``old``) with a warning, else ``current``."""
    if value is None:
        return current
    from rollguard.cli import out

    out.warn(f"{old} is deprecated; use {new}")
    return value


def not_a_format(path: Path | None, formats: type[StrEnum]) -> Path | None:
    """Refuse ``-f json``: before the grammar was one, ``-f`` was the format in places."""
    if path is not None and not path.suffix and path.name in {f.value for f in formats}:
        from rollguard.errors import UsageError

        raise UsageError(
            f"-f/--output-file {path.name}: -f names the file to write; for the format use "
            f"-o {path.name} (to write a file, give it a suffix, e.g. report.{path.name})"
        )
    return path
