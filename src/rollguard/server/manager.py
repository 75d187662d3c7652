"""The controller manager: one asyncio task per deployment, reloaded when files change.

``serve`` points it at a folder of policy files. Each good policy gets a
:class:`~rollguard.controller.Watcher` in its own task; a bad one is kept as
located problems (file:line) for the API and the log while the others keep
running. The folder is polled for changed modification times (portable, no
inotify needed); a changed file restarts its deployment's watch, a removed one
stops it. A deployment in the middle of an action is never interrupted: its
reload waits for the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollguard.audit.base import AuditSink
from rollguard.controller import Outcome, Watcher, WatchResult, audit_write
from rollguard.controller.actions import ActionKind, OperatorAction
from rollguard.controller.recovery import namespace_of
from rollguard.controller.watch import EvaluationHook, OperatorRequest, StepHook, asker
from rollguard.engine.evaluate import Evaluation
from rollguard.errors import HeldError, LockedError, RollguardError
from rollguard.generate.source import PolicySource
from rollguard.policy.actions import Action
from rollguard.server import folder, rearm, trail
from rollguard.server.history import History
from rollguard.server.state import DeploymentState, PolicyFailure, Status, TimelineEntry
from rollguard.server.telemetry import Telemetry
from rollguard.server.wiring import TimedProvider, WatcherFactory

logger = logging.getLogger("rollguard.serve")

#: Watch until something is decided.
FOREVER_SECONDS = math.inf
LOCK_RETRY_SECONDS = 15.0  # a quarter of a lease (controller.recovery.LEASE_SECONDS)


#: The statuses each command applies in.
_ALLOWED = {
    "pause": {Status.WATCHING, Status.STARTING},
    "resume": {Status.PAUSED},
    "abort": {Status.WATCHING, Status.STARTING, Status.PAUSED, Status.INCONCLUSIVE},
    "promote": {Status.WATCHING, Status.PAUSED, Status.HEALTHY, Status.INCONCLUSIVE},
    "retry": {
        Status.ROLLED_BACK,
        Status.ABORTED,
        Status.FAILED,
        Status.BLOCKED,
        Status.INCONCLUSIVE,
        Status.ERROR,
    },
}
#: The commands that act on the deployment, and their action.
_ACTING: dict[str, ActionKind] = {
    "abort": Action.IMMEDIATE_ROLLBACK,
    "promote": OperatorAction.PROMOTE,
}


def _held_for_operator(result: WatchResult) -> bool:
    """A progressive release left at a step's share when the step reached its maximum."""
    done = result.action_outcome or {}
    return (
        result.outcome is Outcome.INCONCLUSIVE
        and result.trigger == "promotion"
        and done.get("canary_weight") is not None
    )


class UnknownDeploymentError(RollguardError):
    """No watched deployment has that name (HTTP 404)."""


class CommandRefusedError(RollguardError):
    """The command does not apply to the deployment's current status (HTTP 409)."""


@dataclass
class Runner:
    """One deployment: its policy, its watcher and the task running it."""

    source: PolicySource
    file_key: tuple[int, int]
    state: DeploymentState
    watcher: Watcher | None = None
    task: asyncio.Task[None] | None = None


class ControllerManager:
    """Watches every deployment whose policy is in ``policies_dir``."""

    def __init__(
        self,
        policies_dir: Path,
        *,
        factory: WatcherFactory,
        telemetry: Telemetry,
        audit: AuditSink,
        reload_seconds: float = 1.0,
        watch_seconds: float | None = None,
        wall_clock: Callable[[], float] = time.time,
        freeze_gc_after_load: bool = False,
        lock_retry_seconds: float = LOCK_RETRY_SECONDS,
    ) -> None:
        self.policies_dir = policies_dir
        self.factory = factory
        self.telemetry = telemetry
        self.audit = audit
        self.reload_seconds = reload_seconds
        self.watch_seconds = watch_seconds or FOREVER_SECONDS
        self.wall_clock = wall_clock
        self.freeze_gc_after_load = freeze_gc_after_load
        self.lock_retry_seconds = lock_retry_seconds
        self.runners: dict[str, Runner] = {}
        self.failures: dict[str, list[PolicyFailure]] = {}
        self.ready = False
        self._files: dict[Path, tuple[int, int]] = {}
        self._lock = asyncio.Lock()  # commands and changes to the runners, one at a time
        self._scanning = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load the folder once, start every watcher, then poll for changes."""
        await self.scan()
        if self.freeze_gc_after_load:
            # Policies and recordings loaded at start live as long as the process: keeping
            # them out of the collector's full passes avoids second-long pauses at 1,000.
            gc.collect()
            gc.freeze()
        self.ready = True
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="policy-poll")

    async def stop(self) -> None:
        """Stop polling and every watcher; close providers and executors."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        async with self._lock:
            for name in list(self.runners):
                await self._drop(name)
        self.ready = False

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            try:
                await self.scan()
            except Exception:  # a scan must never kill the poller
                logger.exception("scanning %s failed", self.policies_dir)

    # --- reading the folder ------------------------------------------------------------

    async def scan(self) -> None:
        """Bring the running watchers in line with the folder's files.

        Changed files are read before the manager's lock is taken, so a file that is
        slow to parse holds up neither operator commands nor the other deployments'
        watches; one scan runs at a time.
        """
        async with self._scanning:
            listing = folder.listing(self.policies_dir, self._files)
            changed = [p for p, key in listing.items() if self._files.get(p) != key]
            # Read the new files before stopping the old watches, so a deployment does
            # not vanish from the API (404) for as long as its file takes to parse.
            loaded = {path: await folder.read(path) for path in changed if not self._acting(path)}
            async with self._lock:
                for path in [p for p in self._files if p not in listing]:
                    if await self._drop_file(path):  # acting: drop it on a later poll
                        self._forget_file(path)
                for path, source in loaded.items():
                    try:
                        await self._replace(path, listing[path], source)
                    except Exception as exc:  # one file's trouble never stops the others
                        logger.exception("%s: could not be loaded", path)
                        self._files[path] = listing[path]  # tried again once it changes
                        self._fail(path, [folder.unreadable(path, exc)])

    async def _replace(
        self, path: Path, key: tuple[int, int], source: PolicySource | list[PolicyFailure]
    ) -> None:
        if not await self._drop_file(path):
            return  # acting meanwhile: reload on a later poll
        self._forget_file(path)
        self._files[path] = key
        await self._load(path, key, source)

    def _forget_file(self, path: Path) -> None:
        self._files.pop(path, None)
        if self.failures.pop(str(path), None) is not None:
            self.telemetry.policy_failed(str(path), failed=False)

    def _acting(self, path: Path) -> bool:
        return any(
            runner.source.path == path and runner.state.status is Status.ACTING
            for runner in self.runners.values()
        )

    async def _drop_file(self, path: Path) -> bool:
        """Stop the deployment a file defines; False when it is acting and must wait."""
        for name, runner in list(self.runners.items()):
            if runner.source.path == path:
                if runner.state.status is Status.ACTING:
                    return False
                await self._drop(name, why=f"stopped: {path} changed or was removed")
        return True

    def _fail(self, path: Path, failures: list[PolicyFailure]) -> None:
        self.failures[str(path)] = failures
        self.telemetry.policy_failed(str(path), failed=True)
        for failure in failures:
            logger.error(
                "policy not loaded: %s:%d:%d: %s: %s",
                failure.file,
                failure.line,
                failure.column,
                failure.field,
                failure.message,
            )

    async def _load(
        self, path: Path, key: tuple[int, int], source: PolicySource | list[PolicyFailure]
    ) -> None:
        if isinstance(source, list):
            self._fail(path, source)
            return
        name = source.policy.target.deployment
        other = self.runners.get(name)
        if other is not None:
            message = f"deployment {name!r} is already watched by {other.source.path}"
            self._fail(path, [PolicyFailure(str(path), 1, 1, "target.deployment", message)])
            return
        state = DeploymentState(
            name=name,
            policy_name=source.policy.name,
            policy_file=str(path),
            policy_digest=source.policy.digest(),
            history=History(interval_seconds=source.policy.analysis.interval),
            namespace=namespace_of(source.policy) or "",
        )
        runner = Runner(source=source, file_key=key, state=state)
        self.runners[name] = runner
        await self._launch(runner, resume=False)

    # --- running one deployment --------------------------------------------------------

    async def _launch(self, runner: Runner, *, resume: bool) -> None:
        """Start a watch; ``resume`` runs the runner's own watcher again (its engine state,
        persistence and no-data counts, kept; its provider and executor not rebuilt)."""
        watcher = runner.watcher if resume else None
        if watcher is None:
            try:
                watcher = await asyncio.to_thread(self.factory, runner.source, self._hook(runner))
            except RollguardError as exc:
                runner.state.error = str(exc)
                runner.state.set_status(Status.ERROR, self.wall_clock(), f"cannot watch: {exc}")
                logger.error("%s: cannot watch: %s", runner.source.path, exc)
                return
        runner.watcher = watcher
        watcher.on_step = self._step_hook(runner, watcher)
        now = self.wall_clock()
        runner.state.started_at = runner.state.started_at or now
        if watcher.held_by is not None:  # a held release whose watch ran again (a promote held)
            runner.state.set_status(Status.PAUSED, now, f"held by {watcher.held_by}")
        else:
            runner.state.set_status(Status.WATCHING, now, "watching")
        runner.task = asyncio.get_running_loop().create_task(
            self._run(runner, watcher), name=f"watch:{runner.state.name}"
        )

    def _hook(self, runner: Runner) -> EvaluationHook:
        async def on_evaluation(evaluation: Evaluation) -> None:
            watcher = runner.watcher
            seconds = None
            if watcher is not None and isinstance(watcher.provider, TimedProvider):
                seconds = watcher.provider.elapsed()
            if runner.state.status is Status.STARTING:  # it was waiting for the lease
                runner.state.set_status(Status.WATCHING, self.wall_clock(), "watching")
            runner.state.observe(evaluation)
            self.telemetry.observe(runner.state.name, evaluation, seconds)
            if watcher is not None:
                self._show_progress(runner, watcher)
                await self._refresh_weight(runner, watcher)

        return on_evaluation

    @staticmethod
    def _show_progress(runner: Runner, watcher: Watcher) -> None:
        """A progressive release's step and evidence, for the API and the page."""
        if watcher.progress is not None:
            runner.state.promotion = watcher.progress.snapshot(held_by=watcher.held_by)

    def _step_hook(self, runner: Runner, watcher: Watcher) -> StepHook:
        async def on_step(step: dict[str, Any]) -> None:
            # After each step, not only when the action ends: a gradual rollback's
            # 15 %, 10 %, 5 % are each a traffic step on the page's charts.
            await self._refresh_weight(runner, watcher)

        return on_step

    async def _refresh_weight(self, runner: Runner, watcher: Watcher) -> None:
        try:
            status = await watcher.executor.status()
        except Exception as exc:  # a status read failing must not stop the watch
            runner.state.canary_state = f"unknown ({type(exc).__name__})"
            return
        runner.state.read_weight(
            status.canary_weight, status.canary_state, status.assumed, self.wall_clock()
        )
        self.telemetry.weight(runner.state.name, status.canary_weight)

    async def _run(self, runner: Runner, watcher: Watcher) -> None:
        """Watch, and when a watch ends, wait for what starts the next one (a controller
        keeps going): data returning after an inconclusive end, or the next release."""
        state = runner.state
        while True:
            try:
                result = await self._run_when_free(runner, watcher)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.error = f"{type(exc).__name__}: {exc}"
                state.set_status(Status.ERROR, self.wall_clock(), f"watch stopped: {state.error}")
                logger.exception("%s: the watch stopped", state.name)
                return
            # Weights first: a client that sees the final status also sees the final split.
            self._show_progress(runner, watcher)
            await self._refresh_weight(runner, watcher)
            self._finished(runner, result)
            if not await self._next_watch(runner, watcher, result):
                return

    async def _next_watch(self, runner: Runner, watcher: Watcher, result: WatchResult) -> bool:
        """Wait for what starts the deployment's next watch; False when only the API can."""
        state = runner.state
        if _held_for_operator(result):  # on_max_duration: hold; resume, promote or abort
            watcher.hold("max_step_duration")
            why = f"held for an operator: {result.reason}; resume, promote or abort"
            state.set_status(Status.PAUSED, self.wall_clock(), why)
            self._show_progress(runner, watcher)
            return False
        if result.outcome is Outcome.INCONCLUSIVE:
            state.note(TimelineEntry(self.wall_clock(), "status", "waiting for data to return"))
            await rearm.data_returned(watcher)
            watcher.reset()
            state.set_status(Status.WATCHING, self.wall_clock(), "data returned: watching again")
            return True
        since = await rearm.revision(watcher)
        waiting = "waiting for the next release (POST .../releases"
        if since is None:
            state.note(TimelineEntry(self.wall_clock(), "status", waiting + ")"))
            return False
        state.note(
            TimelineEntry(self.wall_clock(), "status", f"{waiting}, or a revision after {since})")
        )
        revision = await rearm.new_revision(watcher, since)
        await self._record_release(
            runner, version=f"revision {revision}", requested_by="executor", source="revision"
        )
        watcher.reset()
        state.set_status(Status.WATCHING, self.wall_clock(), f"new release: revision {revision}")
        return True

    async def _run_when_free(self, runner: Runner, watcher: Watcher) -> WatchResult:
        """Run the watch once the deployment's lease is free.

        A lease held elsewhere is another controller, or a killed ``serve`` whose lease
        has not run out: wait for it, then finish what it left (the watch's recovery).
        The lease is the watch's first step, so nothing was recorded before a retry.
        """
        while True:
            try:
                return await watcher.run(duration_seconds=self.watch_seconds)
            except LockedError as exc:
                runner.state.set_status(
                    Status.STARTING,
                    self.wall_clock(),
                    f"waiting for the deployment's lock ({exc}); "
                    f"trying again every {self.lock_retry_seconds:g} s",
                )
                await asyncio.sleep(self.lock_retry_seconds)

    def _finished(self, runner: Runner, result: WatchResult) -> None:
        state = runner.state
        status = state.ended(result, self.wall_clock())
        if status is Status.ABORTED:
            self.telemetry.rolled_back(state.name, "abort", "operator")
        elif status is Status.ROLLED_BACK:
            self.telemetry.rolled_back(state.name, result.action.value, result.trigger)

    async def _drop(self, name: str, *, why: str = "") -> None:
        """Stop a deployment's watch; its ``deployment_end`` says ``why`` when given."""
        # Listed until it is gone: a reload then swaps runners without a 404 in between.
        runner = self.runners[name]
        if runner.watcher is not None and why:
            runner.watcher.interrupt_reason = why
        await self._halt(runner)
        if runner.watcher is not None:
            with contextlib.suppress(Exception):
                await runner.watcher.provider.aclose()
            with contextlib.suppress(Exception):
                await runner.watcher.executor.aclose()
        del self.runners[name]
        self.telemetry.forget(name)

    @staticmethod
    async def _halt(runner: Runner) -> None:
        task, runner.task = runner.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- operator commands ---------------------------------------------------------------

    def get(self, name: str) -> Runner:
        """The runner for a deployment, or :class:`UnknownDeploymentError`."""
        runner = self.runners.get(name)
        if runner is None:
            raise UnknownDeploymentError(f"no watched deployment named {name!r}")
        return runner

    async def command(
        self,
        name: str,
        command: str,
        *,
        reason: str = "",
        requested_by: str = "operator",
        on_behalf_of: str = "",
    ) -> DeploymentState:
        """Run ``abort``, ``pause``, ``resume``, ``promote`` or ``retry`` on a deployment.

        Every command is audited (kind ``command``) with who asked (the token's name,
        and whom the client named) and why, refused ones too. Abort and promote run
        as the deployment's task through the watcher's action path
        (:meth:`Watcher.operate`), so a crash mid-way is recovered like an engine's
        rollback; the caller waits for the action but never cancels it. On a
        progressive release (``promotion:``) pause holds the step while the watch
        goes on, so the rollback triggers still act.
        """
        who = asker(requested_by, on_behalf_of)
        async with self._lock:
            runner = self.get(name)
            status = runner.state.status
            allowed = _ALLOWED[command]
            refused = ""
            if status not in allowed:
                refused = (
                    f"cannot {command} {name!r} while it is {status.value}; "
                    f"{command} applies when it is {', '.join(sorted(s.value for s in allowed))}"
                )
            elif command in _ACTING and runner.watcher is None:
                refused = f"{name!r} has no executor (it never started)"
            await self._audit_command(
                runner, command, reason, requested_by, on_behalf_of, refused=refused
            )
            if refused:
                raise CommandRefusedError(refused)
            at = self.wall_clock()
            note = f" ({reason})" if reason else ""
            runner.state.note(TimelineEntry(at, "command", f"{who}: {command}{note}"))
            if await self._gate(runner, command, f"{who}{note}"):
                return runner.state
            if runner.watcher is not None:  # the stopped watch's end says who stopped it
                runner.watcher.interrupt_reason = f"{command} by {who}{note}"
            await self._halt(runner)
            if command == "pause":
                runner.state.set_status(Status.PAUSED, at, f"paused by {who}{note}")
                return runner.state
            assert runner.watcher is not None  # noqa: S101 (checked above)
            request = OperatorRequest(
                action=_ACTING[command],
                command=command,
                requested_by=requested_by,
                note=reason,
                on_behalf_of=on_behalf_of,
            )
            runner.state.set_status(Status.ACTING, at, f"acting: {command} by {requested_by}")
            acted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            runner.task = asyncio.get_running_loop().create_task(
                self._operate(runner, runner.watcher, request, acted), name=f"{command}:{name}"
            )
        await asyncio.shield(acted)  # a client that goes away does not stop the action
        return runner.state

    async def _gate(self, runner: Runner, command: str, who: str) -> bool:
        """Resume, retry, and a progressive release's pause: done here (True), or not ours.

        A held release's watch runs on, so resuming it only lets it move on; any other
        resume runs the watcher again from its kept state. A retry forgets the last
        release's watch (engine state, steps) and starts it over from the first step.
        """
        watcher, at = runner.watcher, self.wall_clock()
        running = runner.task is not None and not runner.task.done()
        progressive = runner.source.policy.promotion is not None
        if command == "pause" and progressive and watcher is not None and running:
            watcher.hold(who)
            weight = watcher.progress.weight if watcher.progress is not None else None
            at_step = f" at {weight}%" if weight is not None else ""
            message = f"paused by {who}: held{at_step}; rollback triggers still act"
            runner.state.set_status(Status.PAUSED, at, message)
            self._show_progress(runner, watcher)
            return True
        if command == "resume":
            if watcher is not None and watcher.held_by is not None and running:
                watcher.unhold()
                runner.state.set_status(Status.WATCHING, at, f"resumed by {who}: steps go on")
                self._show_progress(runner, watcher)
            else:
                if watcher is not None:  # a release held at its maximum moves on again
                    watcher.unhold()
                await self._launch(runner, resume=True)
            return True
        if command == "retry":
            if watcher is not None:
                watcher.interrupt_reason = f"retry by {who}"
            await self._halt(runner)
            if watcher is not None:
                watcher.reset()
            runner.state.promotion = None
            await self._launch(runner, resume=True)
            return True
        return False

    async def _operate(
        self,
        runner: Runner,
        watcher: Watcher,
        request: OperatorRequest,
        acted: asyncio.Future[None],
    ) -> None:
        """The action, then (as after any watch) wait for the next release.

        ``acted`` is resolved once the action's outcome is known (the request waits
        for that, not for the next release).
        """
        state = runner.state
        try:
            result = await watcher.operate(request)
            await self._refresh_weight(runner, watcher)
            self._finished(runner, result)
        except (LockedError, HeldError) as exc:  # another controller holds the lease, or a
            # hook held the promote: nothing moved, and the release goes on where it stood
            acted.set_exception(
                CommandRefusedError(f"cannot {request.command} {state.name!r}: {exc}")
            )
            await self._launch(runner, resume=True)
            return
        except asyncio.CancelledError:
            acted.cancel()  # serve is stopping: the caller is answered too
            raise
        except Exception as exc:
            state.error = f"{type(exc).__name__}: {exc}"
            state.set_status(
                Status.ERROR, self.wall_clock(), f"{request.command} stopped: {state.error}"
            )
            logger.exception("%s: %s stopped", state.name, request.command)
            acted.set_result(None)
            return
        acted.set_result(None)
        if await self._next_watch(runner, watcher, result):
            await self._run(runner, watcher)

    async def _audit_command(
        self,
        runner: Runner,
        command: str,
        reason: str,
        requested_by: str,
        on_behalf_of: str = "",
        *,
        refused: str = "",
    ) -> None:
        facts: dict[str, object] = {"command": command}
        if on_behalf_of:
            facts["on_behalf_of"] = on_behalf_of
        record = trail.entry(
            "command",
            runner.state,
            what=command,
            requested_by=requested_by,
            on_behalf_of=on_behalf_of,
            reason=reason,
            at=self.wall_clock(),
            watch_id=runner.watcher.watch_id if runner.watcher is not None else "",
            action=_ACTING[command].value if command in _ACTING else "continue",
            refused=refused,
            facts=facts,
        )
        await audit_write.append(self.audit, record)

    async def release(
        self, name: str, *, version: str, reason: str = "", requested_by: str = "operator"
    ) -> DeploymentState:
        """A new release of ``name`` began (CI says so): watch it from the start.

        The current watch, if any, ends as superseded; the engine forgets what it
        learned of the previous release. A paused deployment stays paused (resume
        watches the new release); one in the middle of an action is refused.
        """
        async with self._lock:
            runner = self.get(name)
            if runner.state.status is Status.ACTING:
                refused = f"{name!r} is in the middle of an action; post the release after it"
                await self._record_release(
                    runner,
                    version=version,
                    requested_by=requested_by,
                    reason=reason,
                    refused=refused,
                )
                raise CommandRefusedError(refused)
            await self._record_release(
                runner, version=version, requested_by=requested_by, reason=reason
            )
            if runner.watcher is not None:
                runner.watcher.interrupt_reason = f"superseded by release {version}"
            await self._halt(runner)
            if runner.watcher is not None:
                runner.watcher.reset()
            if runner.state.status is not Status.PAUSED:
                await self._launch(runner, resume=True)
            return runner.state

    async def _record_release(
        self,
        runner: Runner,
        *,
        version: str,
        requested_by: str,
        reason: str = "",
        source: str = "api",
        refused: str = "",
    ) -> None:
        state = runner.state
        record = trail.entry(
            "release",
            state,
            what=f"release {version}",
            requested_by=requested_by,
            reason=reason,
            at=self.wall_clock(),
            watch_id=runner.watcher.watch_id if runner.watcher is not None else "",
            refused=refused,
            facts={"version": version, "source": source},
        )
        await audit_write.append(self.audit, record)
        if not refused:
            state.release = version
            state.note(
                TimelineEntry(self.wall_clock(), "release", f"release {version} ({requested_by})")
            )
