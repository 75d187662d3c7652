"""Time, injected: the system clock for live watching, a simulated one for
backtests and tests (a five-minute window runs in milliseconds)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch (or since a replay's start), and a way to wait."""

    def now(self) -> float:
        """The current time in seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; a simulated clock just advances."""


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimulatedClock:
    """Advances only when slept on; deterministic."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self._now += max(seconds, 0.0)
        await asyncio.sleep(0)
