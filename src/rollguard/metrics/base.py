"""The metrics provider interface: what the controller asks of any source.

A provider answers :class:`~rollguard.signals.Query` objects with
:class:`~rollguard.signals.Measurement` objects. It never raises for a source
that is down or a query that yields nothing: those are measurements whose
phase is ``NO_DATA`` or ``ERROR`` (errors are data). It raises
:class:`~rollguard.errors.ProviderError` only when it cannot be used at all
(e.g. a replay file that does not parse).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rollguard.signals import Measurement, Query


class Provider(Protocol):
    """A source of measurements for one deployment's stable and canary versions."""

    async def collect(self, *, now: float) -> None:
        """Refresh whatever the provider keeps (e.g. scrape once); no-op for query APIs."""

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        """One measurement per query, in order, each describing the window ending at ``now``."""

    async def aclose(self) -> None:
        """Release connections and files."""
