"""Crash safety: finish what a killed watcher started, and keep one watcher per deployment.

The watcher records ``decision`` and ``action_intent`` before acting and
``action_result`` after. On start, :func:`recover` reads the deployment's
entries, finds watches that started but never ended, asks the executor for the
real state, and then

- re-runs an interrupted action (executors are idempotent), resuming a gradual
  rollback after its last recorded step, never above the canary weight it really has;
- records a ``recovery`` entry (what was found and done), plus the interrupted
  watch's missing ``action_result`` and ``deployment_end``, so the report and
  ``audit verify`` see a complete trail.

A progressive release killed between two actions is not restarted from its
first step: :func:`crashed_step` finds the step its last ``promotion_step``
entry recorded, and the next watch takes the release up there, however many
watches were killed since (one killed while it took the release up included).
A watch stopped by SIGINT or SIGTERM, or whose ``--for`` runs out before the
release ends, leaves its release the same way (:mod:`rollguard.controller.stopped`);
``watch --restart`` starts it over.

:func:`deployment_lock` holds the store's lease for the whole watch and
renews it in the background, while its :class:`LockLease` says it is kept (the
controller's: while the policy's shard is owned, each lease no longer than the
ownership left, so the lock never outlives the replica's right to act). A lease
taken is always given back or owned: the blocking store calls run to their end
even when the watch is cancelled while it waits for them (a pause, a reload, a
shutdown), and the lease is released before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rollguard.audit.base import AuditEntry, AuditRecord, AuditSink, AuditStore, Kind
from rollguard.controller import actions, audit_write
from rollguard.controller.actions import ActionKind, OperatorAction, action_kind
from rollguard.controller.clock import Clock
from rollguard.errors import RollguardError
from rollguard.executors.base import Executor
from rollguard.metrics.base import Provider
from rollguard.policy.actions import Action, gradual_canary_percent
from rollguard.policy.model import KubernetesExecutorSpec, Policy
from rollguard.timestamps import rfc3339

logger = logging.getLogger("rollguard.recovery")

LEASE_SECONDS = 60.0
#: The reason of the ``deployment_end`` recovery writes for a watch that never recorded
#: its own end: the watch was killed, not ended (:func:`release_step` reads it so).
CLOSED_BY_RECOVERY = "closed by recovery after the watcher stopped"
#: The key of the ``deployment_end`` evidence of a watch stopped by a signal (its name):
#: such a watch stopped, its release did not end.
STOPPED_BY = "stopped_by"
#: The ``stopped_by`` of a watch whose time (``watch --for``) ran out before its
#: progressive release ended: it stopped like one a signal stops, its release goes on.
RAN_OUT = "time"
#: The key of the ``deployment_start`` evidence of a watch that starts its release over
#: (``watch --restart``): the steps recorded before it are not resumed.
RESTART = "restart"
T = TypeVar("T")


@dataclass(frozen=True)
class LockLease:
    """How a watch keeps its deployment's lock: the lease's length, and whether to renew.

    When ``kept()`` turns false the renewals stop and the lease runs out within
    ``seconds`` even though the watch still runs (the controller's replica whose
    shard moved while it was cut off from the API server): the new owner takes it.
    ``left()`` caps each lease taken or renewed (the controller's: what is left of the
    shard's ownership), so the lock never outlives the right to act it stands for.
    """

    seconds: float = LEASE_SECONDS
    kept: Callable[[], bool] = lambda: True
    left: Callable[[], float] = lambda: math.inf

    def length(self) -> float:
        """The lease to take or renew now: ``seconds``, or less when ``left()`` is less."""
        return max(0.0, min(self.seconds, self.left()))


@dataclass
class Interrupted:
    """One watch that started and never recorded its end."""

    watch_id: str
    #: The namespace its ``deployment_start`` named (None: none, or written before
    #: namespaces were recorded).
    namespace: str | None = None
    decision: AuditEntry | None = None
    intent: AuditEntry | None = None
    result: AuditEntry | None = None
    steps: list[AuditEntry] = field(default_factory=list)

    @property
    def acting(self) -> AuditEntry | None:
        """The entry naming the decided action (trigger, severity, reason)."""
        return self.intent or self.decision


@dataclass(frozen=True)
class Recovered:
    """What recovery did for an interrupted action; the watch ends with it."""

    ok: bool
    action: ActionKind
    trigger: str | None
    reason: str
    severity: str
    detail: dict[str, Any]


def interrupted_watches(entries: Sequence[AuditEntry]) -> list[Interrupted]:
    """Watches with a ``deployment_start`` and no ``deployment_end``, in chain order."""
    found: dict[str, Interrupted] = {}
    ended: set[str] = set()
    for entry in entries:
        record = entry.record
        watch = record.watch_id
        if record.kind == "deployment_start":
            found.setdefault(watch, Interrupted(watch, _started_in(record)))
        elif record.kind == "deployment_end":
            ended.add(watch)
        elif watch in found:
            item = found[watch]
            if record.kind == "decision" and record.action != Action.CONTINUE.value:
                item.decision = entry
            elif record.kind == "action_intent":
                item.intent = entry
            elif record.kind == "action_step":
                item.steps.append(entry)
            elif record.kind == "action_result":
                item.result = entry
    return [item for watch, item in found.items() if watch not in ended]


async def recover(
    store: AuditStore,
    *,
    policy: Policy,
    executor: Executor,
    provider: Provider,
    clock: Clock,
    watch_id: str,
    namespace: str | None = None,
) -> Recovered | None:
    """Complete every interrupted watch of the deployment; the last action's outcome, if any.

    A watch that named another namespace is another deployment of the same name
    (running now, or left to its own namespace's next watch): it is not touched.
    """
    deployment = policy.target.deployment
    ns = namespace or ""  # recorded on every entry recovery writes
    outcome: Recovered | None = None
    entries = await asyncio.to_thread(store.list, deployment=deployment)
    for item in interrupted_watches(entries):
        if item.namespace is not None and item.namespace != namespace:
            continue
        acting = item.result or item.acting
        if acting is None:
            await _end(
                store, policy, clock, watch_id=item.watch_id, outcome="interrupted", namespace=ns
            )
            continue
        action = action_kind(acting.record.action)
        if item.result is not None:
            ok = item.result.record.outcome == "success"
            detail: dict[str, Any] = {"found": "action_result already recorded"}
        else:
            ok, detail = await _complete(
                action,
                trigger=acting.record.trigger,
                steps=item.steps,
                policy=policy,
                executor=executor,
                provider=provider,
                clock=clock,
            )
            await _append(
                store,
                policy,
                "action_result",
                clock,
                watch_id=item.watch_id,
                like=acting,
                outcome="success" if ok else "failure",
                executor_output={**detail, "recovered": True},
                namespace=ns,
            )
        await _append(
            store,
            policy,
            "recovery",
            clock,
            watch_id=watch_id,
            like=acting,
            outcome="success" if ok else "failure",
            reason=f"completed the action of interrupted watch {item.watch_id}",
            evidence={"interrupted_watch": item.watch_id, "intent_entry": acting.id},
            executor_output=detail,
            namespace=ns,
        )
        ended = "rolled_back" if ok else "failed"
        if ok and action is Action.DEPLOYMENT_BLOCK:
            ended = "blocked"
        elif ok and action is OperatorAction.PROMOTE:
            ended = "promoted"
        await _end(store, policy, clock, watch_id=item.watch_id, outcome=ended, namespace=ns)
        outcome = Recovered(
            ok=ok,
            action=action,
            trigger=acting.record.trigger,
            reason=f"recovered: {acting.record.reason}",
            severity=acting.record.severity,
            detail=detail,
        )
    return outcome


@dataclass(frozen=True)
class CrashedStep:
    """Where a killed or stopped progressive release stood: its step's index in
    ``promotion.steps``, and the last watch that was under way with it."""

    index: int
    canary_weight: int
    watch_id: str
    #: The signal that stopped that watch, or :data:`RAN_OUT` (None: it was killed).
    stopped_by: str | None = None

    @property
    def after(self) -> str:
        """How that watch ended, as the resumed step's reason says it."""
        if self.stopped_by == RAN_OUT:
            return f"watch {self.watch_id} ran out of time"
        how = f"stopped by {self.stopped_by}" if self.stopped_by else "interrupted"
        return f"watch {self.watch_id} was {how}"


async def crashed_step(
    store: AuditStore, policy: Policy, *, namespace: str | None = None
) -> CrashedStep | None:
    """The step a killed or stopped progressive release last took, to take it up there.

    Only when the policy's steps still have that share at that place (a changed
    policy starts over); :func:`release_step` says which step that is.
    """
    plan = policy.promotion
    if plan is None:
        return None
    entries = await asyncio.to_thread(store.list, deployment=policy.target.deployment)
    taken = release_step(entries, namespace=namespace)
    if taken is None:
        return None
    output = taken.step.record.executor_output
    step, weight = output.get("step"), output.get("canary_weight")
    if not (isinstance(step, int) and isinstance(weight, int)):
        return None
    if 0 < step <= len(plan.steps) and plan.steps[step - 1] == weight:
        return CrashedStep(step - 1, weight, taken.watch_id, taken.stopped_by)
    return None


@dataclass(frozen=True)
class ReleaseStep:
    """A release's last ``promotion_step``, and the last watch under way with it."""

    step: AuditEntry
    watch_id: str
    #: The signal that stopped that watch, or :data:`RAN_OUT` (None: killed, or running).
    stopped_by: str | None = None


def release_step(
    entries: Sequence[AuditEntry], *, namespace: str | None = None
) -> ReleaseStep | None:
    """The last ``promotion_step`` of a release no watch has ended since, and the last
    watch that was under way with it (killed or stopped by a signal), or None.

    A release outlives the watches killed or stopped while it runs: a watch closed
    by :func:`recover` (``deployment_end`` written by recovery), stopped by SIGINT or
    SIGTERM (its ``deployment_end`` names the signal) or whose time ran out before the
    release ended (``stopped_by``: :data:`RAN_OUT`) does not end it, so a watch
    killed again before it recorded the step it took up (the share being set again,
    or recovery done and nothing recorded yet) leaves the step where it was, never
    back to the first. A watch that ended by itself otherwise (promoted, held for an
    operator, paused, reloaded, superseded, retried) or an action (a rollback, an operator's
    promote or abort) ends the release, and so does a watch that starts it over
    (``watch --restart``). Watches of another namespace's deployment of the same
    name are not this release's.
    """
    ours: set[str] = set()
    step: AuditEntry | None = None
    last_watch, stopped = "", None
    for entry in entries:
        record = entry.record
        if record.kind == "deployment_start":
            other = _started_in(record)
            if other is None or other == namespace:
                ours.add(record.watch_id)
                last_watch, stopped = record.watch_id, None
                if record.evidence.get(RESTART):
                    step = None
            continue
        if record.watch_id not in ours:
            continue
        if record.kind == "promotion_step" and record.outcome == "success":
            step = entry
        elif _ends_release(record):
            step = None
        elif record.kind == "deployment_end" and record.watch_id == last_watch:
            signal = record.evidence.get(STOPPED_BY)
            stopped = str(signal) if signal else None
    return ReleaseStep(step, last_watch, stopped) if step is not None else None


def _started_in(record: AuditRecord) -> str | None:
    """The namespace a ``deployment_start`` names (its field, or its evidence where
    rollguards from before the field wrote it), None when it names none."""
    namespace = record.namespace or record.evidence.get("namespace")
    return str(namespace) if namespace else None


def _ends_release(record: AuditRecord) -> bool:
    """A watch's own end, or an action (a rollback, an operator's promote or abort); not
    the end recovery wrote for a killed watch, nor that of a watch a signal or its time
    stopped."""
    if record.kind == "deployment_end":
        return record.reason != CLOSED_BY_RECOVERY and not record.evidence.get(STOPPED_BY)
    if record.kind == "decision":
        return record.action != Action.CONTINUE.value
    return record.kind in ("action_intent", "action_result")


async def _complete(
    action: ActionKind,
    *,
    trigger: str | None,
    steps: Sequence[AuditEntry],
    policy: Policy,
    executor: Executor,
    provider: Provider,
    clock: Clock,
) -> tuple[bool, dict[str, Any]]:
    """Read the real state, then finish the action from there.

    A gradual rollback resumes after its last recorded step, its steps still shares
    of the weight the canary had when it began, so the plan is the one that was
    started; before any recorded step it starts over from the weight found.
    """
    try:
        before = await executor.status()
    except RollguardError as exc:  # unreadable: recorded failed, never guessed
        return False, {"found": f"status failed: {exc}", "done": "nothing"}
    found = {"canary_weight": before.canary_weight, "canary_state": before.canary_state}
    completed = (
        before.canary_weight == 100
        if action is OperatorAction.PROMOTE
        else before.rolled_back and before.canary_state in ("retired", "isolated")
    )
    if completed:
        return True, {"found": found, "done": "nothing: the action had completed"}
    resumed, gradual_from = policy, None
    if action is Action.GRADUAL_ROLLBACK:
        done_steps = [
            entry.record.executor_output
            for entry in steps
            if entry.record.executor_output.get("step") == "set_canary_weight"
            and entry.record.executor_output.get("ok")
            and "from_percent" in entry.record.executor_output
        ]
        if done_steps:
            last = done_steps[-1]
            gradual_from = int(str(last["from_percent"]))
            done_to_stable = int(str(last.get("to_stable_percent", 0)))
            remaining = [
                s
                for s in policy.rollback.steps
                if s > done_to_stable  # and never more traffic than the canary has now
                and gradual_canary_percent(gradual_from, s) <= before.canary_weight
            ]
            rollback = policy.rollback.model_copy(update={"steps": remaining or [100]})
            resumed = policy.model_copy(update={"rollback": rollback})
    done = await actions.execute(
        action,
        policy=resumed,
        executor=executor,
        provider=provider,
        clock=clock,
        gradual_from=gradual_from,
        trigger=trigger,
    )
    return done.ok, {"found": found, "done": done.as_dict()}


async def _append(
    store: AuditSink,
    policy: Policy,
    kind: Kind,
    clock: Clock,
    *,
    watch_id: str,
    like: AuditEntry | None = None,
    outcome: str = "",
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    executor_output: dict[str, Any] | None = None,
    namespace: str = "",
) -> None:
    base = like.record if like is not None else None
    await audit_write.append(
        store,
        AuditRecord(
            kind=kind,
            deployment=policy.target.deployment,
            timestamp=rfc3339(clock.now()),
            trigger=base.trigger if base else None,
            reason=reason or (base.reason if base else ""),
            severity=base.severity if base else "info",
            action=base.action if base else "continue",
            outcome=outcome,
            policy_digest=policy.digest(),
            evidence=evidence or {},
            executor_output=executor_output or {},
            watch_id=watch_id,
            namespace=namespace,
        ),
    )


async def _end(
    store: AuditSink,
    policy: Policy,
    clock: Clock,
    *,
    watch_id: str,
    outcome: str,
    namespace: str = "",
) -> None:
    await _append(
        store,
        policy,
        "deployment_end",
        clock,
        watch_id=watch_id,
        outcome=outcome,
        reason=CLOSED_BY_RECOVERY,
        namespace=namespace,
    )


def namespace_of(policy: Policy) -> str | None:
    """The namespace of the policy's deployment, where it has one (Kubernetes)."""
    executor = policy.target.executor
    return executor.namespace if isinstance(executor, KubernetesExecutorSpec) else None


@contextlib.asynccontextmanager
async def deployment_lock(
    store: AuditStore, deployment: str, *, owner: str, lease: LockLease = LockLease()
) -> AsyncIterator[None]:
    """Hold the deployment's lease while the body runs; renew it every third of the lease
    while ``lease.kept()``.

    Cancelled at any await here, the lease ends released: a store call in flight
    finishes first (a thread cannot be stopped half-way), then the lease is given back.
    """

    def release() -> None:
        store.release_lock(deployment, owner=owner)

    try:
        await to_completion(
            lambda: store.acquire_lock(deployment, owner=owner, lease_seconds=lease.length())
        )
    except asyncio.CancelledError:
        await _quietly(to_completion(release))  # the acquire may have gone through
        raise

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.seconds / 3)
            if not lease.kept():
                continue  # let it run out: whoever is entitled now takes it
            try:
                await to_completion(
                    lambda: store.renew_lock(deployment, owner=owner, lease_seconds=lease.length())
                )
            except Exception as exc:  # keep watching; the next renewal may succeed
                logger.error("could not renew the lock on %s: %s", deployment, exc)

    renewer = asyncio.get_running_loop().create_task(renew())
    try:
        yield
    finally:
        renewer.cancel()
        cancelled = await _wait_out(renewer)  # a renewal in flight lands before the release
        await _quietly(to_completion(release))
        if cancelled:
            raise asyncio.CancelledError


async def to_completion(call: Callable[[], T]) -> T:
    """``call()`` on a thread, waited for to its end even if the caller is cancelled meanwhile.

    The cancellation is raised once the call has finished, so the caller knows what
    it did (a lock taken, an entry written) before it unwinds. A failure of the
    call itself (a lock refused) is chained to that cancellation, not left for
    asyncio to report as never retrieved.
    """
    future = asyncio.ensure_future(asyncio.to_thread(call))
    if await _wait_out(future):
        raise asyncio.CancelledError from future.exception()
    return future.result()


async def _wait_out(future: asyncio.Future[Any]) -> bool:
    """Wait until ``future`` is done, through cancellations; True if there was one."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


async def _quietly(call: Awaitable[None]) -> None:
    """Await a release: a store error is logged (the lease then expires on its own)."""
    try:
        await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.error("could not release a deployment's lock: %s", exc)
