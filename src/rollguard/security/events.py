"""What the runtime-security sources observed, kept for the windows the triggers ask about.

Thread-safe: the Falco receiver adds events from its HTTP thread while the
watch loop counts them. Times are when rollguard *received* an event (the
controller's clock), not the time written in the log line, so a skewed or
zone-less log clock cannot move an attack out of the window; the cost is at
most one polling interval of delay.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SecurityEvent:
    """One suspicious request or Falco alert."""

    at: float
    source: str  # "access_log" or "falco"
    kind: str  # signature category (sql_injection, ...) or "falco"
    detail: str  # signature names and excerpt, or Falco rule and priority
    client: str = ""


@dataclass(frozen=True)
class Tally:
    """Requests and 401/403 responses read from the access log in one poll."""

    at: float
    requests: int
    unauthorized: int


class EventLog:
    """Bounded, thread-safe store of events and per-poll tallies."""

    def __init__(self, *, retention_seconds: float = 3600.0, max_events: int = 10_000) -> None:
        self.retention_seconds = retention_seconds
        self._events: deque[SecurityEvent] = deque(maxlen=max_events)
        self._tallies: deque[Tally] = deque()
        self._lock = threading.Lock()

    def add(self, event: SecurityEvent) -> None:
        with self._lock:
            self._events.append(event)

    def add_tally(self, tally: Tally) -> None:
        with self._lock:
            self._tallies.append(tally)
            while self._tallies and self._tallies[0].at < tally.at - self.retention_seconds:
                self._tallies.popleft()

    def events(self, *, start: float, end: float, source: str | None = None) -> list[SecurityEvent]:
        """Events with ``start < at <= end``, optionally from one source."""
        with self._lock:
            return [
                event
                for event in self._events
                if start < event.at <= end and (source is None or event.source == source)
            ]

    def tallies(self, *, start: float, end: float) -> tuple[int, int]:
        """(requests, unauthorized) read with ``start < at <= end``."""
        with self._lock:
            chosen = [t for t in self._tallies if start < t.at <= end]
        return sum(t.requests for t in chosen), sum(t.unauthorized for t in chosen)
