"""A one-entry-per-key cache with a short lifetime, for the API's expensive answers.

With a thousand deployments, ``/metrics`` and the full deployment list each
cost tens of milliseconds to build; a page polling every second and a
Prometheus scraping every few seconds do not need them fresher than a second.
Answers are cached as the bytes sent, so a hit costs nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class ShortCache:
    """``get(key, build)``: the bytes built less than ``ttl_seconds`` ago, or fresh ones."""

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, key: str, build: Callable[[], bytes]) -> bytes:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]
        body = build()
        self._entries[key] = (now, body)
        return body

    async def aget(self, key: str, build: Callable[[], Awaitable[bytes]]) -> bytes:
        """As :meth:`get` for a slow async builder; concurrent misses build once."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and self.clock() - entry[0] < self.ttl_seconds:
                return entry[1]
            body = await build()
            self._entries[key] = (self.clock(), body)
            return body

    def clear(self) -> None:
        """Forget everything (after a command changed what the answers would say)."""
        self._entries.clear()
