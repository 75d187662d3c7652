"""Access-log lines (NGINX/Apache/HAProxy ``combined``, HAProxy ``httplog``) as requests.

Formats:

- ``combined``: ``IP - user [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326
  "referer" "user agent"`` — NGINX's and Apache's default, and HAProxy with a
  combined ``log-format``. ``\\"`` and ``\\x22`` escapes inside quotes are kept.
- ``haproxy``: HAProxy's ``option httplog`` line, after any syslog prefix:
  ``IP:port [06/Feb/2009:12:14:14.655] front back/srv Tq/Tw/Tc/Tr/Ta 200 2750 - -
  ---- 1/1/1/1/0 0/0 {captured request headers} {captured response headers}
  "GET /a HTTP/1.1"``. HAProxy logs no User-Agent unless told to: add
  ``http-request capture req.hdr(User-Agent) len 200``; every captured request
  header is matched against the scanner signatures. Its times have no zone and
  are read as this machine's local time.

A line in neither format raises :class:`LogFormatError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rollguard.errors import InputError

LogFormat = Literal["combined", "haproxy"]

# "..." with backslash escapes, written as an unrolled loop (no alternation per character).
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_COMBINED = re.compile(
    r"^(?P<client>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    + _QUOTED.replace("(", "(?P<request>", 1)
    + r" (?P<status>\d{3}|-) (?P<bytes>\S+)"
    + r"(?: "
    + _QUOTED.replace("(", "(?P<referer>", 1)
    + " "
    + _QUOTED.replace("(", "(?P<agent>", 1)
    + r")?"
)
_HAPROXY = re.compile(
    r"(?P<client>[\w.:\[\]-]+):\d+ \[(?P<time>[^\]]+)\] \S+ [^\s/]+/\S+ \S+ "
    r"(?P<status>-?\d+) \+?\d+ \S+ \S+ \S{4} \S+ \S+ "
    r"(?:\{(?P<req_headers>[^}]*)\} )?(?:\{[^}]*\} )?" + _QUOTED.replace("(", "(?P<request>", 1)
)
UNAUTHORIZED = frozenset({401, 403})
EXPECTED = {
    "combined": 'IP - user [day/Mon/year:HH:MM:SS +zone] "METHOD /target HTTP/1.1" status '
    'bytes "referer" "user agent"',
    "haproxy": "HAProxy httplog: IP:port [date] frontend backend/server timers status bytes "
    '- - flags conns queues {headers} "METHOD /target HTTP/1.1"',
}


class LogFormatError(InputError):
    """A line that is not in the configured access-log format."""


@dataclass(frozen=True)
class Request:
    """One logged request: what the signatures and the 401/403 counter look at."""

    time_text: str  # as logged; parsed only when asked (strptime costs more than the rest)
    client: str
    method: str
    target: str  # path and query as sent (still URL-encoded)
    status: int | None  # None for HAProxy's -1 (aborted) or "-"
    user_agent: str
    log_format: LogFormat = "combined"

    @property
    def time(self) -> float | None:
        """Seconds since the epoch as logged; None when the time does not parse."""
        return _time(self.time_text, self.log_format)

    @property
    def unauthorized(self) -> bool:
        """A 401 or 403 response: an "unauthorized access attempt"."""
        return self.status in UNAUTHORIZED


def _unescape(text: str) -> str:
    return text.replace("\\x22", '"').replace('\\"', '"').replace("\\\\", "\\")


def _time(raw: str, fmt: LogFormat) -> float | None:
    try:
        if fmt == "combined":
            return datetime.strptime(raw, "%d/%b/%Y:%H:%M:%S %z").timestamp()
        pattern = "%d/%b/%Y:%H:%M:%S.%f" if "." in raw else "%d/%b/%Y:%H:%M:%S"
        return datetime.strptime(raw, pattern).timestamp()  # naive: local time
    except ValueError:
        return None


def _split_request(request: str) -> tuple[str, str]:
    """``GET /a b HTTP/1.1`` → ("GET", "/a b"): raw spaces in a target are kept, not cut."""
    parts = request.split(" ")
    if len(parts) < 2:
        return "", request
    if len(parts) >= 3 and parts[-1].upper().startswith("HTTP/"):
        return parts[0], " ".join(parts[1:-1])
    return parts[0], " ".join(parts[1:])


def parse_line(line: str, fmt: LogFormat = "combined", *, where: str = "<log>") -> Request:
    """One request from one log line; raise LogFormatError for a line in another format."""
    text = line.rstrip("\r\n")
    found = _COMBINED.match(text) if fmt == "combined" else _HAPROXY.search(text)
    if found is None:
        excerpt = text if len(text) <= 120 else text[:117] + "..."
        raise LogFormatError(
            f"{where}: not a {fmt} access-log line: expected {EXPECTED[fmt]}; got {excerpt!r}"
        )
    request = _unescape(found.group("request"))
    method, target = _split_request(request)
    status_text = found.group("status")
    status = int(status_text) if status_text not in ("-", "-1") else None
    if fmt == "combined":
        agent = _unescape(found.group("agent") or "")
    else:
        agent = " | ".join((found.group("req_headers") or "").split("|"))
    return Request(
        time_text=found.group("time"),
        client=found.group("client"),
        method=method,
        target=target,
        status=status,
        user_agent=agent,
        log_format=fmt,
    )
