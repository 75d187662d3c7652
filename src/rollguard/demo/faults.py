"""The faults a demo service can be told to have, and how each one bites.

Faults are deterministic so tests can count on them: an error rate of 10%
fails exactly one request in ten (an error-credit accumulator, not a coin
toss), and ``N`` unauthorized answers per minute are spread evenly, one every
``60 / N`` seconds. Memory is allocated with anonymous ``mmap`` and every page
is written, so the resident set really grows and really shrinks on reset
(glibc's heap may keep freed ``malloc`` memory; an unmapped region cannot).
The pages are written by ``memset`` through ctypes, which lets go of the GIL,
on a thread of lower priority (:func:`yield_to_the_loop`): growing never holds
the event loop, and on a loaded machine the scheduler serves the loop's answers
before the ballast's writes.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import sys
import threading
from dataclasses import dataclass, field

MIB = 1024 * 1024
SEVERITIES = ("critical", "high", "medium", "low")
#: How many nice steps below the event loop the thread writing the ballast runs.
BALLAST_NICENESS = 10


class FaultError(ValueError):
    """A fault setting out of range; the service answers 422 with the message."""


def parse_number(raw: str, *, what: str, low: float, high: float) -> float:
    """A number within ``[low, high]`` from a path segment, or a clear FaultError."""
    try:
        value = float(raw)
    except ValueError:
        raise FaultError(f"{what} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise FaultError(f"{what} must be between {low:g} and {high:g}, got {raw!r}")
    return value


@dataclass
class Faults:
    """The active faults of one service instance."""

    error_rate_percent: float = 0.0
    latency_ms: float = 0.0
    unauthorized_per_minute: float = 0.0
    vulnerabilities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    _ballast: mmap.mmap | None = field(default=None, repr=False)
    _ballast_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _error_credit: float = field(default=0.0, repr=False)
    _next_unauthorized_at: float = field(default=0.0, repr=False)
    _unauthorized_served: int = field(default=0, repr=False)

    @property
    def memory_mb(self) -> int:
        """Megabytes currently held on purpose."""
        return 0 if self._ballast is None else len(self._ballast) // MIB

    def grow_memory(self, megabytes: int) -> None:
        """Hold exactly ``megabytes`` MiB, every page written so RSS shows it.

        Blocking: a server calls it on a thread that ran :func:`yield_to_the_loop`. The pages are
        written one MiB at a time without the GIL, so the event loop keeps answering
        meanwhile (the demo's memory fault must raise memory, not latency); a reset
        stops the growth.
        """
        self.release_memory()
        if megabytes <= 0:
            return
        ballast = mmap.mmap(-1, megabytes * MIB)
        with self._ballast_lock:
            self._ballast = ballast
        start = _address(ballast)
        for offset in range(0, megabytes * MIB, MIB):
            with self._ballast_lock:  # the region stays mapped while it is written
                if self._ballast is not ballast:  # reset (or replaced) while growing
                    return
                ctypes.memset(start + offset, 1, MIB)

    def release_memory(self) -> None:
        """Give the ballast back to the operating system."""
        with self._ballast_lock:
            if self._ballast is not None:
                self._ballast.close()
                self._ballast = None

    def set_unauthorized(self, per_minute: float, *, now: float) -> None:
        """Answer ``per_minute`` requests a minute with 401/403, the first one now."""
        self.unauthorized_per_minute = per_minute
        self._next_unauthorized_at = now

    def add_vulnerability(self, severity: str) -> int:
        """Report one more vulnerability of ``severity``; returns the new count."""
        if severity not in SEVERITIES:
            raise FaultError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        self.vulnerabilities[severity] += 1
        return self.vulnerabilities[severity]

    def status_for_next_request(self, *, now: float) -> int | None:
        """The faulty status this request must get (401, 403, 500), or None to serve it."""
        if self.unauthorized_per_minute > 0 and now >= self._next_unauthorized_at:
            interval = 60.0 / self.unauthorized_per_minute
            # No catching up after a quiet spell: at most one answer per interval.
            self._next_unauthorized_at = max(self._next_unauthorized_at + interval, now)
            self._unauthorized_served += 1
            return 401 if self._unauthorized_served % 2 else 403
        if self.error_rate_percent > 0:
            self._error_credit += self.error_rate_percent
            if self._error_credit >= 100.0:
                self._error_credit -= 100.0
                return 500
        return None

    def reset(self) -> None:
        """Back to healthy: no errors, no delay, memory released, no vulnerabilities."""
        self.release_memory()
        self.error_rate_percent = 0.0
        self.latency_ms = 0.0
        self.unauthorized_per_minute = 0.0
        self.vulnerabilities = dict.fromkeys(SEVERITIES, 0)
        self._error_credit = 0.0

    def active(self) -> dict[str, object]:
        """Only the faults that are on, for the status endpoints."""
        out: dict[str, object] = {}
        if self.error_rate_percent:
            out["error_rate_percent"] = self.error_rate_percent
        if self.latency_ms:
            out["latency_ms"] = self.latency_ms
        if self.memory_mb:
            out["memory_mb"] = self.memory_mb
        if self.unauthorized_per_minute:
            out["unauthorized_per_minute"] = self.unauthorized_per_minute
        found = {severity: n for severity, n in self.vulnerabilities.items() if n}
        if found:
            out["vulnerabilities"] = found
        return out


def _address(region: mmap.mmap) -> int:
    """Where ``region`` starts in memory; the buffer export ends on return, so it can close."""
    return ctypes.addressof(ctypes.c_char.from_buffer(region))


def yield_to_the_loop() -> None:
    """Lower the calling thread's priority (Linux keeps one per thread) by
    :data:`BALLAST_NICENESS`, so a busy CPU runs the event loop's answers first.

    Best effort: elsewhere, or where the call is refused, the thread keeps its priority.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            me = threading.get_native_id()
            lowered = os.getpriority(os.PRIO_PROCESS, me) + BALLAST_NICENESS
            os.setpriority(os.PRIO_PROCESS, me, min(lowered, 19))  # relative: a niced run too
