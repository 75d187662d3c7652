"""What starts a deployment's next watch in ``serve`` once one has ended.

A controller keeps going. After an inconclusive end (the provider had no
data) the deployment is watched again as soon as data returns; after a
rollback, a block, a promote or a failed action it waits for the next
release: an authenticated ``POST /api/v1/deployments/{name}/releases`` from
CI, or, for an executor that reads a revision (the Kubernetes Deployment's
``deployment.kubernetes.io/revision``), a revision other than the one the
deployment had when its watch ended.
"""

from __future__ import annotations

from rollguard.controller import Watcher
from rollguard.engine.evaluate import required_queries
from rollguard.errors import RollguardError
from rollguard.signals import Phase


async def data_returned(watcher: Watcher) -> None:
    """Return once the provider answers every query the policy needs, polling each interval."""
    queries = required_queries(watcher.policy)
    while True:
        await watcher.clock.sleep(watcher.interval_seconds)
        now = watcher.clock.now()
        try:
            await watcher.provider.collect(now=now)
            measured = await watcher.provider.measure(queries, now=now)
        except RollguardError:
            continue  # still no data: a provider error is no-data too
        if measured and all(measurement.phase is Phase.OK for measurement in measured):
            return


async def revision(watcher: Watcher) -> str | None:
    """The revision the executor reads for the deployment, or None when it reads none."""
    try:
        status = await watcher.executor.status()
    except RollguardError:
        return None
    found = status.detail.get("revision")
    return None if found is None else str(found)


async def new_revision(watcher: Watcher, since: str) -> str:
    """Return the first revision other than ``since``, polling each interval."""
    while True:
        await watcher.clock.sleep(watcher.interval_seconds)
        now = await revision(watcher)
        if now is not None and now != since:
            return now
