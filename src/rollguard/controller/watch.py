"""The watch loop: measure → evaluate → act → record, until healthy or decided.

The engine decides; this module only moves data between the provider, the
engine, the executor, the notifier and the audit sink. Notifications are sent
in the background with a deadline, so a slow channel never delays a rollback.

An operator's action (``serve``'s abort and promote) is carried out by
:meth:`Watcher.operate` through the same path as the engine's: under the
deployment's lease, after recovery, as its own watch with a decision, an
intent, its steps and a result, so a crash mid-way is finished the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from rollguard.audit.base import AuditRecord, AuditSink, AuditStore, Kind
from rollguard.audit.locks import lock_key
from rollguard.baseline import Baseline
from rollguard.controller import actions, affected, audit_write, recovery, stopped
from rollguard.controller.actions import ActionKind, OperatorAction
from rollguard.controller.clock import Clock
from rollguard.controller.promotion import Progress, Stop
from rollguard.engine.decision import Evidence, TriggerStatus, Verdict
from rollguard.engine.evaluate import Evaluation, evaluate, required_queries
from rollguard.engine.state import EngineState
from rollguard.errors import ExitCode, HeldError
from rollguard.executors.base import Executor
from rollguard.metrics.base import Provider
from rollguard.notifiers.base import Notification, Notifier, notify_within
from rollguard.policy.actions import Action, Severity
from rollguard.policy.model import Policy
from rollguard.signals import Signal
from rollguard.timestamps import rfc3339

NOTIFY_DEADLINE_SECONDS = 10.0
#: How long a cancelled (interrupted) watch may spend recording its end.
INTERRUPT_RECORD_SECONDS = 5.0
#: Times closer than this are the same moment (a simulated clock adds up float intervals).
TIME_TOLERANCE_SECONDS = 1e-9


class Outcome(StrEnum):
    """How a watch ended; each maps to a documented exit code."""

    HEALTHY = "healthy"
    ROLLED_BACK = "rolled_back"
    BLOCKED = "blocked"
    INCONCLUSIVE = "inconclusive"
    FAILED = "failed"
    PROMOTED = "promoted"  # an operator sent all traffic to the canary

    @property
    def exit_code(self) -> ExitCode:
        return {
            Outcome.HEALTHY: ExitCode.HEALTHY,
            Outcome.PROMOTED: ExitCode.HEALTHY,
            Outcome.ROLLED_BACK: ExitCode.ROLLED_BACK,
            Outcome.BLOCKED: ExitCode.BLOCKED,
            Outcome.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
            Outcome.FAILED: ExitCode.ACTION_FAILED,
        }[self]


@dataclass
class WatchResult:
    """The final JSON object of ``rollguard watch``."""

    outcome: Outcome
    action: ActionKind
    trigger: str | None
    reason: str
    severity: str
    evidence: list[dict[str, Any]]
    started_at: float
    decided_at: float | None
    ended_at: float
    evaluations: int
    watch_id: str
    action_outcome: dict[str, Any] | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: A progressive release this watch's time left at its step, for the next watch.
    left: stopped.StopNote | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result object; ``release`` (step, of, canary_weight, resumable) only when
        the watch's time ran out before its progressive release ended."""
        left = {"release": self.left.release()} if self.left is not None else {}
        return {
            "outcome": self.outcome.value,
            "action": self.action.value,
            "trigger": self.trigger,
            "reason": self.reason,
            "severity": self.severity,
            "evidence": self.evidence,
            "started_at": _iso(self.started_at),
            "decided_at": _iso(self.decided_at) if self.decided_at is not None else None,
            "ended_at": _iso(self.ended_at),
            "evaluations": self.evaluations,
            "watch_id": self.watch_id,
            "action_outcome": self.action_outcome,
            "deliveries": self.deliveries,
            **left,
        }


EvaluationHook = Callable[[Evaluation], Awaitable[None] | None]
#: Called with each executor step of an action once it is recorded (``serve`` reads the
#: traffic split back then, so every step of a gradual rollback shows on its page).
StepHook = Callable[[dict[str, Any]], Awaitable[None] | None]


class Acting(Protocol):
    """What an action is carried out for: an engine :class:`Decision` or an operator's request."""

    @property
    def action(self) -> ActionKind: ...
    @property
    def trigger(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def notification(self) -> str | None: ...
    @property
    def evidence(self) -> tuple[Evidence, ...]: ...


@dataclass(frozen=True)
class OperatorRequest:
    """An operator's command that acts (abort, promote), with who asked and why."""

    action: ActionKind
    command: str
    requested_by: str
    note: str = ""
    on_behalf_of: str = ""  # who the client said it asks for (not verified), "" when unsaid
    trigger: str | None = "operator"
    severity: Severity = Severity.WARNING
    notification: str | None = None
    evidence: tuple[Evidence, ...] = ()

    @property
    def reason(self) -> str:
        return f"{self.command} by {asker(self.requested_by, self.on_behalf_of)}" + (
            f": {self.note}" if self.note else ""
        )

    def facts(self) -> dict[str, str]:
        """What the audit entries keep of the request."""
        facts = {"command": self.command, "requested_by": self.requested_by, "reason": self.note}
        if self.on_behalf_of:
            facts["on_behalf_of"] = self.on_behalf_of
        return facts


def asker(requested_by: str, on_behalf_of: str = "") -> str:
    """Who asked, as the trail says it: the token's name, and whom the client named."""
    return f"{requested_by} for {on_behalf_of}" if on_behalf_of else requested_by


class Watcher:
    """Watches one deployment with one policy."""

    def __init__(
        self,
        policy: Policy,
        *,
        provider: Provider,
        executor: Executor,
        notifier: Notifier,
        audit: AuditSink,
        clock: Clock,
        baseline: Baseline | None = None,
        on_evaluation: EvaluationHook | None = None,
        interval_seconds: float | None = None,
        judge_to_end: bool = False,
        fallbacks: Mapping[str, str] | None = None,
        align_ticks: bool = False,
        namespace: str | None = None,
        lock_lease: recovery.LockLease | None = None,
        warmed_up: bool = False,
    ) -> None:
        self.policy = policy
        #: The canary was watched past its warm-up before (another replica's watch, taken
        #: over): the first evaluation comes at once, not after a warm-up or at a tick.
        self.warmed_up = warmed_up
        #: The deployment's namespace (the Kubernetes executor's, unless given): it keys
        #: the lock and keeps recovery to this namespace's watches.
        self.namespace = namespace or recovery.namespace_of(policy)
        #: How the deployment's lock is kept (the controller ties it to the shard Lease).
        self.lock_lease = lock_lease or recovery.LockLease()
        self.provider = provider
        self.executor = executor
        self.notifier = notifier
        self.audit = audit
        self.clock = clock
        self.baseline = baseline
        self.on_evaluation = on_evaluation
        self.on_step: StepHook | None = None
        self.interval_seconds = interval_seconds or policy.analysis.interval
        # A backtest judges a whole recording: an inconclusive stretch does not end it.
        self.judge_to_end = judge_to_end
        # sequential triggers known before the start to be judged by their threshold rule
        self.fallbacks: dict[str, str] = dict(fallbacks or {})
        # Evaluations after the first fall on multiples of the interval (clock time), so
        # the watchers of one process ask at the same moments and their queries are
        # batched (rollguard.metrics.batching).
        self.align_ticks = align_ticks
        self.watch_id = uuid.uuid4().hex
        self.state = EngineState()
        self.last: Evaluation | None = None
        self._pending: set[asyncio.Task[list[dict[str, Any]]]] = set()
        self._watches = 0  # each watch (run or operate) after the first gets a new id
        self._open_since: float | None = None  # deployment_start recorded, no end yet
        self._acting = False  # action_intent recorded, action_result not yet
        self._writing: asyncio.Future[int] | None = None  # the last entry handed over
        self.progress: Progress | None = None  # a progressive release's steps (promotion:)
        #: Who holds a progressive release at its step (``release pause``), None when no one.
        self.held_by: str | None = None
        #: Why a cancelled watch stopped, for its ``deployment_end`` (``serve`` says who paused).
        self.interrupt_reason = "interrupted before a verdict"
        #: The signal that is stopping the watch (:meth:`stop_by`), None when none.
        self.stopping: str | None = None
        #: What the last watch stopped by a signal recorded (the CLI says it).
        self.stop_note: stopped.StopNote | None = None
        self._restart = False  # this watch starts its release over (``watch --restart``)

    async def run(self, *, duration_seconds: float, restart: bool = False) -> WatchResult:
        """Evaluate every interval for ``duration_seconds`` or until a decision is taken.

        With a real audit store the watch holds the deployment's lock (a second
        watcher gets :class:`~rollguard.errors.LockedError`) and first completes
        any action a crashed watcher left open (:mod:`rollguard.controller.recovery`).
        A progressive release a killed or stopped watch left at a step is taken up
        there, unless ``restart`` starts it over at its first step.
        Cancelled (the CLI cancels on SIGINT/SIGTERM, after :meth:`stop_by`), it
        records ``deployment_end`` with outcome ``interrupted`` (within
        ``INTERRUPT_RECORD_SECONDS``) and re-raises.
        """
        self._next_watch()
        self._restart = restart
        try:
            return await self._run(duration_seconds)
        except asyncio.CancelledError:
            await self.close(reason=self.interrupt_reason)
            raise

    async def _run(self, duration_seconds: float) -> WatchResult:
        if not isinstance(self.audit, AuditStore):
            return await self._watch(duration_seconds)
        async with self._leased():
            resume = None
            if not self._restart and (self.progress is None or self.progress.finished):
                resume = await recovery.crashed_step(
                    self.audit, self.policy, namespace=self.namespace
                )
            found = await self._recover()
            if found is not None:
                return self._recovered(found)
            return await self._watch(duration_seconds, resume=resume)

    async def operate(self, request: OperatorRequest) -> WatchResult:
        """Carry out an operator's action as its own watch: decision, intent, steps, result.

        Like :meth:`run`, under the deployment's lease and after finishing what a
        crashed watcher left (:class:`~rollguard.errors.LockedError` when another
        watcher holds the lease), so a crash mid-action is recovered the same way.
        """
        self._next_watch()
        try:
            if not isinstance(self.audit, AuditStore):
                return await self._operate(request)
            async with self._leased():
                await self._recover()  # the operator's action follows whatever was left open
                return await self._operate(request)
        except asyncio.CancelledError:
            await self.close(reason=self.interrupt_reason)
            raise

    def stop_by(self, signal: str) -> None:
        """Say the watch is about to be cancelled by ``signal`` (SIGINT, SIGTERM): it then
        stops without ending its release (:mod:`rollguard.controller.stopped`)."""
        self.stopping = signal

    async def close(self, *, reason: str) -> None:
        """Record the end of a watch stopped from outside (a signal, a pause, a reload).

        Outcome ``interrupted``, within ``INTERRUPT_RECORD_SECONDS``. A watch in the
        middle of an action is left open on purpose: recovery must see its intent
        and finish it. A watch stopped by a signal records which, and where its
        progressive release stays (:attr:`stop_note`); that release is not ended.
        """
        signal = self.stopping
        if self._open_since is None or self._acting:
            if signal is not None:
                left = stopped.Left.ACTING if self._acting else stopped.Left.NOT_BEGUN
                self.stop_note = replace(self._bare_stop(signal), left=left)
            return
        ended, since = self.clock.now(), self._open_since
        note: stopped.StopNote | None = None
        try:
            async with asyncio.timeout(INTERRUPT_RECORD_SECONDS):
                if signal is not None:
                    note = await self._where_stopped(signal)
                await self._record(
                    "deployment_end",
                    ended,
                    reason=note.reason if note is not None else reason,
                    outcome="interrupted",
                    duration=ended - since,
                    facts=note.evidence() if note is not None else None,
                )
        except TimeoutError:  # the next watch's recovery closes it
            note = note or (self._bare_stop(signal) if signal is not None else None)
            if note is not None:
                note = replace(note, left=stopped.Left.UNRECORDED)
        self.stop_note = note

    def _bare_stop(self, signal: str) -> stopped.StopNote:
        """A stop whose step was not read back from the trail."""
        return stopped.StopNote(signal, progressive=self.policy.promotion is not None)

    async def _where_stopped(self, signal: str) -> stopped.StopNote:
        """Where the release stands once this watch's last entry has landed."""
        writing = self._writing
        if writing is not None and not writing.done():
            await asyncio.wait({writing})
        return await stopped.note(
            signal, policy=self.policy, audit=self.audit, namespace=self.namespace
        )

    def reset(self) -> None:
        """Forget what the engine learned (persistence, no-data counts): a new release is a
        new canary, and data that returned after an inconclusive end starts afresh. A
        progressive release starts again from its first step, unheld."""
        self.state = EngineState()
        self.last = None
        self.progress = None
        self.held_by = None

    def hold(self, by: str) -> None:
        """Hold a progressive release at its step (the rollback triggers still act)."""
        self.held_by = by

    def unhold(self) -> None:
        """Let a held release move on again from the next interval."""
        self.held_by = None

    def _next_watch(self) -> None:
        if self._watches:
            self.watch_id = uuid.uuid4().hex
        self._watches += 1
        self._open_since, self._acting = None, False
        self.interrupt_reason = "interrupted before a verdict"
        self.stopping, self.stop_note, self._restart = None, None, False

    def _leased(self) -> contextlib.AbstractAsyncContextManager[None]:
        assert isinstance(self.audit, AuditStore)  # noqa: S101 (callers checked it)
        return recovery.deployment_lock(
            self.audit,
            lock_key(self.policy.target.deployment, self.namespace),
            owner=self.watch_id,
            lease=self.lock_lease,
        )

    async def _recover(self) -> recovery.Recovered | None:
        assert isinstance(self.audit, AuditStore)  # noqa: S101 (callers checked it)
        return await recovery.recover(
            self.audit,
            policy=self.policy,
            executor=self.executor,
            provider=self.provider,
            clock=self.clock,
            watch_id=self.watch_id,
            namespace=self.namespace,
        )

    async def _operate(self, request: OperatorRequest) -> WatchResult:
        started = self.clock.now()
        await self._record("deployment_start", started, decision=request)
        if request.action is OperatorAction.PROMOTE and self.policy.promotion is not None:
            # a progressive release is promoted through its confirm_promotion hook
            progress = self._progress()
            assert progress is not None  # noqa: S101 (the policy promotes)
            answer = await progress.confirm_promotion()
            if isinstance(answer, Stop):
                return await self._act(answer, started, self.clock.now())
            if not answer:
                why = f"{request.reason}: held by hook confirm_promotion"
                await self._record(
                    "deployment_end",
                    self.clock.now(),
                    reason=why,
                    outcome="interrupted",
                    duration=self.clock.now() - started,
                )
                raise HeldError(f"{why}; the release stays at {progress.weight}%")
        return await self._act(request, started, started)

    def _recovered(self, found: recovery.Recovered) -> WatchResult:
        now = self.clock.now()
        return WatchResult(
            outcome=_acted(found.action, ok=found.ok),
            action=found.action,
            trigger=found.trigger,
            reason=found.reason,
            severity=found.severity,
            evidence=[],
            started_at=now,
            decided_at=now,
            ended_at=now,
            evaluations=0,
            watch_id=self.watch_id,
            action_outcome=found.detail,
        )

    async def _watch(
        self, duration_seconds: float, *, resume: recovery.CrashedStep | None = None
    ) -> WatchResult:
        started = self.clock.now()
        span = "until a decision" if math.isinf(duration_seconds) else f"for {duration_seconds:g}s"
        restart = "; the release starts over at its first step" if self._restart else ""
        await self._record(
            "deployment_start", started, reason=f"watch {span}{self._fallen_back()}{restart}"
        )
        queries = required_queries(self.policy)
        warmup = self._warmup(started)
        fresh = self.progress is None or self.progress.finished
        progress = self._progress()
        if progress is not None:
            queries += [query for query in progress.queries() if query not in queries]
            stop = await self._begin(progress, started, fresh=fresh, resume=resume)
            if stop is not None:
                return await self._stopped(stop, started, started)
        tick: float | None = None  # the aligned tick slept to
        while True:
            now = self.clock.now()
            if tick is not None and abs(now - tick) < self.interval_seconds / 4:
                now = tick  # as of its tick, however late the loop woke: batches meet
            warm = now - started >= warmup - TIME_TOLERANCE_SECONDS
            if warm:
                await self.provider.collect(now=now)
                measured = await self.provider.measure(queries, now=now)
                evaluation = evaluate(
                    self.policy,
                    dict(zip(queries, measured, strict=True)),
                    baseline=self.baseline,
                    state=self.state,
                    now=now,
                )
                self.state, self.last = evaluation.state, evaluation
                decision = evaluation.decision
                stop = None
                if progress is not None and decision.verdict is Verdict.CONTINUE:
                    # fed before the evaluation is shown, so the watch shows this interval's
                    # promotion evidence (Watcher.progress.last) next to the triggers
                    calm = all(r.status is not TriggerStatus.BREACHING for r in evaluation.results)
                    counts = dict(zip(queries, measured, strict=True))
                    held = self.held_by is not None
                    stop = await progress.observe(counts, now, calm=calm, held=held)
                await self._emit(evaluation)
                if decision.verdict is Verdict.ACT:
                    return await self._act(decision, started, now)
                if decision.verdict is Verdict.INCONCLUSIVE and not self.judge_to_end:
                    return await self._finish(Outcome.INCONCLUSIVE, decision, started, now)
                if stop is not None:
                    return await self._stopped(stop, started, now)
            if now - started >= duration_seconds - TIME_TOLERANCE_SECONDS:
                return await self._ran_out(started)
            # the first evaluation comes exactly when the warm-up ends, then every interval
            next_at = now + self.interval_seconds
            if self.align_ticks:  # the nearest tick: the next gap is 0.5 to 1.5 intervals
                next_at = tick = round(next_at / self.interval_seconds) * self.interval_seconds
            if not warm:
                next_at = min(next_at, started + warmup)
                tick = next_at if self.align_ticks else None
            woke = self.clock.now() if self.align_ticks else now  # now may be the tick's
            await self.clock.sleep(min(next_at, started + duration_seconds) - woke)

    def _warmup(self, started: float) -> float:
        """Seconds to the first evaluation: the policy's warm-up, and when aligned, on to
        the next tick (at most an interval later); none for a canary already warmed up."""
        if self.warmed_up:
            return 0.0
        warmup = self.policy.analysis.warmup or 0.0
        if not self.align_ticks:
            return warmup
        every = self.interval_seconds
        return math.ceil((started + warmup) / every) * every - started

    @staticmethod
    async def _begin(
        progress: Progress, started: float, *, fresh: bool, resume: recovery.CrashedStep | None
    ) -> Stop | None:
        """A fresh release's first step, or a killed watch's release taken up where it stood;
        for a release already under way (a resumed watch) its step's clock starts again."""
        if not fresh:
            progress.carry_on(started)
            return None
        if resume is not None:
            return await progress.resume(resume.index, started, after=resume.after)
        return await progress.begin(started)

    def _progress(self) -> Progress | None:
        """The release's progress when the policy promotes step by step: the one under
        way (a resumed watch continues at its step), else a fresh one."""
        if self.policy.promotion is None:
            self.progress = None
            return None
        if self.progress is not None and not self.progress.finished:
            return self.progress

        async def record(kind: Kind, reason: str, outcome: str, output: dict[str, Any]) -> None:
            await self._record(
                kind,
                self.clock.now(),
                trigger="promotion",
                reason=reason,
                outcome=outcome,
                executor_output=output,
            )

        self.progress = Progress(
            self.policy, executor=self.executor, record=record, baseline=self.baseline
        )
        return self.progress

    async def _stopped(self, stop: Stop, started: float, now: float) -> WatchResult:
        """End a progressive release: roll back, or finish promoted or held."""
        if self.progress is not None and not stop.holds_a_step:
            self.progress.finished = True  # a step held for an operator can be resumed
        if stop.end == "rollback":
            return await self._act(stop, started, now)
        await self._record("decision", now, decision=stop)
        outcome = Outcome.PROMOTED if stop.end == "promoted" else Outcome.INCONCLUSIVE
        result = await self._finish(outcome, stop, started, now)
        verdict = self.progress.last if self.progress is not None else None
        result.action_outcome = {
            "canary_weight": stop.canary_weight,
            "promotion_evidence": list(verdict.evidence) if verdict is not None else [],
        }
        return result

    def _fallen_back(self) -> str:
        said = [
            f"; {name} is judged by its threshold rule (the sequential test cannot be fed: {why})"
            for name, why in self.fallbacks.items()
        ]
        return "".join(said)

    def _final_outcome(self) -> Outcome:
        """Healthy only when every rule was judged at least once: never silently healthy."""
        if self.last is None or not self.last.results:  # nothing measured, or nothing to judge
            return Outcome.INCONCLUSIVE
        unjudged = [r for r in self.last.results if self.state.of(r.trigger).judged == 0]
        return Outcome.INCONCLUSIVE if unjudged else Outcome.HEALTHY

    def _unjudged_reason(self) -> str:
        if self.last is not None and not self.last.results:
            return "nothing to judge: the policy has no metric trigger"
        return "some triggers were never judged (no data)"

    async def _act(self, decision: Acting, started: float, decided: float) -> WatchResult:
        await self._record("decision", decided, decision=decision)
        self._notify(decision)
        await self._record("action_intent", self.clock.now(), decision=decision, outcome="started")
        began = self.clock.now()
        set_context = getattr(self.executor, "set_context", None)
        if set_context is not None:  # executors that run user commands pass the facts on
            set_context(
                {
                    "trigger": decision.trigger or "",
                    "reason": decision.reason,
                    "severity": decision.severity.value,
                    "watch_id": self.watch_id,
                }
            )

        async def on_step(step: dict[str, Any]) -> None:
            await self._record(
                "action_step",
                self.clock.now(),
                decision=decision,
                outcome="step",
                executor_output=step,
            )
            if self.on_step is not None:
                maybe = self.on_step(step)
                if maybe is not None:
                    await maybe

        done = await actions.execute(
            decision.action,
            policy=self.policy,
            executor=self.executor,
            provider=self.provider,
            clock=self.clock,
            on_step=on_step,
            trigger=decision.trigger,
        )
        took = self.clock.now() - began
        await self._record(
            "action_result",
            self.clock.now(),
            decision=decision,
            outcome="success" if done.ok else "failure",
            duration=took,
            executor_output=done.as_dict(),
            affected_users=affected.estimate(
                decision.evidence, trigger=decision.trigger, action_seconds=took
            ),
        )
        if self.progress is not None and decision.action is not OperatorAction.PROMOTE:
            await self.progress.rolled_back()
        elif self.progress is not None and done.ok:
            await self.progress.promoted()
        result = await self._finish(_acted(decision.action, ok=done.ok), decision, started, decided)
        result.action_outcome = done.as_dict()
        return result

    async def _ran_out(self, started: float) -> WatchResult:
        """The watch's time is up: its outcome as judged. A progressive release under way
        is not ended: its ``deployment_end`` says where it stays, as a signal's does
        (:mod:`rollguard.controller.stopped`), and the next watch resumes it there."""
        note = None
        if self.progress is not None and not self.progress.finished:
            note = await self._where_stopped(recovery.RAN_OUT)
            note = note if note.at is not None else None  # no step in the trail: nothing kept
        result = await self._finish(
            self._final_outcome(),
            None,
            started,
            None,
            reason=note.reason if note is not None else "",
            facts=note.evidence() if note is not None else None,
        )
        result.left = note
        return result

    async def _finish(
        self,
        outcome: Outcome,
        decision: Acting | None,
        started: float,
        decided: float | None,
        *,
        reason: str = "",
        facts: dict[str, Any] | None = None,
    ) -> WatchResult:
        ended = self.clock.now()
        deliveries = await self._drain_notifications()
        await self._record(
            "deployment_end",
            ended,
            decision=decision,
            reason=reason,
            outcome=outcome.value,
            duration=ended - started,
            facts=facts,
        )
        evidence = (
            decision.evidence if decision else (self.last.decision.evidence if self.last else ())
        )
        return WatchResult(
            outcome=outcome,
            action=decision.action if decision else Action.CONTINUE,
            trigger=decision.trigger if decision else None,
            reason=decision.reason
            if decision
            else "all_metrics_healthy"
            if outcome is Outcome.HEALTHY
            else self._unjudged_reason(),
            severity=decision.severity.value if decision else "info",
            evidence=[item.as_dict() for item in evidence],
            started_at=started,
            decided_at=decided,
            ended_at=ended,
            evaluations=self.state.evaluations,
            watch_id=self.watch_id,
            deliveries=deliveries,
        )

    async def _emit(self, evaluation: Evaluation) -> None:
        for result in evaluation.results:
            if result.status is TriggerStatus.DRY_RUN:
                await self._record(
                    "dry_run",
                    evaluation.at,
                    trigger=result.trigger,
                    reason=result.evidence.reason,
                    outcome="not_acted",
                )
        if self.on_evaluation is not None:
            maybe = self.on_evaluation(evaluation)
            if maybe is not None:
                await maybe

    def _notify(self, decision: Acting) -> None:
        route = decision.notification
        if route is None:
            return
        note = Notification(
            route=route,
            deployment=self.policy.target.deployment,
            title=f"rollguard: {decision.action.value} of {self.policy.target.deployment}",
            text=decision.reason,
            severity=decision.severity.value,
            fields={"trigger": decision.trigger, "action": decision.action.value},
        )

        async def send() -> list[dict[str, Any]]:
            deliveries = await notify_within(self.notifier, note, seconds=NOTIFY_DEADLINE_SECONDS)
            return [{"channel": d.channel, "ok": d.ok, "detail": d.detail} for d in deliveries]

        task = asyncio.get_running_loop().create_task(send())
        self._pending.add(task)

    async def _drain_notifications(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for task in list(self._pending):
            out.extend(await task)  # send() turns every failure into a delivery
        self._pending.clear()
        for delivery in out:
            if not delivery["ok"]:
                await self._record(
                    "notification",
                    self.clock.now(),
                    outcome="failure",
                    reason=f"channel {delivery['channel']}: {delivery['detail']}",
                )
        return out

    async def _record(
        self,
        kind: Kind,
        at: float,
        *,
        decision: Acting | None = None,
        trigger: str | None = None,
        reason: str = "",
        outcome: str = "",
        duration: float = 0.0,
        executor_output: dict[str, Any] | None = None,
        affected_users: int = 0,
        facts: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry (``facts`` join its evidence); returns once it is durable (off
        the event loop).

        A write once handed over lands even if this watch is cancelled meanwhile,
        so what the watch believes is open (a watch, an action) changes before the
        wait, and every write waits for this watch's previous one: entries land in
        the order they were made, a cancelled caller's included.
        """
        values = self._entry_metrics()
        evidence: dict[str, object] = {}
        if decision is not None:
            evidence["evidence"] = [e.as_dict() for e in decision.evidence]
        if isinstance(decision, OperatorRequest):
            evidence["operator"] = decision.facts()
        if kind == "deployment_start" and self.namespace:
            # Also in evidence, where rollguards from before the namespace field look.
            evidence["namespace"] = self.namespace
        if kind == "deployment_start" and self._restart:
            evidence[recovery.RESTART] = True  # the steps recorded before are not resumed
        evidence.update(facts or {})
        record = AuditRecord(
            kind=kind,
            deployment=self.policy.target.deployment,
            timestamp=_iso(at),
            trigger=decision.trigger if decision else trigger,
            reason=decision.reason if decision else reason,
            severity=decision.severity.value if decision else "info",
            action=decision.action.value if decision else "continue",
            metrics=values,
            outcome=outcome,
            duration_seconds=duration,
            affected_users=affected_users,
            policy_digest=self.policy.digest(),
            evidence=evidence,
            executor_output=executor_output or {},
            watch_id=self.watch_id,
            namespace=self.namespace or "",
        )
        if kind == "deployment_start":
            self._open_since = at
        elif kind == "deployment_end":
            self._open_since = None
        elif kind in ("action_intent", "action_result"):
            self._acting = kind == "action_intent"
        previous = self._writing
        if previous is not None and not previous.done():
            await asyncio.wait({previous})  # an earlier entry whose caller was cancelled
        self._writing = asyncio.ensure_future(audit_write.append(self.audit, record))
        await asyncio.shield(self._writing)

    def _entry_metrics(self) -> dict[str, float | None]:
        """The audit entry's metrics (errorRate, latency, memoryUsage) from the last evaluation."""
        found: dict[str, float | None] = {"errorRate": None, "latency": None, "memoryUsage": None}
        if self.last is None:
            return found
        names = {
            Signal.ERROR_RATE_PERCENT.value: "errorRate",
            Signal.LATENCY_P95_MS.value: "latency",
            Signal.MEMORY_MB.value: "memoryUsage",
        }
        for result in self.last.results:
            key = names.get(result.evidence.signal)
            if key is not None and result.evidence.value is not None:
                found[key] = result.evidence.value
        return found


def _acted(action: ActionKind, *, ok: bool) -> Outcome:
    """How a watch that carried out ``action`` ends."""
    if not ok:
        return Outcome.FAILED
    if action is Action.DEPLOYMENT_BLOCK:
        return Outcome.BLOCKED
    if action is OperatorAction.PROMOTE:
        return Outcome.PROMOTED
    return Outcome.ROLLED_BACK


def _iso(at: float) -> str:
    return rfc3339(at)
