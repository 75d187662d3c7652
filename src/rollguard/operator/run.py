"""``rollguard controller``'s process: resync until stopped, then close every watch.

SIGTERM or SIGINT cancels the loop; each running analysis is cancelled and its
watch records ``deployment_end`` (``interrupted``) before the process ends.
The probe listener (:mod:`~rollguard.operator.probes`) is bound before anything
else starts, so a taken address is reported at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry
from urllib3.exceptions import HTTPError

from rollguard.audit.base import AuditSink
from rollguard.errors import RollguardError
from rollguard.metrics import query_counts
from rollguard.metrics.batching import QueryBatcher
from rollguard.operator import writer
from rollguard.operator.analysis import Settings
from rollguard.operator.controller import Controller
from rollguard.operator.kube import ControllerApi, api_client
from rollguard.operator.probes import Marks, ProbeListener, Probes
from rollguard.operator.shards import LeaseTiming, ShardKeeper
from rollguard.operator.telemetry import PREFIX, ControllerMetrics, Sources

logger = logging.getLogger("rollguard.controller")

#: The cyclic garbage collector's thresholds. Each tick, thousands of analyses allocate
#: futures, samples and measurements; at Python's default (700 allocations) the
#: collector ran thousands of times and took about a third of the wall time of 3,750
#: batched analyses (bench/README.md, "Controller at scale").
GC_THRESHOLDS = (50_000, 20, 100)


@dataclass(frozen=True)
class Options:
    """What ``rollguard controller`` was asked for."""

    kubeconfig: Path | None
    context: str | None
    in_cluster: bool
    namespace: str | None
    identity: str
    resync_seconds: float
    watch_seconds: float
    lease_namespace: str
    shards: int = 8
    timing: LeaseTiming = field(default_factory=LeaseTiming)
    #: Where /healthz, /readyz and /metrics listen; None: nowhere.
    health_address: tuple[str, int] | None = None

    @property
    def lease_seconds(self) -> float:
        return self.timing.lease_seconds

    @property
    def request_seconds(self) -> float:
        """How long one API call may take: a Lease's duration. An answer later than that
        is worthless (a renewal sent that long ago has let its shards lapse), and the
        resync and Lease loops must come round to count the failure and try again."""
        return self.lease_seconds

    @property
    def stall_seconds(self) -> float:
        """How long the reconcile loop may not come round before /healthz fails."""
        return max(60.0, 10 * self.resync_seconds)


def run(options: Options, audit: AuditSink) -> None:
    """Run the controller until SIGTERM/SIGINT."""
    asyncio.run(_main(options, audit))


async def _main(options: Options, audit: AuditSink) -> None:
    gc.freeze()  # what start-up built (modules, the policy model) is never walked again
    gc.set_threshold(*GC_THRESHOLDS)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None  # noqa: S101 - asyncio.run runs us as a task
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    connect = functools.partial(
        api_client,
        kubeconfig=options.kubeconfig,
        context=options.context,
        in_cluster=options.in_cluster,
        request_seconds=options.request_seconds,
    )
    client = connect()
    api = ControllerApi(client, namespace=options.namespace)
    # The status writer's own client and threads: its writes never hold up an action,
    # a resync or a Lease renewal, nor they it.
    write_client = connect()
    write_api = ControllerApi(
        write_client,
        namespace=options.namespace,
        threads=ThreadPoolExecutor(max_workers=writer.CONCURRENCY, thread_name_prefix="status"),
    )
    keeper = ShardKeeper(
        client,
        namespace=options.lease_namespace,
        identity=options.identity,
        shards=options.shards,
        timing=options.timing,
    )
    registry = CollectorRegistry()
    batcher = QueryBatcher()
    query_counts.register(registry, batcher, prefix=PREFIX)
    metrics = ControllerMetrics(
        registry,
        Sources(
            shards=options.shards,
            shards_held=lambda: len(keeper.owned()),
            analyses_running=lambda: len(controller.running),
            api_requests=lambda: Counter(api.requests) + Counter(write_api.requests),
            lease_requests=lambda: keeper.requests,
            status_pending=lambda: statuses.pending,
        ),
    )
    statuses = writer.StatusWriter(
        write_api, counted=lambda result: metrics.status_writes.labels(result).inc()
    )
    controller = Controller(
        Settings(
            api=api,
            client=client,
            audit=audit,
            identity=options.identity,
            base_dir=Path.cwd(),
            watch_seconds=options.watch_seconds,
            batcher=batcher,
            lock_seconds=options.timing.renew_deadline_seconds,
            metrics=metrics,
            writer=statuses,
        ),
        owns=keeper.owns,
        owned_for=keeper.owned_for,
    )
    marks = Marks(stall_seconds=options.stall_seconds, lease_seconds=options.lease_seconds)
    listener = None
    if options.health_address is not None:
        host, port = options.health_address
        listener = ProbeListener(
            Probes(marks, audit, registry, shards_held=keeper.owned), host=host, port=port
        )
        listener.start()
    logger.info("controller %s started", options.identity)
    ticked = _ticked(marks, controller.settings.metrics)
    leases = asyncio.create_task(keeper.run(on_tick=ticked), name="shard-leases")
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await _loop(controller, options.resync_seconds, marks, keeper.taken)
    finally:
        leases.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leases
        await controller.close()
        with contextlib.suppress(RollguardError, ApiException, HTTPError, OSError):
            await keeper.release_all()  # the others take over now, not after expiry
        keeper.close()
        api.close()
        write_api.close()
        await asyncio.to_thread(client.close)
        await asyncio.to_thread(write_client.close)
        if listener is not None:
            listener.stop()
        logger.info("controller %s stopped", options.identity)


def _ticked(marks: Marks, metrics: ControllerMetrics | None) -> Callable[[str], None]:
    def ticked(error: str) -> None:
        marks.ticked(error)
        if metrics is not None:
            metrics.lease_ticks.labels("error" if error else "ok").inc()

    return ticked


async def _loop(controller: Controller, every: float, marks: Marks, taken: asyncio.Event) -> None:
    """Resync every ``every`` seconds, and at once when a shard was taken: a killed
    replica's policies are analysed again without waiting for the next resync."""
    resyncs = controller.settings.metrics
    while True:
        taken.clear()  # this resync sees every shard taken so far
        error = ""
        try:
            await controller.resync()
        except RollguardError as exc:  # the API server is away: try again next time
            logger.warning("resync failed: %s", exc)
            error = str(exc)
        marks.resynced(error)
        if resyncs is not None:
            resyncs.resyncs.labels("error" if error else "ok").inc()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(taken.wait(), every)
