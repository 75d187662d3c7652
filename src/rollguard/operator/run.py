"""``rollguard controller``'s process: resync until stopped, then close every watch.

SIGTERM or SIGINT cancels the loop; each running analysis is cancelled and its
watch records ``deployment_end`` (``interrupted``) before the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollguard.audit.base import AuditSink
from rollguard.errors import RollguardError
from rollguard.operator.analysis import Settings
from rollguard.operator.controller import Controller
from rollguard.operator.kube import ControllerApi, api_client
from rollguard.operator.shards import ShardKeeper

logger = logging.getLogger("rollguard.controller")


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
    lease_seconds: float = 10.0


def run(options: Options, audit: AuditSink) -> None:
    """Run the controller until SIGTERM/SIGINT."""
    asyncio.run(_main(options, audit))


async def _main(options: Options, audit: AuditSink) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None  # noqa: S101 - asyncio.run runs us as a task
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    client = api_client(
        kubeconfig=options.kubeconfig, context=options.context, in_cluster=options.in_cluster
    )
    settings = Settings(
        api=ControllerApi(client, namespace=options.namespace),
        client=client,
        audit=audit,
        identity=options.identity,
        base_dir=Path.cwd(),
        watch_seconds=options.watch_seconds,
    )
    keeper = ShardKeeper(
        client,
        namespace=options.lease_namespace,
        identity=options.identity,
        shards=options.shards,
        lease_seconds=options.lease_seconds,
    )
    controller = Controller(settings, owns=keeper.owns)
    logger.info("controller %s started", options.identity)
    leases = asyncio.create_task(keeper.run(), name="shard-leases")
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await _loop(controller, options.resync_seconds)
    finally:
        leases.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leases
        await controller.close()
        with contextlib.suppress(RollguardError, ApiException, HTTPError, OSError):
            await keeper.release_all()  # the others take over now, not after expiry
        await asyncio.to_thread(client.close)
        logger.info("controller %s stopped", options.identity)


async def _loop(controller: Controller, every: float) -> None:
    while True:
        try:
            await controller.resync()
        except RollguardError as exc:  # the API server is away: try again next time
            logger.warning("resync failed: %s", exc)
        await asyncio.sleep(every)
