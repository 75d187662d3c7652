"""Status writes and Events off the evaluation path: queued, coalesced, fenced.

An analysis reports after every decision, but it must never wait for the API
server to do so: at a thousand policies a status write took over a second on
a loaded machine, and evaluations that waited for theirs fell intervals behind.
So an analysis only *submits* (:meth:`StatusWriter.submit`, which never waits)
and a few workers of this replica write in the background, through an API
client and threads of their own (actions keep the shared ones).

- **Coalescing**: a policy has at most one pending status. A newer submission
  is merged over it (``conditions`` merged by type), so a policy evaluated three
  times while its write waited gets one write, of the newest.
- **One write at a time per policy**, in submission order: an older write can
  never land over a newer one. A policy keeps its place in the queue when a newer
  report is merged into its pending one (moved to the back, a policy reported
  more often than the queue drains would never be written).
- **News first**: a report that only refreshes the evaluation count and time
  (``refresh``) waits in a queue of its own, written when no news (a start, a
  new decision) waits: when the API server cannot take every refresh, the
  refreshes are late, never the news.
- **Fenced**: each write asks its policy's ``owns`` right before it is sent; a
  replica that lost the shard does not send the write (nor its Events). It is
  kept aside, unsent: when the analysis reports again (the shard was held again
  in time: a late renewal, not a move), it is merged under that report, so what
  it said (the analysis's start) is not lost; a stopped analysis's is dropped.
- :meth:`settle` lets the controller order a write it makes itself (a verdict,
  an Idle report) after the analysis's reports: it waits for the policy's write
  in flight, after writing (or dropping) what is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from rollguard.errors import RollguardError
from rollguard.operator.fence import Owns
from rollguard.operator.kube import ControllerApi, NotFound, Obj, PolicyKey
from rollguard.operator.status import merge_conditions

logger = logging.getLogger(__name__)

#: How many writes (status or Event) are sent at once.
CONCURRENCY = 4
#: How often a failed status write is tried again (a newer submission resets it).
RETRIES = 2
#: What became of submissions: the counters the controller's ``/metrics`` shows.
RESULTS = ("written", "coalesced", "fenced", "dropped", "failed")


@dataclass
class Pending:
    """A policy's next status write: everything submitted since the last one, merged."""

    status: Obj
    owns: Owns
    #: The policy as the last resync listed it: a write with conditions merges into its
    #: conditions at its resourceVersion, without reading the policy first.
    seen: Obj | None = None
    events: list[Event] = field(default_factory=list)
    attempts: int = 0


@dataclass(frozen=True)
class Event:
    """A core/v1 Event to record about ``involved`` (the policy or its Deployment)."""

    involved: Obj
    reason: str
    message: str
    warning: bool


class StatusWriter:
    """Writes the newest pending status of each policy, a few at a time, when owned."""

    def __init__(
        self,
        api: ControllerApi,
        *,
        concurrency: int = CONCURRENCY,
        counted: Callable[[str], None] = lambda result: None,
    ) -> None:
        self._api = api
        self._concurrency = concurrency
        self._counted = counted
        #: Pending writes with news, oldest first (a dict keeps insertion order).
        self._pending: dict[PolicyKey, Pending] = {}
        #: Pending writes that only refresh, oldest first: written when no news waits.
        self._refresh: dict[PolicyKey, Pending] = {}
        self._flying: dict[PolicyKey, asyncio.Event] = {}
        #: Writes the fence held back, by policy: sent under the policy's next report.
        self._fenced: dict[PolicyKey, Pending] = {}
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    @property
    def pending(self) -> int:
        """Policies with a write waiting (``/metrics``)."""
        return len(self._pending) + len(self._refresh)

    def submit(
        self,
        key: PolicyKey,
        status: Obj,
        *,
        owns: Owns,
        seen: Obj | None = None,
        events: tuple[Event, ...] = (),
        refresh: bool = False,
    ) -> None:
        """Queue ``status`` (merged over the policy's pending one) and ``events``; never
        waits. ``refresh``: the report says nothing new, only the evaluation count and
        time (it waits behind news)."""
        found = self._pending.get(key) or self._refresh.get(key)
        if found is None:
            found = self._fenced.pop(key, None)  # held back: it goes with this report
            news = found is not None or not refresh or bool(events)
            if found is None:
                found = Pending({}, owns, seen)
            else:
                self._counted("coalesced")
            (self._pending if news else self._refresh)[key] = found
        else:
            self._counted("coalesced")
            if key in self._refresh and (not refresh or events):  # news now: to the news
                self._pending[key] = self._refresh.pop(key)
        found.status, found.owns, found.attempts = _merged(found.status, status), owns, 0
        found.seen = seen or found.seen
        found.events.extend(events)
        self._start()
        self._wake.set()

    async def settle(self, key: PolicyKey, *, drop: bool = False, ended: bool = False) -> None:
        """Wait until nothing of ``key`` is pending or in flight: the pending write is
        made first (or dropped, with ``drop``), so a write that follows lands last.

        With ``ended`` (or ``drop``) the analysis reports no more: what the fence held
        back is dropped too, never to be merged under a later write."""
        if drop and self._take(key) is not None:
            self._counted("dropped")
        while key in self._pending or key in self._refresh or key in self._flying:
            flying = self._flying.get(key)
            taken = self._take(key) if flying is None else None
            if taken is not None:  # pending, not taken by a worker yet: write it here
                await self._write(key, taken)
            elif flying is not None:
                await flying.wait()
        if drop or ended:
            self._fenced.pop(key, None)

    async def aclose(self, *, seconds: float = 5.0) -> None:
        """Write what is pending (for at most ``seconds``), then stop the workers."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), seconds)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()

    async def _drained(self) -> None:
        for key in [*self._pending, *self._refresh, *self._flying]:
            await self.settle(key)

    def _start(self) -> None:
        """The workers start with the first submission (inside the running loop)."""
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"status-writer-{index}")
                for index in range(self._concurrency)
            ]

    def _take(self, key: PolicyKey) -> Pending | None:
        """The policy's pending write, out of its queue."""
        return self._pending.pop(key, None) or self._refresh.pop(key, None)

    def _next(self) -> PolicyKey | None:
        """The oldest policy with news and no write in flight, else the oldest refresh."""
        for queue in (self._pending, self._refresh):
            for key in queue:
                if key not in self._flying:
                    return key
        return None

    async def _work(self) -> None:
        while True:
            key = self._next()
            taken = None if key is None else self._take(key)
            if key is None or taken is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._write(key, taken)

    async def _write(self, key: PolicyKey, pending: Pending) -> None:
        done = self._flying[key] = asyncio.Event()
        try:
            if not pending.owns():  # the shard moved: the status is its new owner's to write
                self._counted("fenced")
                pending.seen = None  # when sent after all, at a resourceVersion read then
                self._fenced[key] = pending
                return
            await self._send(key, pending)
        finally:
            del self._flying[key]
            done.set()
            self._wake.set()  # a newer write of this policy may wait for this one

    async def _send(self, key: PolicyKey, pending: Pending) -> None:
        try:
            if pending.status:
                await self._api.patch_status(key, pending.status, seen=pending.seen)
                pending.status = {}  # written: a retry only sends the Events left
                self._counted("written")
            while pending.events:
                event = pending.events[0]
                await self._api.event(
                    key,
                    involved=event.involved,
                    reason=event.reason,
                    message=event.message,
                    warning=event.warning,
                )
                pending.events.pop(0)
        except NotFound:
            self._counted("failed")  # the policy was deleted: nothing to report on
        except RollguardError as exc:
            self._counted("failed")
            logger.warning("%s: cannot write status or Event: %s", key, exc)
            pending.attempts += 1
            if pending.attempts <= RETRIES:
                self._requeue(key, pending)

    def _requeue(self, key: PolicyKey, failed: Pending) -> None:
        """Put a failed write back under anything submitted since (newer fields win)."""
        newer = self._take(key)
        if newer is not None:
            failed = Pending(
                _merged(failed.status, newer.status),
                newer.owns,
                newer.seen,
                failed.events + newer.events,
            )
        failed.seen = None  # it may be what the write conflicted with: read the policy
        self._pending[key] = failed


def _merged(older: Obj, newer: Obj) -> Obj:
    """``newer`` over ``older``: newer fields win, conditions are merged by type."""
    merged = {**older, **newer}
    if "conditions" in older and "conditions" in newer:
        merged["conditions"] = merge_conditions(older["conditions"], newer["conditions"])
    return merged
