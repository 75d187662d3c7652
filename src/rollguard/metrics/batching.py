"""One process's Prometheus queries, gathered and asked once per query shape.

``serve`` and ``rollguard controller`` watch many deployments at once, each
evaluating every interval. Asked one by one, Prometheus would get every
deployment's queries (1,000 deployments, 6 queries each, every 5 s is over 1,000
queries a second). Here each watcher's provider is a handle on one
:class:`QueryBatcher`: the queries of one tick are gathered and grouped by
shape (:mod:`rollguard.metrics.shapes`: the same expression, window and
Prometheus, only the deployments' label values differ), each group is one
query, and each watcher reads its own series from the answer. So queries grow
with the number of shapes, not with the number of deployments.

- A deployment absent from an answer gets no series, which is no data for it
  alone, with the reason its own query would give; the others are unaffected.
- A failed query (Prometheus down, a timeout, a refused query) is that failure
  for every deployment in it, as their own queries would have been.
- A round is asked once :data:`GATHER_SECONDS` pass without a new query (at
  most :data:`LONGEST_GATHER_SECONDS` after its first). Aligned watchers ask as of
  their tick, however late they woke, so a round's members share one time.
- Queries of one shape asked at times further apart than
  :data:`SAME_MOMENT_SECONDS` are asked separately; within it, a group is
  evaluated at the latest of its members' times (a window ending a few
  milliseconds later than a watcher's own). Watchers whose ticks are aligned
  (:class:`~rollguard.controller.watch.Watcher`'s ``align_ticks``) meet here.
- At most :data:`MAX_KEYS_PER_QUERY` deployment versions go into one query, so
  an answer stays well inside :data:`~rollguard.documents.MAX_ANSWER_BYTES`
  (a latency histogram has a dozen series per version). The counts' raw samples
  (:func:`rollguard.promql.growth`) come one series per pod and status code or
  bucket, so an answer past the limit is asked again for half the deployment
  versions at a time, down to one.
- What cannot be batched (a policy's own PromQL, a selector that is not plain
  label matchers) is asked per deployment through the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field

from rollguard.metrics.http import HttpEdge, QueryFailed
from rollguard.metrics.prometheus import PrometheusProvider, Sample, instant, prometheus_edge
from rollguard.metrics.shapes import Batchable, Keyed, Shape, batchable
from rollguard.policy.model import Policy, PrometheusSource
from rollguard.promql import Ask
from rollguard.signals import Query

logger = logging.getLogger("rollguard.metrics.batching")

#: A round is asked once no query has joined it for this long (watchers due at one tick
#: wake together, but a busy machine spreads their first steps over a few passes of the
#: event loop)...
GATHER_SECONDS = 0.1
#: ...or this long after its first query, however many keep coming.
LONGEST_GATHER_SECONDS = 0.5
#: Queries asked closer together than this are one moment.
SAME_MOMENT_SECONDS = 0.5
#: Deployment versions per query (a histogram answers a dozen series for each).
MAX_KEYS_PER_QUERY = 2500


@dataclass
class _Member:
    key: tuple[str, ...]
    at: float
    answer: asyncio.Future[list[Sample]]


@dataclass
class _Connection:
    edge: HttpEdge
    users: int = 0


@dataclass
class QueryBatcher:
    """Shared by every watcher of a process; hands out one provider per policy."""

    gather_seconds: float = GATHER_SECONDS
    longest_gather_seconds: float = LONGEST_GATHER_SECONDS
    max_keys: int = MAX_KEYS_PER_QUERY
    #: Queries sent to Prometheus, batched and per deployment (for telemetry and benchmarks).
    sent: int = 0
    #: Of them, batched queries, and the deployment versions those asked for in all.
    sent_batched: int = 0
    deployments_asked: int = 0
    _connections: dict[str, _Connection] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: dict[tuple[str, Shape], list[_Member]] = field(default_factory=dict)
    _timer: asyncio.TimerHandle | None = None
    _first: float = 0.0  # when the round's first query came (the loop's clock)
    _last: float = 0.0  # and its latest
    _asking: set[asyncio.Task[None]] = field(default_factory=set)
    #: The loop the connections are used on (a connection's sockets belong to it).
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def connections(self) -> int:
        """Connections to Prometheus open now (one per address and its options)."""
        with self._lock:
            return len(self._connections)

    def provider_for(self, policy: Policy) -> BatchedPrometheusProvider | None:
        """A batched provider for a policy measured by Prometheus; None for other sources."""
        if not isinstance(policy.metrics, PrometheusSource):
            return None
        return self.provider(policy.metrics)

    def provider(self, source: PrometheusSource) -> BatchedPrometheusProvider:
        """A provider for ``source`` whose queries are batched with every other's.

        Safe to call from a worker thread (``serve`` builds watchers in one).
        """
        connection = _connection_key(source)
        self._note_loop()
        with self._lock:
            found = self._connections.get(connection)
            if found is None:
                found = self._connections[connection] = _Connection(prometheus_edge(source))
            found.users += 1
        return BatchedPrometheusProvider(source, batcher=self, connection=connection)

    def edge(self, connection: str) -> HttpEdge:
        return self._connections[connection].edge

    async def release(self, connection: str) -> None:
        """A provider is closed; the connection closes with its last user."""
        edge = self._drop(connection)
        if edge is not None:
            await edge.aclose()

    def abandon(self, provider: BatchedPrometheusProvider) -> None:
        """Give back the share of a provider whose watcher was never built.

        ``serve`` assembles watchers in a worker thread, where a failed assembly
        cannot await :meth:`BatchedPrometheusProvider.aclose`. A connection left
        without users is closed on the loop its queries ran on (its sockets are that
        loop's), or here when no loop has used it.
        """
        if provider.closed:
            return
        provider.closed = True
        edge = self._drop(provider.connection)
        if edge is None:
            return
        loop = self._loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is not None:  # on a loop's own thread: close it there, soon
            task = here.create_task(edge.aclose())
            self._asking.add(task)  # held until done
            task.add_done_callback(self._asking.discard)
        elif loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(edge.aclose(), loop).result()
        else:
            asyncio.run(edge.aclose())

    def _drop(self, connection: str) -> HttpEdge | None:
        """One user fewer; the connection's edge when that was its last."""
        with self._lock:
            found = self._connections[connection]
            found.users -= 1
            if found.users:
                return None
            del self._connections[connection]
        return found.edge

    def _note_loop(self) -> None:
        with contextlib.suppress(RuntimeError):  # a worker thread: noted at the first query
            self._loop = asyncio.get_running_loop()

    def submit(self, connection: str, keyed: Keyed, at: float) -> asyncio.Future[list[Sample]]:
        """The future series of ``keyed``'s deployment in its shape's next query (a watcher
        hands in all its queries at once, with no task for each)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        member = _Member(keyed.key, at, loop.create_future())
        self._pending.setdefault((connection, keyed.shape), []).append(member)
        self._last = loop.time()
        if self._timer is None:
            self._first = self._last
            self._timer = loop.call_later(self.gather_seconds, self._flush)
        return member.answer

    def count(self, *, deployments: int | None = None) -> None:
        """One more query sent to Prometheus: batched when it names its ``deployments``."""
        self.sent += 1
        if deployments is not None:
            self.sent_batched += 1
            self.deployments_asked += deployments

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        quiet_at = self._last + self.gather_seconds
        if now < quiet_at and now < self._first + self.longest_gather_seconds:
            self._timer = loop.call_at(quiet_at, self._flush)  # still coming: wait for a pause
            return
        self._timer = None
        pending, self._pending = self._pending, {}
        for (connection, shape), members in pending.items():
            for at, group in _groups(members, self.max_keys):
                task = asyncio.get_running_loop().create_task(
                    self._ask_group(connection, shape, group, at)
                )
                self._asking.add(task)
                task.add_done_callback(self._asking.discard)

    async def _ask_group(
        self, connection: str, shape: Shape, members: list[_Member], at: float
    ) -> None:
        keys = sorted({member.key for member in members})
        try:
            found = self._connections.get(connection)
            if found is None:
                raise QueryFailed("the connection to Prometheus was closed")
            self.count(deployments=len(keys))
            samples = await instant(
                found.edge, shape.expression(keys), at, shown=shape.shown, ranged=shape.ranged
            )
        except QueryFailed as failed:
            if failed.too_large and len(keys) > 1:  # a smaller question may fit
                halves = _halves(members, keys)
                await asyncio.gather(*(self._ask_group(connection, shape, h, at) for h in halves))
                return
            for member in members:
                _fail(member, QueryFailed(failed.reason, no_data=failed.no_data))
            return
        except Exception as exc:  # never leave a watcher waiting for an answer
            logger.exception("a batched query failed: %s", shape.shown)
            for member in members:
                _fail(member, QueryFailed(f"the batched query failed: {exc}"))
            return
        by_key: dict[tuple[str, ...], list[Sample]] = defaultdict(list)
        for sample in samples:
            by_key[tuple(sample.labels.get(label, "") for label in shape.labels)].append(sample)
        for member in members:
            if not member.answer.done():
                member.answer.set_result(by_key.get(member.key, []))


class BatchedPrometheusProvider(PrometheusProvider):
    """A watcher's provider whose built-in queries are asked in batches."""

    def __init__(self, source: PrometheusSource, *, batcher: QueryBatcher, connection: str):
        super().__init__(source, edge=batcher.edge(connection))
        self._batcher = batcher
        self._shapes: dict[Query, Batchable | str] = {}
        self.connection = connection
        #: Its share of the connection was given back (closed or abandoned).
        self.closed = False

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self._batcher.release(self.connection)

    def _ask(self, query: Query, ask: Ask, at: float) -> Awaitable[list[Sample]]:
        """A batchable expression's answer is a future of the batcher's (no task for each:
        thousands of watchers wake at each tick); any other is asked on its own."""
        self._batcher._note_loop()
        shapes = self._shapes_of(query)
        if isinstance(shapes, str):
            self._batcher.count()
            return super()._ask(query, ask, at)
        return self._batcher.submit(self.connection, shapes.asked[ask[0]], at)

    def _shapes_of(self, query: Query) -> Batchable | str:
        shapes = self._shapes.get(query)
        if shapes is None:
            shapes = self._shapes[query] = batchable(query, self._source)
        return shapes


def _groups(members: list[_Member], max_keys: int) -> Iterator[tuple[float, list[_Member]]]:
    """Members asked at one moment, at most ``max_keys`` distinct keys a group, and the
    time each group is evaluated at."""
    members = sorted(members, key=lambda member: member.at)
    moment: list[_Member] = []
    for member in members:
        if moment and member.at - moment[0].at > SAME_MOMENT_SECONDS:
            yield from _chunks(moment, max_keys)
            moment = []
        moment.append(member)
    if moment:
        yield from _chunks(moment, max_keys)


def _chunks(members: list[_Member], max_keys: int) -> Iterator[tuple[float, list[_Member]]]:
    by_key: dict[tuple[str, ...], list[_Member]] = defaultdict(list)
    for member in members:
        by_key[member.key].append(member)
    keys = sorted(by_key)  # neighbours share values: a deployment's versions, a namespace
    for start in range(0, len(keys), max_keys):
        chunk = [member for key in keys[start : start + max_keys] for member in by_key[key]]
        yield max(member.at for member in chunk), chunk


def _halves(members: list[_Member], keys: list[tuple[str, ...]]) -> list[list[_Member]]:
    """``members`` in two groups, each with half of their (sorted) ``keys``."""
    first = set(keys[: len(keys) // 2])
    return [[m for m in members if m.key in first], [m for m in members if m.key not in first]]


def _fail(member: _Member, failed: QueryFailed) -> None:
    if not member.answer.done():
        member.answer.set_exception(failed)


def _connection_key(source: PrometheusSource) -> str:
    """Sources that share this share a connection (and may share a query)."""
    return source.model_dump_json(
        include={"address", "timeout", "retries", "auth", "ca_file", "insecure_skip_verify"}
    )
