"""Reading a user's file as text, with one readable error for every way it can fail.

A file that is missing, unreadable or not UTF-8 is bad input: one message
naming the file and why (``PATH: cannot read WHAT: reason``), exit 2, never a
traceback. A byte-order mark, as editors on Windows write one, is dropped.
"""

from __future__ import annotations

from pathlib import Path

from rollguard.errors import InputError


class UnreadableFileError(InputError):
    """The file could not be read as text; ``reason`` says why without the path."""

    def __init__(self, path: str | Path, what: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        named = f" {what}" if what else ""
        super().__init__(f"{path}: cannot read{named}: {reason}")


def read_text(path: str | Path, what: str = "") -> str:
    """The file's text; :class:`UnreadableFileError` (an InputError) otherwise.

    ``what`` names the file's role in the message ("baseline", "report").
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(path, what, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise UnreadableFileError(path, what, exc.strerror or str(exc)) from exc
