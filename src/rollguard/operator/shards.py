"""Sharded replicas: each policy belongs to one of a fixed number of shards, each shard is
a ``coordination.k8s.io`` Lease that one replica holds and renews.

The three durations are client-go leader election's, with the same meaning:

- every *retry period* a replica renews its own member Lease, lists the group's
  Leases (one request), renews the shards it holds, gives back those beyond its
  fair share (``ceil(shards / live replicas)``) and takes free ones up to it;
- a shard is free when its Lease has no holder, or has not changed for a whole
  *lease duration*: as client-go's, expiry is judged by when *this* replica saw
  the Lease change, never by another machine's clock. A replica does not wait
  for its next retry to see a Lease expire: it lists again at the moment the
  earliest Lease it watches would, so a killed replica's shards are taken a lease
  duration after the others saw its last renewal, not up to a retry period later;
- a holder owns a shard until the monotonic time of its last successful
  renewal's *request* plus the *renew deadline*, shorter than the duration: its
  ownership ends before any other replica can judge the Lease expired, with the
  difference as a margin for an action already under way.

A replica paused (SIGSTOP) or cut off past its renew deadline finds its shards
gone when it wakes, so :class:`~rollguard.operator.fence.FencedExecutor`
refuses its pending actions before the replica has even read the Lease again.
Writes carry the ``resourceVersion`` they were computed from: two replicas
never both take a shard (the second gets 409 Conflict).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollguard.operator.kube import PolicyKey
from rollguard.timestamps import now_rfc3339

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP_LABEL = "rollguard.dev/group"
ROLE_LABEL = "rollguard.dev/role"
#: Listed this long after a watched Lease's expiry: its judgement is then past doubt.
EXPIRY_MARGIN_SECONDS = 0.05


@dataclass(frozen=True)
class LeaseTiming:
    """A shard Lease's three durations, as client-go's leader election has them."""

    #: How long a Lease must stay unchanged, as another replica sees it, to be free.
    lease_seconds: float = 10.0
    #: How long after its last successful renewal's request a holder still owns a shard.
    renew_deadline_seconds: float = 7.0
    #: How often a replica renews its Leases and looks for free ones.
    retry_seconds: float = 2.0

    def problem(self) -> str | None:
        """Why the durations cannot work together (None: they can)."""
        if not self.lease_seconds > self.renew_deadline_seconds:
            return (
                f"the renew deadline ({self.renew_deadline_seconds:g} s) must be shorter than "
                f"the Lease's duration ({self.lease_seconds:g} s): a holder must stop acting "
                "before another replica may take its shards"
            )
        if not self.renew_deadline_seconds > self.retry_seconds:
            return (
                f"the retry period ({self.retry_seconds:g} s) must be shorter than the renew "
                f"deadline ({self.renew_deadline_seconds:g} s): a holder renews several "
                "times before its ownership ends"
            )
        return None


def shard_of(key: PolicyKey, shards: int) -> int:
    """A policy's shard: a stable hash of its namespace and name."""
    digest = hashlib.sha256(str(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def lease_name(group: str, role: str, suffix: str) -> str:
    """A Lease name (a DNS-1123 subdomain) from the group, its role and a suffix."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", suffix.lower()).strip("-.") or "x"
    return f"{group}-{role}-{cleaned}"[:253]


@dataclass
class ShardKeeper:
    """Holds and renews this replica's fair share of the group's shard Leases."""

    client: k8s.ApiClient
    namespace: str
    identity: str
    group: str = "rollguard"
    shards: int = 8
    timing: LeaseTiming = field(default_factory=LeaseTiming)
    clock: Callable[[], float] = time.monotonic
    #: shard -> monotonic deadline of the ownership (last renewal's request + renew deadline)
    held: dict[int, float] = field(default_factory=dict)
    #: Lease name -> (resourceVersion, when this replica first saw it)
    _seen: dict[str, tuple[str, float]] = field(default_factory=dict)
    requests: int = 0
    #: Set when this replica takes a shard: the reconcile loop starts its analyses at once.
    taken: asyncio.Event = field(default_factory=asyncio.Event)
    #: When the earliest watched Lease expires (monotonic), if one will.
    _next_expiry: float = math.inf

    def __post_init__(self) -> None:
        problem = self.timing.problem()
        if problem is not None:
            raise ValueError(problem)
        self._api = k8s.CoordinationV1Api(self.client)
        # Threads of its own: a renewal never waits behind the reconcile loop's requests
        # (thousands of status writes and Events at a start), or ownership would lapse.
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shard-leases")

    # --- what the controller asks --------------------------------------------------

    def owns_shard(self, shard: int) -> bool:
        return self.clock() < self.held.get(shard, -math.inf)

    def owns(self, key: PolicyKey) -> bool:
        return self.owns_shard(shard_of(key, self.shards))

    def owned_for(self, key: PolicyKey) -> float:
        """Seconds this replica still owns the policy's shard (0 when it does not)."""
        deadline = self.held.get(shard_of(key, self.shards), -math.inf)
        return max(0.0, deadline - self.clock())

    def owned(self) -> list[int]:
        """The shards this replica owns now."""
        return sorted(index for index in list(self.held) if self.owns_shard(index))

    @property
    def lease_seconds(self) -> float:
        return self.timing.lease_seconds

    def next_tick_in(self) -> float:
        """Seconds to the next tick: the retry period, or sooner when a watched Lease
        expires before (a killed replica's shards are taken as soon as they are free)."""
        expiry = self._next_expiry + EXPIRY_MARGIN_SECONDS - self.clock()
        return max(0.0, min(self.timing.retry_seconds, expiry))

    async def run(self, on_tick: Callable[[str], None] = lambda error: None) -> None:
        """Tick until cancelled; API errors wait for the next tick (ownership lapses).

        ``on_tick`` hears of every tick: "" when it succeeded, else what went wrong.
        """
        while True:
            error = ""
            try:
                await self.tick()
            except (ApiException, HTTPError, OSError) as exc:
                logger.warning("shard leases: %s", exc)
                error = f"shard Leases: {_said(exc)}"
            on_tick(error)
            await asyncio.sleep(self.next_tick_in())

    async def release_all(self) -> None:
        """Give every held shard back at once (a clean stop needs no expiry)."""
        leases = await self._list()
        for index in list(self.held):
            lease = leases.get(self._shard_name(index))
            self.held.pop(index, None)
            if lease is not None and _holder(lease) == self.identity:
                await self._write(lease, holder=None)

    # --- one tick -------------------------------------------------------------------

    async def tick(self) -> None:
        leases = await self._list()
        await self._renew_member(leases)
        now = self.clock()
        for name, lease in leases.items():
            version = lease["metadata"]["resourceVersion"]
            if self._seen.get(name, ("", 0.0))[0] != version:
                self._seen[name] = (version, now)
        fair = math.ceil(self.shards / max(1, self._live_members(leases, now)))
        mine = [
            index
            for index in range(self.shards)
            if _holder(leases.get(self._shard_name(index)) or {}) == self.identity
        ]
        for index in set(self.held) - set(mine):
            del self.held[index]
            holder = _holder(leases.get(self._shard_name(index)) or {})
            logger.warning("lost shard %d to %s", index, holder or "nobody")
        for index in mine[fair:]:  # beyond the fair share: another replica takes it
            self.held.pop(index, None)
            logger.info("gave shard %d back (fair share: %d)", index, fair)
            await self._write(leases[self._shard_name(index)], holder=None)
        for index in mine[:fair]:
            await self._renew(index, leases[self._shard_name(index)])
        for index in range(self.shards):
            if len(self.held) >= fair:
                break
            name = self._shard_name(index)
            if index not in self.held and self._free(name, leases.get(name), now):
                await self._take(index, leases.get(name))
        self._next_expiry = self._watched_expiry(leases, now)

    def _watched_expiry(self, leases: dict[str, Obj], now: float) -> float:
        """When the earliest Lease held by another replica will have expired, as seen here."""
        expiries = [
            self._seen[name][1] + self.lease_seconds
            for name, lease in leases.items()
            if _holder(lease) not in ("", self.identity)
        ]
        return min((at for at in expiries if at > now), default=math.inf)

    def _live_members(self, leases: dict[str, Obj], now: float) -> int:
        live = 0
        for name, lease in leases.items():
            if lease["metadata"].get("labels", {}).get(ROLE_LABEL) != "member":
                continue
            if _holder(lease) == self.identity or not self._expired(name, now):
                live += 1
        return live

    def _free(self, name: str, lease: Obj | None, now: float) -> bool:
        return lease is None or not _holder(lease) or self._expired(name, now)

    def _expired(self, name: str, now: float) -> bool:
        _, seen_at = self._seen.get(name, ("", now))
        return now - seen_at > self.lease_seconds

    async def _renew(self, index: int, lease: Obj) -> None:
        sent = self.clock()
        if await self._write(lease, holder=self.identity):
            self.held[index] = sent + self.timing.renew_deadline_seconds
        else:
            self.held.pop(index, None)

    async def _take(self, index: int, lease: Obj | None) -> None:
        sent = self.clock()
        if lease is None:
            taken = await self._create(self._shard_name(index), role="shard")
        else:
            taken = await self._write(lease, holder=self.identity, transition=True)
        if taken:
            self.held[index] = sent + self.timing.renew_deadline_seconds
            self.taken.set()
            logger.info("took shard %d", index)

    async def _renew_member(self, leases: dict[str, Obj]) -> None:
        """This replica's member Lease: how the others count the live replicas."""
        name = lease_name(self.group, "member", self.identity)
        mine = leases.get(name)
        if mine is None:
            await self._create(name, role="member")
        else:
            await self._write(mine, holder=self.identity)

    # --- the API --------------------------------------------------------------------

    def _shard_name(self, index: int) -> str:
        return lease_name(self.group, "shard", str(index))

    async def _list(self) -> dict[str, Obj]:
        answer = await self._call(
            lambda: self._api.list_namespaced_lease(
                self.namespace,
                label_selector=f"{GROUP_LABEL}={self.group}",
                _preload_content=False,
            )
        )
        items = json.loads(answer.data).get("items") or []
        return {item["metadata"]["name"]: item for item in items}

    async def _create(self, name: str, *, role: str) -> bool:
        now = now_rfc3339()
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {GROUP_LABEL: self.group, ROLE_LABEL: role},
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": math.ceil(self.lease_seconds),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            await self._call(lambda: self._api.create_namespaced_lease(self.namespace, body))
        except ApiException as exc:
            if exc.status == 409:  # another replica created it first
                return False
            raise
        return True

    async def _write(self, lease: Obj, *, holder: str | None, transition: bool = False) -> bool:
        """Replace the Lease as read (its resourceVersion): False on 409 Conflict."""
        spec = dict(lease.get("spec") or {})
        now = now_rfc3339()
        spec["holderIdentity"] = holder
        spec["renewTime"] = now
        spec["leaseDurationSeconds"] = math.ceil(self.lease_seconds)
        if transition:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        body: Any = {**lease, "spec": spec}
        name = lease["metadata"]["name"]
        try:
            await self._call(lambda: self._api.replace_namespaced_lease(name, self.namespace, body))
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    async def _call(self, call: Callable[[], Any]) -> Any:
        self.requests += 1
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def close(self) -> None:
        """Let the keeper's threads go (after :meth:`release_all`)."""
        self._threads.shutdown(wait=False)


def _said(exc: Exception) -> str:
    """An error in one line (an ApiException's text carries headers and body)."""
    if isinstance(exc, ApiException):
        return f"the API server answered {exc.status} {exc.reason}"
    return str(exc)


def _holder(lease: Obj) -> str:
    return str((lease.get("spec") or {}).get("holderIdentity") or "")
