"""Fault injection at every await of an action path: a cancellation or a SIGKILL at one point.

A *point* is one call the watcher awaits into the world: the audit store
(``acquire_lock``, ``list``, ``append``, ``renew_lock``, ``release_lock``), the
executor, the provider or the clock. Every await of an action path ends in one
of them, so a fault at each point, *before* the call (nothing done yet) and
*after* it (done, but the caller has not seen it), covers every await. A
cancellation during a store call lands while its thread is still working,
the moment the deployment-lock leak needed.

:func:`run_path` runs one action path (engine- or operator-initiated) against
a real SQLite store and a file-backed deployment, with one fault or none;
:func:`check_after` runs the next watch (recovery) and checks what must hold.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from file_executor import FileExecutor, read_state, write_state

from rollguard.audit.base import AuditEntry, AuditRecord, LockInfo, StoreWrapper
from rollguard.audit.factory import open_store
from rollguard.controller import SimulatedClock, Watcher
from rollguard.controller.actions import OperatorAction
from rollguard.controller.watch import OperatorRequest, WatchResult
from rollguard.executors.base import ActionResult, TargetStatus
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import parse_policy
from rollguard.policy.actions import Action
from rollguard.signals import Measurement, Query, Signal, Version
from rollguard.testing import InMemoryProvider

T = TypeVar("T")
Position = Literal["before", "after"]
Kind = Literal["cancel", "kill"]
START = 1_795_000_000.0

POLICY = """
target: {{deployment: shop}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}}
analysis: {{interval: 5s, persistence: 1}}
rollback: {{steps: [25, 50, 75, 100], step_wait: 10s, scale_factor: 2}}
error_rate_trigger: {{threshold: 5%, measurement_window: 1 minute, action: {action}}}
"""

#: Every action path: the engine's five actions and the operator's two.
PATHS = {
    "immediate": Action.IMMEDIATE_ROLLBACK,
    "gradual": Action.GRADUAL_ROLLBACK,
    "scaling": Action.SCALING_AND_ROLLBACK,
    "isolation": Action.TRAFFIC_ISOLATION_AND_ROLLBACK,
    "block": Action.DEPLOYMENT_BLOCK,
    "abort": Action.IMMEDIATE_ROLLBACK,
    "promote": OperatorAction.PROMOTE,
}
OPERATOR = {"abort", "promote"}


@dataclass
class Injector:
    """Counts points; at ``fault`` (n-th point, position) cancels the watch or SIGKILLs us."""

    fault: tuple[int, Position] | None = None
    kind: Kind = "cancel"
    points: list[str] = field(default_factory=list)
    fired: str | None = None
    task: asyncio.Task[Any] | None = None
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    def _number(self, name: str) -> int:
        with self._count_lock:
            self.points.append(name)
            return len(self.points)

    def _due(self, number: int, position: Position) -> bool:
        return self.fault == (number, position) and self.fired is None

    async def around(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        """A point on the event loop (executor, provider, clock)."""
        number = self._number(name)
        await self._inject(number, "before", name)
        result = await call()
        await self._inject(number, "after", name)
        return result

    def around_thread(self, name: str, call: Callable[[], T]) -> T:
        """A point on a worker thread (the store): the fault lands while the call is in flight."""
        number = self._number(name)
        self._inject_threaded(number, "before", name)
        result = call()
        self._inject_threaded(number, "after", name)
        return result

    async def _inject(self, number: int, position: Position, name: str) -> None:
        if not self._due(number, position):
            return
        self.fired = f"{position} {name} (point {number})"
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        current = asyncio.current_task()
        assert current is not None
        current.cancel()
        await asyncio.sleep(0)  # the cancellation arrives at this await

    def _inject_threaded(self, number: int, position: Position, name: str) -> None:
        if not self._due(number, position):
            return
        self.fired = f"{position} {name} (point {number})"
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        task = self.task
        assert task is not None

        async def deliver() -> None:
            task.cancel()
            for _ in range(3):  # let the waiting task take the cancellation in
                await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(deliver(), task.get_loop()).result(timeout=10)


class FaultyStore(StoreWrapper):
    """The real store, each call a point."""

    def __init__(self, inner: Any, injector: Injector) -> None:
        super().__init__(inner)
        self.injector = injector

    def append(self, record: AuditRecord) -> int:
        return self.injector.around_thread(
            f"store.append:{record.kind}", lambda: super(FaultyStore, self).append(record)
        )

    def list(self, **filters: Any) -> Sequence[AuditEntry]:
        return self.injector.around_thread("store.list", lambda: self.inner.list(**filters))

    def acquire_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        return self.injector.around_thread(
            "store.acquire_lock",
            lambda: self.inner.acquire_lock(deployment, owner=owner, lease_seconds=lease_seconds),
        )

    def renew_lock(self, deployment: str, *, owner: str, lease_seconds: float) -> LockInfo:
        return self.injector.around_thread(
            "store.renew_lock",
            lambda: self.inner.renew_lock(deployment, owner=owner, lease_seconds=lease_seconds),
        )

    def release_lock(self, deployment: str, *, owner: str) -> None:
        self.injector.around_thread(
            "store.release_lock", lambda: self.inner.release_lock(deployment, owner=owner)
        )


class FaultyExecutor:
    """A :class:`FileExecutor`, each call a point."""

    def __init__(self, inner: FileExecutor, injector: Injector) -> None:
        self.inner = inner
        self.injector = injector

    async def rollback(self) -> ActionResult:
        return await self.injector.around("executor.rollback", self.inner.rollback)

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        return await self.injector.around(
            "executor.set_canary_weight", lambda: self.inner.set_canary_weight(percent=percent)
        )

    async def scale(self, *, factor: float) -> ActionResult:
        return await self.injector.around("executor.scale", lambda: self.inner.scale(factor=factor))

    async def isolate(self) -> ActionResult:
        return await self.injector.around("executor.isolate", self.inner.isolate)

    async def status(self) -> TargetStatus:
        return await self.injector.around("executor.status", self.inner.status)

    async def aclose(self) -> None:
        await self.inner.aclose()


class FaultyProvider:
    """An in-memory provider, each call a point."""

    def __init__(self, inner: InMemoryProvider, injector: Injector) -> None:
        self.inner = inner
        self.injector = injector

    async def collect(self, *, now: float) -> None:
        await self.injector.around("provider.collect", lambda: self.inner.collect(now=now))

    async def measure(self, queries: Sequence[Query], *, now: float) -> list[Measurement]:
        return await self.injector.around(
            "provider.measure", lambda: self.inner.measure(queries, now=now)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class FaultyClock(SimulatedClock):
    """A simulated clock whose sleeps are points."""

    def __init__(self, start: float, injector: Injector) -> None:
        super().__init__(start)
        self.injector = injector

    async def sleep(self, seconds: float) -> None:
        await self.injector.around("clock.sleep", lambda: SimulatedClock.sleep(self, seconds))


def provider(*, healthy: bool) -> InMemoryProvider:
    return InMemoryProvider(
        {
            (Signal.ERROR_RATE_PERCENT, Version.STABLE): 0.5,
            (Signal.ERROR_RATE_PERCENT, Version.CANARY): 0.4 if healthy else 40.0,
        }
    )


def prepare(folder: Path) -> tuple[Path, str]:
    """A deployment with 20 % on the canary, and an empty store."""
    state = folder / "deployment.json"
    write_state(state, {"canary_weight": 20, "canary_state": "serving", "history": []})
    return state, f"sqlite:///{folder / 'audit.db'}"


def _policy(path: str) -> Any:
    engine_action = PATHS[path] if path not in OPERATOR else Action.IMMEDIATE_ROLLBACK
    return parse_policy(POLICY.format(action=engine_action.value))


async def run_path(
    path: str, folder: Path, injector: Injector, *, clock_start: float = START
) -> WatchResult | str:
    """Run ``path`` once with ``injector``; the watch's result, or how it was cut short."""
    state, url = prepare(folder) if not (folder / "audit.db").exists() else _existing(folder)
    store = open_store(url)
    try:
        watcher = Watcher(
            _policy(path),
            provider=FaultyProvider(provider(healthy=path in OPERATOR), injector),
            executor=FaultyExecutor(FileExecutor(state), injector),  # type: ignore[arg-type]
            notifier=LogNotifier(),
            audit=FaultyStore(store, injector),
            clock=FaultyClock(clock_start, injector),
        )
        if path in OPERATOR:
            request = OperatorRequest(
                action=PATHS[path], command=path, requested_by="fault-suite", note="injected"
            )
            work = watcher.operate(request)
        else:
            work = watcher.run(duration_seconds=60)
        task = asyncio.ensure_future(work)
        injector.task = task
        try:
            return await task
        except asyncio.CancelledError:
            return f"cancelled {injector.fired}"
    finally:
        store.close()


def _existing(folder: Path) -> tuple[Path, str]:
    return folder / "deployment.json", f"sqlite:///{folder / 'audit.db'}"


def kill_each(path: str, plan: Sequence[tuple[Path, int, Position]]) -> list[int]:
    """Run ``path`` once per planned fault in a forked child SIGKILLed at that point.

    Called in a fresh single-threaded process (``python faults.py``), which imports
    everything once and forks a child per fault: a child costs milliseconds, not an
    interpreter start. Returns each child's wait status as a signal number or exit code.
    """
    statuses = []
    for folder, number, position in plan:
        pid = os.fork()
        if pid == 0:  # the child: run until the kill
            try:
                asyncio.run(run_path(path, folder, Injector((number, position), kind="kill")))
            finally:
                os._exit(3)  # the fault was never reached: 3, not a SIGKILL
        _, status = os.waitpid(pid, 0)
        statuses.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    return statuses


if __name__ == "__main__":  # python faults.py PATH FOLDER:NUMBER:POSITION ...
    import json
    import sys

    planned = []
    for item in sys.argv[2:]:
        where, number, position = item.rsplit(":", 2)
        planned.append((Path(where), int(number), cast(Position, position)))
    print(json.dumps(kill_each(sys.argv[1], planned)))


async def check_after(path: str, folder: Path) -> list[AuditEntry]:
    """Run the next watch and check the invariants.

    The canary is still bad for the engine's paths (so a rollback resumed runs to its
    end rather than stopping early, and one never begun is decided again) and
    healthy for the operator's (whose actions no trigger asks for).
    """
    state, url = _existing(folder)
    store = open_store(url)
    try:
        watcher = Watcher(
            _policy(path),
            provider=provider(healthy=path in OPERATOR),
            executor=FileExecutor(state),
            notifier=LogNotifier(),
            audit=store,
            clock=SimulatedClock(START + 10_000),
        )
        await watcher.run(duration_seconds=10)
        entries = list(store.list())
        report = store.verify()
        assert report.ok, report.message
        assert store.lock_holder("shop") is None, "the lease was not released"
    finally:
        store.close()
    _check_trail(path, entries, read_state(state))
    return entries


def _check_trail(path: str, entries: list[AuditEntry], final: dict[str, Any]) -> None:
    """Every watch ended; every action has a result; never two actions open at once."""
    started: set[str] = set()
    ended: set[str] = set()
    open_actions: set[str] = set()
    results: dict[str, str] = {}
    for entry in entries:
        record = entry.record
        if record.kind == "deployment_start":
            started.add(record.watch_id)
        elif record.kind == "deployment_end":
            ended.add(record.watch_id)
        elif record.kind == "action_intent":
            assert not open_actions, f"a second action began while {open_actions} was open"
            open_actions.add(record.watch_id)
        elif record.kind == "action_result":
            open_actions.discard(record.watch_id)
            results[record.watch_id] = record.outcome
    assert started <= ended, f"watches never ended: {started - ended}"
    assert not open_actions, f"actions never finished: {open_actions}"
    if not results:
        return  # the fault came before any action was intended: nothing was done
    assert set(results.values()) <= {"success", "failure"}
    if "failure" in results.values():
        return  # recorded as failed
    if PATHS[path] is Action.DEPLOYMENT_BLOCK and "rollback" not in str(final["history"]):
        return  # blocked before any change: nothing to roll back
    history = [weight for _, weight in final["history"]]
    if PATHS[path] is OperatorAction.PROMOTE:
        assert final["canary_weight"] == 100, final
    else:
        assert final["canary_weight"] == 0, final
        assert history == sorted(history, reverse=True), f"traffic went back up: {history}"
