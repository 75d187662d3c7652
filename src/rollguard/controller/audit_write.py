"""Audit writes from async code, off the event loop.

A store's ``append`` blocks (a database round-trip, or a PostgreSQL connect
timeout during an outage); called on the event loop it would stall every
other watcher and, in ``serve``, every API request. :func:`append` hands the
write to a thread and resumes only when the entry is durable, so "recorded
before the action proceeds" still holds: the caller awaits each entry before
its next step, which also keeps one watcher's entries in order.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from rollguard.audit.base import AuditRecord, AuditSink


@runtime_checkable
class AsyncAuditSink(Protocol):
    """A sink with its own way to write off the loop (``serve``'s single writer thread)."""

    async def append_async(self, record: AuditRecord) -> int:
        """Persist durably before returning; return the entry's id."""


async def append(sink: AuditSink, record: AuditRecord) -> int:
    """``sink.append(record)`` without blocking the event loop; the entry's id."""
    if isinstance(sink, AsyncAuditSink):
        return await sink.append_async(record)
    # Shielded: a cancelled caller must not leave its entry half-way (the thread
    # finishes the write either way; only the waiting stops).
    return await asyncio.shield(asyncio.to_thread(sink.append, record))
