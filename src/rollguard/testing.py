"""Public fakes for tests of code built on rollguard: an in-memory provider
whose values a test sets, and an executor that records what it was asked.

This module is for users' tests; rollguard itself never imports it (an
import-linter contract keeps it so). The recording executor lives in
:mod:`rollguard.executors.recording`, where drills and backtests use it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollguard.executors.recording import RecordingExecutor
from rollguard.signals import Measurement, Query, Signal, Version

__all__ = ["InMemoryProvider", "RecordingExecutor"]


class InMemoryProvider:
    """Answers from a table of values by (signal, version); ``None`` means no data."""

    def __init__(self, values: dict[tuple[Signal, Version], float | None] | None = None) -> None:
        self.values: dict[tuple[Signal, Version], float | None] = dict(values or {})
        self.requests: float | None = 1_000.0
        self.collected = 0

    def set(self, signal: Signal, version: Version, value: float | None) -> None:
        """Change what the signal reads from now on, mid-watch (None: no data)."""
        self.values[(signal, version)] = value

    async def collect(self, *, now: float) -> None:
        self.collected += 1

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        out = []
        for query in queries:
            signal = query.signal
            value = self.values.get((signal, query.version)) if isinstance(signal, Signal) else None
            if value is None:
                out.append(Measurement.no_data(query, now, "no value set"))
            else:
                out.append(Measurement.ok(query, now, value, requests=self.requests))
        return out

    async def aclose(self) -> None:
        return None
