"""The reconcile loop: each owned RollbackPolicy gets one analysis per Deployment revision.

Level-triggered: every resync lists the policies and the Deployments (two
LISTs, whatever their number) and brings the running analyses in line:

- a new Deployment revision (its new ReplicaSet is the canary) starts a new
  analysis; the revision a finished analysis left (after a rollback, the
  restored one: ``status.settledRevision``) does not;
- an edit of the policy (a new ``metadata.generation``) restarts a running
  analysis with the new spec, without a restart of the controller;
- an analysis that decided to act is never interrupted by either: its own
  rollback is a new revision;
- a policy deleted, or no longer owned (its shard moved to another replica),
  stops its analysis;
- an invalid spec or a missing Deployment is reported on the policy's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from rollguard.controller.watch import WatchResult
from rollguard.errors import LockedError, RollguardError
from rollguard.operator import status as st
from rollguard.operator.analysis import Analysis, Settings
from rollguard.operator.crd import Phase
from rollguard.operator.kube import Obj, PolicyKey, deployment_reference, policy_reference
from rollguard.operator.spec import Parsed, parse

logger = logging.getLogger(__name__)

#: Which policies this replica evaluates (all of them without sharding).
Ownership = Callable[[PolicyKey], bool]


@dataclass
class Running:
    analysis: Analysis
    task: asyncio.Task[None]


class Controller:
    """Keeps one analysis running per owned policy whose Deployment has a new revision."""

    def __init__(self, settings: Settings, *, owns: Ownership = lambda key: True) -> None:
        self.settings = settings
        self.owns = owns
        self.running: dict[PolicyKey, Running] = {}
        #: (generation, revision) each policy last reported on, so a resync is quiet.
        self._reported: dict[PolicyKey, tuple[int, str, str]] = {}

    async def resync(self) -> None:
        """One pass: list, compare, start and stop analyses."""
        policies = await self.settings.api.policies()
        deployments = await self.settings.api.deployments()
        seen: set[PolicyKey] = set()
        for obj in policies:
            parsed = parse(obj)
            if not self.owns(parsed.key):
                continue
            seen.add(parsed.key)
            try:
                await self._reconcile(obj, parsed, deployments)
            except RollguardError as exc:
                logger.warning("%s: %s", parsed.key, exc)
        for key in [key for key in self.running if key not in seen]:
            await self.stop(key)

    async def stop(self, key: PolicyKey) -> None:
        """Cancel a policy's analysis (its watch records ``interrupted`` in the trail)."""
        found = self.running.pop(key, None)
        if found is not None:
            found.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await found.task

    async def close(self) -> None:
        for key in list(self.running):
            await self.stop(key)

    async def _reconcile(
        self, obj: Obj, parsed: Parsed, deployments: dict[tuple[str, str], Obj]
    ) -> None:
        key = parsed.key
        if parsed.policy is None:
            await self.stop(key)
            await self._report(obj, parsed, "SpecValid", "InvalidSpec", parsed.problem or "")
            return
        deployment = deployments.get((key.namespace, parsed.policy.target.deployment))
        if deployment is None:
            await self.stop(key)
            message = f"Deployment {parsed.policy.target.deployment!r} not found in {key.namespace}"
            await self._report(obj, parsed, "DeploymentFound", "NotFound", message)
            return
        revision = st.revision_of(deployment)
        running = self.running.get(key)
        if running is not None:
            if running.analysis.acting or (
                running.analysis.generation,
                running.analysis.revision,
            ) == (parsed.generation, revision):
                return  # an action runs to its end, whatever it changes
            await self.stop(key)  # a policy edit or a newer revision: start again
        elif self._finished(obj, revision):
            return
        analysis = Analysis(
            key,
            parsed.generation,
            revision,
            parsed.policy,
            policy_reference(obj),
            deployment_reference(deployment),
        )
        task = asyncio.create_task(self._analyse(analysis), name=f"analysis:{key}")
        self.running[key] = Running(analysis, task)

    def _finished(self, obj: Obj, revision: str) -> bool:
        """This revision was analysed to the end (by any replica), or is the one restored."""
        status = obj.get("status") or {}
        if status.get("phase") not in st.FINISHED:
            return False
        return revision in (status.get("revision"), status.get("settledRevision"))

    async def _analyse(self, analysis: Analysis) -> None:
        settings = self.settings
        try:
            result: WatchResult = await analysis.run(settings, lambda: self.owns(analysis.key))
            if not self.owns(analysis.key):
                # Lost while watching (paused, cut off): the verdict is not this replica's
                # to give. Written, it would end the new owner's analysis of this revision.
                logger.warning("%s: no longer owned; the verdict is its owner's", analysis.key)
                return
            settled = await self._revision_now(analysis)
            await analysis.report(settings, result, settled)
        except LockedError as exc:  # another replica's watch has not let go yet: next resync
            logger.info("%s: %s", analysis.key, exc)
        except RollguardError as exc:
            logger.warning("%s: analysis stopped: %s", analysis.key, exc)
            with contextlib.suppress(RollguardError):
                await settings.api.patch_status(
                    analysis.key,
                    {
                        "phase": Phase.FAILED,
                        "conditions": [
                            st.condition("Analysing", False, "Error", str(exc), analysis.generation)
                        ],
                    },
                )
        finally:
            current = self.running.get(analysis.key)
            if current is not None and current.analysis is analysis:
                del self.running[analysis.key]

    async def _revision_now(self, analysis: Analysis) -> str:
        found = await self.settings.api.deployment(
            analysis.key.namespace, analysis.policy.target.deployment
        )
        return st.revision_of(found) if found else analysis.revision

    async def _report(self, obj: Obj, parsed: Parsed, kind: str, reason: str, message: str) -> None:
        """A policy that cannot be analysed: Idle, with the condition saying why (once)."""
        signature = (parsed.generation, kind, message)
        status = obj.get("status") or {}
        if self._reported.get(parsed.key) == signature and status.get("phase") == Phase.IDLE:
            return
        conditions = [st.condition(kind, False, reason, message, parsed.generation)]
        await self.settings.api.patch_status(
            parsed.key,
            {
                "phase": Phase.IDLE,
                "observedGeneration": parsed.generation,
                "controller": self.settings.identity,
                "conditions": conditions,
            },
        )
        self._reported[parsed.key] = signature
