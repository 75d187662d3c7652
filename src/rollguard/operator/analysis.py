"""One analysis: a policy watching one revision of its Deployment, reported on the resource.

The watch is the loop every command uses (:func:`rollguard.controller.assemble.assemble`);
this module only builds its executor (fenced, in the policy's namespace, with the
controller's credentials), reports on the policy's status as it goes, and turns the
verdict into Kubernetes Events on the policy and the Deployment.

Reports during the watch go through the controller's
:class:`~rollguard.operator.writer.StatusWriter`: an evaluation never waits for
the API server. A report is submitted when what it says changed (the decision's
action, trigger or severity), else at most every ``status_every_seconds`` (the
evaluation count and time alone). The verdict is written by the analysis itself,
after the writer has settled the policy's reports, so it lands last.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s

from rollguard.audit.base import AuditSink
from rollguard.controller.assemble import Overrides, assemble
from rollguard.controller.clock import SystemClock
from rollguard.controller.recovery import LEASE_SECONDS, LockLease
from rollguard.controller.watch import Outcome, Watcher, WatchResult
from rollguard.engine.decision import Verdict
from rollguard.engine.evaluate import Evaluation
from rollguard.executors.base import Executor
from rollguard.metrics.base import Provider
from rollguard.metrics.batching import QueryBatcher
from rollguard.operator import status as st
from rollguard.operator.crd import Phase
from rollguard.operator.fence import FencedExecutor, Owns
from rollguard.operator.kube import ControllerApi, Obj, PolicyKey
from rollguard.operator.telemetry import ControllerMetrics
from rollguard.operator.writer import Event, StatusWriter
from rollguard.policy.model import KubernetesExecutorSpec, Policy
from rollguard.timestamps import rfc3339

logger = logging.getLogger(__name__)

#: Seconds the policy's shard is still owned for (its deployment lock lasts no longer).
Left = Callable[[], float]

#: The Event reason for each way an analysis ends.
REASONS = {
    Outcome.HEALTHY: "AnalysisHealthy",
    Outcome.PROMOTED: "Promoted",
    Outcome.ROLLED_BACK: "RolledBack",
    Outcome.BLOCKED: "DeploymentBlocked",
    Outcome.INCONCLUSIVE: "AnalysisInconclusive",
    Outcome.FAILED: "ActionFailed",
}


@dataclass
class Settings:
    """What every analysis of one controller shares."""

    api: ControllerApi
    client: k8s.ApiClient
    audit: AuditSink
    identity: str
    base_dir: Path
    watch_seconds: float
    #: How often an unchanged decision's status is refreshed (its count and time): at
    #: 1,000 policies, every 30 s was more status writes than a loaded API server took.
    status_every_seconds: float = 60.0
    metrics: ControllerMetrics | None = None
    #: Every analysis's Prometheus queries go through it: one query per shape and tick.
    batcher: QueryBatcher = field(default_factory=QueryBatcher)
    #: The deployment lock's lease: the shard's renew deadline, and never longer than its
    #: ownership has left, so a killed replica's locks run out before the others may take
    #: its shards, on any host (renewed only while owned).
    lock_seconds: float = LEASE_SECONDS
    #: Writes the analyses' reports in the background; None: one on ``api`` (its threads).
    writer: StatusWriter | None = None

    def writes(self) -> StatusWriter:
        """The status writer every analysis of this controller submits to."""
        if self.writer is None:
            self.writer = StatusWriter(self.api)
        return self.writer


@dataclass
class Analysis:
    """One policy's watch of one Deployment revision, and what it has reported."""

    key: PolicyKey
    generation: int
    revision: str
    policy: Policy
    policy_ref: Obj
    deployment_ref: Obj
    #: The policy as the resync that started the analysis listed it (its status write
    #: merges into it without reading the policy first).
    seen: Obj | None = None
    evaluations: int = 0
    last_status: float = field(default=0.0)
    #: What the last report said (:func:`~rollguard.operator.status.signature`).
    last_said: tuple[str, ...] = ()
    #: A decision to act was taken, or an action passed the fence (recovery finishing
    #: an interrupted one): the action's own changes (a rollback is a new Deployment
    #: revision) must not interrupt it.
    acting: bool = False
    #: Its evaluations fall on multiples of the interval (batched queries meet there).
    aligned: bool = False
    #: The watch has ended: its verdict is being written, which nothing interrupts.
    ended: bool = False
    #: The revision was evaluated before (another replica's analysis, taken over): its
    #: canary is past the warm-up, and the first evaluation comes at once.
    warmed_up: bool = False
    #: Whether the policy's shard is still owned (a report is written only then).
    _owns: Owns = field(default=lambda: True, init=False, repr=False)

    async def run(
        self, settings: Settings, owns: Owns, left: Left = lambda: math.inf
    ) -> WatchResult:
        """Watch until a verdict (or ``watch_seconds``); the status says how it ended.

        ``owns`` says whether the policy's shard is still owned, ``left`` for how long."""
        batched = settings.batcher.provider_for(self.policy)
        self.aligned = batched is not None
        try:
            watcher = self._assemble(settings, owns, left, batched)
        except BaseException:
            if batched is not None:  # its share of the batcher's connection
                await batched.aclose()
            raise
        try:
            self._owns = owns
            settings.writes().submit(
                self.key,
                {
                    "phase": Phase.WATCHING,
                    "revision": self.revision,
                    "settledRevision": None,
                    "observedGeneration": self.generation,
                    "controller": settings.identity,
                    "decision": None,
                    "evaluations": 0,
                    "conditions": [
                        st.condition("SpecValid", True, "Accepted", "", self.generation),
                        st.condition("DeploymentFound", True, "Found", "", self.generation),
                        st.condition(
                            "Analysing",
                            True,
                            "Watching",
                            f"revision {self.revision}",
                            self.generation,
                        ),
                    ],
                },
                owns=owns,
                seen=self.seen,
                # on the policy only: a start is neither a decision nor an action, which
                # the Deployment's Events record
                events=(
                    Event(
                        self.policy_ref,
                        "AnalysisStarted",
                        f"watching revision {self.revision} of {self.policy.target.deployment}",
                        warning=False,
                    ),
                ),
            )
            return await watcher.run(duration_seconds=settings.watch_seconds)
        finally:
            await watcher.provider.aclose()

    def _assemble(
        self, settings: Settings, owns: Owns, left: Left, batched: Provider | None
    ) -> Watcher:
        return assemble(
            self.policy,
            Overrides(
                base_dir=settings.base_dir,
                audit=settings.audit,
                executor=FencedExecutor(
                    executor_for(self.policy, settings.client),
                    owns,
                    what=f"policy {self.key}",
                    acted=settings.metrics.acted if settings.metrics else None,
                    passing=self._passing,
                ),
                metrics=batched,
                clock=SystemClock(),
                on_evaluation=lambda evaluation: self._evaluated(settings, evaluation),
                align_ticks=self.aligned,  # batched watchers meet at the same ticks
                namespace=self.key.namespace,
                lock_lease=LockLease(settings.lock_seconds, owns, left),
                warmed_up=self.warmed_up,
            ),
        )

    def _passing(self) -> None:
        self.acting = True

    async def report(self, settings: Settings, result: WatchResult, settled: str) -> None:
        """The verdict as Events, then on the policy's status (a reader that sees the verdict
        finds its Events), after the analysis's own reports (fenced: written or dropped).

        The Events are recorded even by a replica that lost the shard meanwhile: it reports
        only a verdict whose action was carried out (the fence let it through while owned).
        """
        acted = result.outcome not in (Outcome.HEALTHY, Outcome.PROMOTED, Outcome.INCONCLUSIVE)
        message = f"revision {self.revision}: {result.action.value}: {result.reason}"
        ended = st.condition("Analysing", False, REASONS[result.outcome], message, self.generation)
        writes = settings.writes()
        await writes.settle(self.key, ended=True)  # the reports first, under their own fence
        writes.submit(
            self.key,
            {},
            owns=lambda: True,
            events=tuple(
                Event(involved, REASONS[result.outcome], message, warning=acted)
                for involved in (self.policy_ref, self.deployment_ref)
            ),
        )
        await writes.settle(self.key)
        written = await settings.api.patch_verdict(
            self.key,
            {
                **st.finished(result),
                "revision": self.revision,  # over a new owner's Watching: the verdict's own
                "settledRevision": settled,
                "conditions": [ended],
            },
            revision=self.revision,
        )
        if not written:  # a late verdict (the shard moved): the new owner's stands
            logger.warning("%s: the status holds a newer verdict; %s", self.key, message)

    async def _evaluated(self, settings: Settings, evaluation: Evaluation) -> None:
        self.evaluations += 1
        if settings.metrics is not None:
            settings.metrics.evaluations.inc()
            settings.metrics.lag.observe(time.time() - self._due(evaluation.at))
        if evaluation.decision.verdict is Verdict.ACT:
            self.acting = True
        said, now = st.signature(evaluation.decision), time.monotonic()
        news = said != self.last_said
        if not news and now - self.last_status < settings.status_every_seconds:
            return  # the status changes on a new decision, else at most every so often
        self.last_said, self.last_status = said, now
        settings.writes().submit(  # never waits: the writer writes it (the newest, if several)
            self.key,
            {
                "lastEvaluation": rfc3339(evaluation.at, "seconds"),
                "evaluations": self.evaluations,
                "decision": st.decided(evaluation.decision, evaluation.at),
            },
            owns=self._owns,
            refresh=not news,
        )

    def _due(self, at: float) -> float:
        """When an evaluation at ``at`` was due: its tick when aligned (a late wake-up is
        evaluated as of the time it woke), else ``at`` itself."""
        if not self.aligned:
            return at
        every = self.policy.analysis.interval
        return math.floor(at / every + 1e-3) * every


def executor_for(policy: Policy, client: k8s.ApiClient) -> Executor:
    """The policy's executor, acting with the controller's own credentials."""
    spec = policy.target.executor
    if isinstance(spec, KubernetesExecutorSpec):
        from rollguard.executors.kubernetes import KubernetesExecutor

        # never closed: the client is the controller's (its calls run in worker threads)
        return KubernetesExecutor(spec, api_client=client)
    from rollguard.executors.factory import make_executor

    return make_executor(policy)
