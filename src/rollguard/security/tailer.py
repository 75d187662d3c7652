"""Follow an access log as it grows: new lines → tallies and suspicious-request events.

``poll`` reads whatever was appended since the last call (only complete
lines), survives rotation (a new inode or a shorter file starts over from
the top) and a missing file (reported, not raised). By default it starts at
the end of the file: requests logged before the watch began are not judged.
Lines in another format are counted and the last one is kept as
``last_problem``; they never stop the watch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rollguard.security.accesslog import LogFormat, LogFormatError, parse_line
from rollguard.security.events import EventLog, SecurityEvent, Tally
from rollguard.security.signatures import SIGNATURES, Signature, match_request

#: At most this many bytes are read per poll, so a huge backlog cannot stall the loop.
MAX_READ_BYTES = 8 * 1024 * 1024


class AccessLogTailer:
    """Reads new lines of one access log into an :class:`EventLog`."""

    def __init__(
        self,
        path: str | Path,
        *,
        fmt: LogFormat = "combined",
        events: EventLog,
        signatures: Sequence[Signature] = SIGNATURES,
        from_start: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fmt: LogFormat = fmt
        self.events = events
        self.signatures = tuple(signatures)
        self.lines_read = 0
        self.problems = 0
        self.last_problem: str | None = None
        self.missing = False
        self.unreadable: str | None = None
        self._inode: int | None = None
        self._offset = 0
        self._line_number = 0
        self._partial = b""
        self._from_start = from_start

    def poll(self, *, now: float) -> int:
        """Read the lines appended since the last poll; return how many were read.

        Never raises for the file itself: a log that vanishes (even between ``stat`` and
        ``open``, as in a rotation) sets ``missing``; one that cannot be read (a folder,
        no permission) sets ``unreadable``, so the watch measures an error instead of dying.
        """
        try:
            read = self._poll(now)
        except FileNotFoundError:
            self.missing = True
            return 0
        except OSError as exc:
            self.missing = False
            self.unreadable = f"access log {self.path}: cannot read: {exc.strerror or exc}"
            return 0
        self.missing = False
        self.unreadable = None
        return read

    def _poll(self, now: float) -> int:
        stat = self.path.stat()
        if self._inode is None:
            self._open_first(stat)
        elif stat.st_ino != self._inode or stat.st_size < self._offset:
            self._inode, self._offset, self._line_number, self._partial = stat.st_ino, 0, 0, b""
        if stat.st_size == self._offset:
            self.events.add_tally(Tally(now, 0, 0))
            return 0
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(MAX_READ_BYTES)
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        requests = unauthorized = 0
        for raw in lines:
            self._line_number += 1
            if not raw.strip():
                continue
            line = raw.decode("utf-8", errors="replace")
            try:
                request = parse_line(line, self.fmt, where=f"{self.path}:{self._line_number}")
            except LogFormatError as exc:
                self.problems += 1
                self.last_problem = str(exc)
                continue
            requests += 1
            unauthorized += request.unauthorized
            matches = match_request(request.target, request.user_agent, signatures=self.signatures)
            if matches:
                names = ", ".join(match.signature for match in matches)
                detail = f"{names}: {request.method} {request.target[:200]}"
                self.events.add(
                    SecurityEvent(now, "access_log", matches[0].category, detail, request.client)
                )
        self.lines_read += requests
        self.events.add_tally(Tally(now, requests, unauthorized))
        return requests

    def _open_first(self, stat: os.stat_result) -> None:
        """Start after the last complete line (a line being written is read once whole)."""
        self._inode = stat.st_ino
        if self._from_start:
            return
        position = last_newline_end = 0
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                self._line_number += block.count(b"\n")
                if b"\n" in block:
                    last_newline_end = position + block.rindex(b"\n") + 1
                position += len(block)
        self._offset = last_newline_end
