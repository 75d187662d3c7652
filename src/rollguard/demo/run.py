"""``rollguard demo``: the whole loop on one machine, with real servers and real traffic.

Stable v1 and canary v2 of the demo service run as child processes behind the
local router (20% canary); the load generator plays users at ~50 requests a
second; a :class:`~rollguard.controller.Watcher` watches with the example
policy's triggers (windows scaled, see :mod:`rollguard.demo.scenarios`) and acts
through the ``local`` executor. Once every trigger has judged the canary
healthy (the warm-up), the scenario's fault is injected into the canary (in
a progressive scenario, once the release has also taken its second step, so the
fault starts while the canary is being promoted); the demo then reports when it
was detected, which trigger fired on what evidence, when traffic was fully back
on stable, and the error rate users saw before, during and after. Every process
it started is stopped on the way out, whatever the way out is (Ctrl-C included).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from rollguard.audit.base import AuditRecord, AuditSink, MemoryAuditSink
from rollguard.controller import SystemClock, Watcher, WatchResult, audit_write
from rollguard.controller.assemble import Overrides, assemble
from rollguard.demo import real_stack, router, service
from rollguard.demo.loadgen import LoadGenerator
from rollguard.demo.report import DemoResult, users_view
from rollguard.demo.scenarios import (
    FULL_SCALE_WATCH_SECONDS,
    Scenario,
    demo_policy,
    on_stack,
    scaled,
)
from rollguard.demo.servers import DemoError, ProcessGroup
from rollguard.engine.decision import TriggerStatus
from rollguard.engine.evaluate import Evaluation
from rollguard.executors.factory import make_executor
from rollguard.executors.recording import RecordingExecutor
from rollguard.notifiers.base import Delivery, Notification
from rollguard.policy.model import Policy


@dataclass(frozen=True)
class DemoSettings:
    """Knobs of a demo run; the defaults are what ``rollguard demo`` uses."""

    time_scale: float = 30.0
    rate_per_second: float = 50.0
    canary_percent: int = 20
    warmup_timeout_seconds: float = 60.0
    fault_watch_seconds: float = 90.0  # give up on detection after this long
    after_seconds: float = 2.0  # load kept on after recovery, to measure "after"
    stack: Literal["embedded", "real"] = "embedded"  # real: HAProxy and Prometheus


@dataclass(frozen=True)
class DemoEvent:
    """Something a person watching the demo wants to see, as it happens."""

    kind: str  # started, scaling, warm, fault, evaluation, notified, action, decided, ...
    at: float
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    evaluation: Evaluation | None = None


EventHook = Callable[[DemoEvent], None]


class _StepsShown:
    """The audit sink the watch writes to, showing each promotion step as an event."""

    def __init__(self, inner: AuditSink, emit: Callable[..., None]) -> None:
        self._inner = inner
        self._emit = emit
        self.steps: list[dict[str, Any]] = []

    def append(self, record: AuditRecord) -> int:
        return self._inner.append(record)

    async def append_async(self, record: AuditRecord) -> int:
        written = await audit_write.append(self._inner, record)
        if record.kind == "promotion_step" and record.outcome == "success":
            output = record.executor_output
            evidence = output.get("evidence")
            step = {
                "at": time.time(),
                "step": output["step"],
                "of": output["of"],
                "canary_weight": output["canary_weight"],
                "reason": record.reason,
                "evidence": [
                    {key: item[key] for key in ("test", "e_value", "threshold", "intervals")}
                    for item in (evidence if isinstance(evidence, list) else [])
                ],
            }
            self.steps.append(step)
            self._emit("step", f"step {step['step']}/{step['of']}: {record.reason}", **step)
        return written


class _EventNotifier:
    """Notifications become demo events (the log channel, shown in the demo's own output)."""

    def __init__(self, emit: Callable[..., None]) -> None:
        self._emit = emit

    async def notify(self, notification: Notification) -> list[Delivery]:
        self._emit("notified", f"[{notification.route}] {notification.title}: {notification.text}")
        return [Delivery(channel="log", ok=True)]


async def run_demo(
    scenario: Scenario,
    *,
    settings: DemoSettings | None = None,
    on_event: EventHook | None = None,
    audit: AuditSink | None = None,
) -> DemoResult:
    """Run one scenario end to end and return what happened.

    ``audit`` receives the watch's entries (``rollguard demo`` passes the store
    it writes, so ``audit list`` and ``report`` show the demo); memory by default.
    """
    settings = settings or DemoSettings()
    scenario = on_stack(scenario, settings.stack)
    began = time.time()

    def emit(kind: str, message: str, evaluation: Evaluation | None = None, **data: Any) -> None:
        if on_event is not None:
            on_event(DemoEvent(kind, time.time(), message, data, evaluation))

    started = _Started()
    try:
        return await _run(
            scenario, settings, emit, started, began, audit=audit or MemoryAuditSink()
        )
    finally:
        started.stop()


@dataclass
class _Started:
    """Everything the demo started, stopped together on the way out."""

    processes: ProcessGroup = field(default_factory=ProcessGroup)
    stacks: list[real_stack.RealStack] = field(default_factory=list)

    def stop(self) -> None:
        self.processes.stop()
        for stack in self.stacks:
            stack.stop()


async def _start_services(started: _Started) -> tuple[str, str]:
    """Stable and canary side by side, each in ``started`` from the moment it is spawned.

    Cancelling (Ctrl-C) or a failure cannot stop the starting threads, but
    ``started.stop()`` ends every child they spawned and makes them give up.
    """
    stable, canary = await asyncio.gather(
        asyncio.to_thread(service.start, "v1", role="stable", group=started.processes),
        asyncio.to_thread(service.start, "v2", role="canary", group=started.processes),
    )
    return stable.url, canary.url


async def _run(
    scenario: Scenario,
    settings: DemoSettings,
    emit: Callable[..., None],
    started: _Started,
    began: float,
    *,
    audit: AuditSink,
) -> DemoResult:
    stable_url, canary_url = await _start_services(started)
    policy, front_url = await _traffic_path(
        settings, scenario, stable_url, canary_url, started, emit
    )
    executor = RecordingExecutor(make_executor(policy), on_call=lambda m: emit("action", m))
    shown = _StepsShown(audit, emit)
    warm = asyncio.Event()
    warm_at: list[float] = []

    def on_evaluation(evaluation: Evaluation) -> None:
        emit("evaluation", evaluation.decision.reason, evaluation=evaluation)
        healthy = all(result.status is TriggerStatus.OK for result in evaluation.results)
        if healthy and not warm.is_set():
            warm.set()
            warm_at.append(time.time())
            emit("warm", "every trigger has judged the canary healthy: warm-up over")

    watcher = assemble(
        policy,
        Overrides(
            base_dir=Path.cwd(),
            executor=executor,
            notifier=_EventNotifier(emit),
            audit=shown,
            clock=SystemClock(),
            on_evaluation=on_evaluation,
        ),
    )
    load = LoadGenerator(
        f"{front_url}/api/orders",
        rate_per_second=settings.rate_per_second,
        max_seconds=settings.warmup_timeout_seconds + settings.fault_watch_seconds + 60,
    )
    duration = (
        scaled(FULL_SCALE_WATCH_SECONDS, settings.time_scale)
        if scenario.fault is None and not scenario.progressive
        else settings.warmup_timeout_seconds + settings.fault_watch_seconds
    )
    load_task = asyncio.create_task(load.run())
    watch_task = asyncio.create_task(watcher.run(duration_seconds=duration))
    emit("watching", f"watching for up to {duration:g}s", duration_seconds=duration)
    try:
        fault_at = None
        if scenario.fault is not None:
            await _warm_up(warm, watch_task, watcher, settings.warmup_timeout_seconds)
            if scenario.progressive:
                await _mid_promotion(watch_task, watcher, settings.warmup_timeout_seconds)
            fault_at = await _inject(scenario.fault, canary_url)
            emit("fault", f"fault injected into the canary: {scenario.description}")
        result = await watch_task
        if result.decided_at is not None:
            emit("decided", f"{result.action.value} by {result.trigger}: {result.reason}")
        if executor.recovered_at is not None:
            await asyncio.sleep(settings.after_seconds)  # users' view after recovery
        load.stop()
        report = await load_task
        final = await executor.status()
        await _push_rollback_status(canary_url, rolled_back=final.rolled_back)
    finally:
        load.stop()
        for task in (watch_task, load_task):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await watcher.provider.aclose()
        await executor.aclose()
    start_of_fault = fault_at or (warm_at[0] if warm_at else began)
    return DemoResult(
        scenario=scenario,
        watch=result,
        began_at=began,
        warm_at=warm_at[0] if warm_at else None,
        fault_at=fault_at,
        recovered_at=executor.recovered_at,
        users=users_view(report, fault_at=start_of_fault, recovered_at=executor.recovered_at),
        canary_weight=final.canary_weight,
        canary_state=final.canary_state,
        time_scale=settings.time_scale,
        promotion_steps=tuple(shown.steps),
    )


async def _traffic_path(  # noqa: PLR0917 (private; one call site)
    settings: DemoSettings,
    scenario: Scenario,
    stable_url: str,
    canary_url: str,
    started: _Started,
    emit: Callable[..., None],
) -> tuple[Policy, str]:
    """Start what carries and measures the traffic; the policy pointing at it, and its URL.

    A progressive release starts with no traffic on the canary: its first step gives it some.
    """
    percent = 0 if scenario.progressive else settings.canary_percent
    split = f"{percent}% to the canary" + (", then stepped" if scenario.progressive else "")
    if settings.stack == "real":
        stack = real_stack.prepare(
            stable_url=stable_url, canary_url=canary_url, canary_percent=percent
        )
        # Kept before launching: cancelling the demo cannot stop the launching thread,
        # but started.stop() stops whatever it has started and makes it give up.
        started.stacks.append(stack)
        await asyncio.to_thread(stack.launch)
        sections = stack.policy_sections()
        emit(
            "started",
            f"stable v1 {stable_url}, canary v2 {canary_url}, HAProxy {stack.url} ({split}), "
            f"Prometheus {stack.prometheus_url}",
            stable=stable_url,
            canary=canary_url,
            router=stack.url,
            prometheus=stack.prometheus_url,
        )
        policy = demo_policy(
            stable=stable_url,
            canary=canary_url,
            router=stack.url,
            time_scale=settings.time_scale,
            metrics=sections["metrics"],
            executor=sections["executor"],
            progressive=scenario.progressive,
        )
        return policy, stack.url
    front = await asyncio.to_thread(
        router.start,
        stable_url,
        canary_url,
        canary_percent=percent,
        group=started.processes,
    )
    emit(
        "started",
        f"stable v1 {stable_url}, canary v2 {canary_url}, router {front.url} ({split})",
        stable=stable_url,
        canary=canary_url,
        router=front.url,
    )
    policy = demo_policy(
        stable=stable_url,
        canary=canary_url,
        router=front.url,
        time_scale=settings.time_scale,
        progressive=scenario.progressive,
    )
    return policy, front.url


async def _warm_up(
    warm: asyncio.Event,
    watch: asyncio.Task[WatchResult],
    watcher: Watcher,
    timeout: float,  # noqa: ASYNC109 the warm-up must not cancel the watch task it races
) -> None:
    """Wait until every trigger has judged the canary healthy once (bounded, no sleeping)."""
    waiting = asyncio.create_task(warm.wait())
    done, _ = await asyncio.wait({waiting, watch}, timeout=timeout, return_when="FIRST_COMPLETED")
    waiting.cancel()
    if waiting in done:
        return
    last = watcher.last
    pending = (
        "; ".join(
            f"{r.trigger}: {r.status.value} ({r.evidence.reason})"
            for r in last.results
            if r.status is not TriggerStatus.OK
        )
        if last
        else "no evaluation yet"
    )
    if watch in done:
        raise DemoError(f"the watch ended during warm-up ({watch.result().reason}): {pending}")
    raise DemoError(f"warm-up did not finish within {timeout:g}s: {pending}")


async def _mid_promotion(
    watch: asyncio.Task[WatchResult],
    watcher: Watcher,
    timeout: float,  # noqa: ASYNC109 the wait must not cancel the watch task it races
) -> None:
    """Wait until the release has moved past its first step (bounded): the fault then
    starts while the canary is being promoted."""
    deadline = time.monotonic() + timeout
    while watcher.progress is None or watcher.progress.index < 1:
        if watch.done():
            raise DemoError(f"the watch ended before the second step ({watch.result().reason})")
        left = deadline - time.monotonic()
        if left <= 0:
            last = watcher.progress.last if watcher.progress is not None else None
            why = last.reason if last is not None else "no evidence yet"
            raise DemoError(f"the release did not take its second step within {timeout:g}s: {why}")
        await asyncio.wait({watch}, timeout=min(left, 0.1))


async def _inject(fault: str, canary_url: str) -> float:
    """Break the canary; the fault starts when the request is sent."""
    fault_at = time.time()
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{canary_url}/simulate/{fault}")
    if answer.status_code != 200:
        raise DemoError(f"the canary refused the fault {fault}: {answer.text}")
    return fault_at


async def _push_rollback_status(canary_url: str, *, rolled_back: bool) -> None:
    """Tell the canary what happened, so its ``/rollback/status`` says so too."""
    async with httpx.AsyncClient(timeout=5) as client:
        with contextlib.suppress(httpx.HTTPError):
            await client.put(f"{canary_url}/rollback/status", json={"rolled_back": rolled_back})
