"""Reading a user's file as text, with one readable error for every way it can fail.

A file that is missing, unreadable or not UTF-8 is bad input: one message
naming the file and why (``PATH: cannot read WHAT: reason``), exit 2, never a
traceback. A byte-order mark, as editors on Windows write one, is dropped.
A file is read no further than its limit (``/dev/zero`` ends too), and one
larger than the limit is refused: the limits of :mod:`rollguard.documents`.
"""

from __future__ import annotations

from pathlib import Path

from rollguard.documents import MAX_REPORT_BYTES, size_text
from rollguard.errors import InputError


class UnreadableFileError(InputError):
    """The file could not be read as text; ``reason`` says why without the path."""

    def __init__(self, path: str | Path, what: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        named = f" {what}" if what else ""
        super().__init__(f"{path}: cannot read{named}: {reason}")


def read_text(path: str | Path, what: str = "", *, max_bytes: int = MAX_REPORT_BYTES) -> str:
    """The file's text; :class:`UnreadableFileError` (an InputError) otherwise.

    ``what`` names the file's role in the message ("baseline", "report").
    """
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UnreadableFileError(path, what, exc.strerror or str(exc)) from exc
    if len(raw) > max_bytes:
        raise UnreadableFileError(path, what, f"larger than {size_text(max_bytes)}; refused")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(path, what, f"not UTF-8 text ({exc.reason})") from exc
