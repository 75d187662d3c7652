"""The reconcile loop: each owned RollbackPolicy gets one analysis per Deployment revision.

Level-triggered: every resync lists the policies and the Deployments (two
LISTs, whatever their number) and brings the running analyses in line:

- a new Deployment revision (its new ReplicaSet is the canary) starts a new
  analysis; the revision a finished analysis left (after a rollback, the
  restored one: ``status.settledRevision``) does not, nor does one this replica
  finished while the LIST it reconciles was read before the verdict was written;
- an edit of the policy (a new ``metadata.generation``) restarts a running
  analysis with the new spec, without a restart of the controller;
- an analysis that decided to act, or is finishing an interrupted action, is
  never interrupted by either: its own rollback is a new revision; nor is one
  whose watch has ended, while it writes its verdict;
- a policy deleted, or no longer owned (its shard moved to another replica),
  stops its analysis (unless its watch has ended); its verdict is then the new
  owner's, unless its action was carried out (the fence let it through while the
  shard was still owned): the Deployment changed, and the status says so;
- an invalid spec or a missing Deployment is reported on the policy's status;
- a revision already evaluated (its status says so: another replica's analysis,
  taken over with its shard) is past its warm-up: the new analysis evaluates at
  once, not at the next tick.

The analyses' reports are written in the background
(:class:`~rollguard.operator.writer.StatusWriter`); a status this loop writes
itself (a verdict, an Idle report, a failure) is written once the policy's
reports are settled, so it is never overwritten by an older report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from rollguard.controller.watch import Outcome, WatchResult
from rollguard.errors import LockedError, RollguardError
from rollguard.operator import status as st
from rollguard.operator.analysis import Analysis, Settings
from rollguard.operator.crd import Phase
from rollguard.operator.kube import Obj, PolicyKey, deployment_reference, policy_reference
from rollguard.operator.spec import Parsed, key_of, parse

logger = logging.getLogger(__name__)

#: Which policies this replica evaluates (all of them without sharding).
Ownership = Callable[[PolicyKey], bool]
#: For how many more seconds this replica owns a policy (its deployment lock lasts no longer).
OwnedFor = Callable[[PolicyKey], float]
#: Outcomes of an action carried out: the Deployment is not the revision analysed any more.
CARRIED_OUT = frozenset({Outcome.ROLLED_BACK, Outcome.BLOCKED})


@dataclass
class Running:
    analysis: Analysis
    task: asyncio.Task[None]


class Controller:
    """Keeps one analysis running per owned policy whose Deployment has a new revision."""

    def __init__(
        self,
        settings: Settings,
        *,
        owns: Ownership = lambda key: True,
        owned_for: OwnedFor = lambda key: math.inf,
    ) -> None:
        self.settings = settings
        self.owns = owns
        self.owned_for = owned_for
        self.running: dict[PolicyKey, Running] = {}
        #: (generation, revision) each policy last reported on, so a resync is quiet.
        self._reported: dict[PolicyKey, tuple[int, str, str]] = {}
        #: Each owned policy's spec as parsed, with the (uid, generation) it was parsed at.
        self._parsed: dict[PolicyKey, tuple[tuple[str, int], Parsed]] = {}
        #: The policy's uid and the revisions (analysed, settled) of its last analysis this
        #: replica finished: a LIST read before that verdict was written shows the analysis
        #: still running, and must not start one of the revision its rollback restored.
        self._settled: dict[PolicyKey, tuple[str, tuple[str, str]]] = {}
        #: The (uid, generation, revision) each policy's last analysis here was warmed up
        #: at: its own start wrote ``evaluations: 0``, so a retry (the lock was not free
        #: yet) would no longer read from the status that the revision was evaluated.
        self._warm: dict[PolicyKey, tuple[str, int, str]] = {}

    async def resync(self) -> None:
        """One pass: list, compare, start and stop analyses."""
        policies = await self.settings.api.policies()
        deployments = await self.settings.api.deployments()
        seen: set[PolicyKey] = set()
        listed: set[PolicyKey] = set()
        for obj in policies:
            key = key_of(obj)
            listed.add(key)
            if not self.owns(key):  # another replica's: not even parsed
                continue
            seen.add(key)
            parsed = self._parse(key, obj)
            try:
                await self._reconcile(obj, parsed, deployments)
            except RollguardError as exc:
                logger.warning("%s: %s", parsed.key, exc)
        for key, found in list(self.running.items()):
            if key not in seen and not found.analysis.ended:  # an ended one writes its verdict
                await self.stop(key)
        for key in [key for key in self._settled if key not in listed]:
            del self._settled[key]  # the policy was deleted
        for cache in (self._parsed, self._warm):  # no longer owned, or deleted
            for key in [key for key in cache if key not in seen]:
                del cache[key]

    def _parse(self, key: PolicyKey, obj: Obj) -> Parsed:
        """The policy in ``obj``, parsed once per spec: the API server gives a spec edit a
        new ``generation`` (status writes do not), and a policy deleted and created
        again a new ``uid``. Thousands of policies are listed at every resync."""
        metadata = obj["metadata"]
        version = (str(metadata.get("uid") or ""), int(metadata.get("generation") or 0))
        found = self._parsed.get(key)
        if found is None or found[0] != version:
            found = self._parsed[key] = (version, parse(obj))
        return found[1]

    async def stop(self, key: PolicyKey) -> None:
        """Cancel a policy's analysis (its watch records ``interrupted`` in the trail)."""
        found = self.running.pop(key, None)
        if found is not None:
            found.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await found.task
            await self.settings.writes().settle(key, drop=True)  # its reports are moot

    async def close(self) -> None:
        for key in list(self.running):
            await self.stop(key)
        await self.settings.writes().aclose()  # the verdicts' Events still pending

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
            if (
                running.analysis.acting
                or running.analysis.ended
                or (running.analysis.generation, running.analysis.revision)
                == (parsed.generation, revision)
            ):
                return  # an action runs to its end, whatever it changes, and so does a verdict
            await self.stop(key)  # a policy edit or a newer revision: start again
        if self._finished(key, obj, revision):
            return
        warmed_up = self._warmed_up(key, obj, parsed.generation, revision)
        logger.info("%s: analysing revision %s%s", key, revision, " (evaluated before)" * warmed_up)
        analysis = Analysis(
            key,
            parsed.generation,
            revision,
            parsed.policy,
            policy_reference(obj),
            deployment_reference(deployment),
            seen=obj,
            warmed_up=warmed_up,
        )
        task = asyncio.create_task(self._analyse(analysis), name=f"analysis:{key}")
        self.running[key] = Running(analysis, task)

    def _finished(self, key: PolicyKey, obj: Obj, revision: str) -> bool:
        """This revision was analysed to the end (by any replica, as the status says, or by
        this one, whose verdict the LIST may not show yet), or is the one restored."""
        status = obj.get("status") or {}
        if status.get("phase") in st.FINISHED and revision in (
            status.get("revision"),
            status.get("settledRevision"),
        ):
            return True
        found = self._settled.get(key)
        if found is None:
            return False
        uid, revisions = found
        return uid == obj["metadata"].get("uid") and revision in revisions

    def _warmed_up(self, key: PolicyKey, obj: Obj, generation: int, revision: str) -> bool:
        """This revision was evaluated under this spec before (by the replica that held the
        shard, or by this one before a retry): its canary is past the warm-up."""
        status = obj.get("status") or {}
        version = (str(obj["metadata"].get("uid") or ""), generation, revision)
        if (
            status.get("phase") == Phase.WATCHING
            and status.get("revision") == revision
            and status.get("observedGeneration") == generation
            and int(status.get("evaluations") or 0) >= 1
        ):
            self._warm[key] = version
        return self._warm.get(key) == version

    async def _analyse(self, analysis: Analysis) -> None:
        settings = self.settings
        key = analysis.key
        try:
            result: WatchResult = await analysis.run(
                settings, lambda: self.owns(key), lambda: self.owned_for(key)
            )
            analysis.ended = True
            if not self.owns(analysis.key) and result.outcome not in CARRIED_OUT:
                # Lost while watching (paused, cut off): the verdict is not this replica's
                # to give. Written, it would end the new owner's analysis of this revision.
                # An action carried out (the fence let it through) changed the Deployment:
                # unwritten, its owner would analyse the restored revision as a new canary.
                logger.warning("%s: no longer owned; the verdict is its owner's", analysis.key)
                return
            settled = await self._revision_now(analysis)
            uid = str(analysis.policy_ref.get("uid", ""))
            self._settled[analysis.key] = (uid, (analysis.revision, settled))
            await analysis.report(settings, result, settled)  # after the analysis's reports
        except LockedError as exc:  # another replica's watch has not let go yet: next resync
            logger.info("%s: %s", analysis.key, exc)
        except RollguardError as exc:
            logger.warning("%s: analysis stopped: %s", analysis.key, exc)
            with contextlib.suppress(RollguardError):
                await settings.writes().settle(analysis.key, ended=True)
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
