"""Recovery of interrupted watches: closing them, and finishing their actions as planned."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from pathlib import Path

import pytest
from crash_watch import next_watch
from file_executor import read_state, write_state

from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store
from rollguard.controller import Outcome, Watcher
from rollguard.controller.recovery import LockLease, deployment_lock, to_completion
from rollguard.errors import LockedError
from support import wait_until


async def test_a_watch_that_stopped_while_healthy_is_closed_and_watching_goes_on(
    tmp_path: Path,
) -> None:
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 20, "canary_state": "serving", "history": []})
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append(
        AuditRecord(
            kind="deployment_start",
            deployment="shop",
            timestamp="2026-11-27T09:00:00Z",
            watch_id="stopped",
        )
    )
    watcher = next_watch("immediate", state, store, healthy=True, at=1_795_000_000.0)
    result = await watcher.run(duration_seconds=30)
    assert result.outcome is Outcome.HEALTHY
    assert read_state(state)["history"] == []  # nothing was done to the deployment
    ends = {e.record.watch_id: e.record.outcome for e in store.list(kind="deployment_end")}
    assert ends == {"stopped": "interrupted", watcher.watch_id: "healthy"}
    assert store.list(kind="recovery") == []
    assert store.verify().ok
    store.close()


@pytest.mark.parametrize(
    ("weight_found", "recorded_steps", "expected"),
    [
        (20, [], [15, 10, 5, 0]),  # killed before its first step: the whole plan, from 20 %
        (15, [{"to_stable_percent": 25, "from_percent": 20}], [10, 5, 0]),  # after 25 % of 20
        (4, [{"to_stable_percent": 25, "from_percent": 20}], [0]),  # lowered by hand meanwhile
    ],
)
async def test_an_interrupted_gradual_rollback_resumes_its_own_plan(
    tmp_path: Path, weight_found: int, recorded_steps: list[dict[str, int]], expected: list[int]
) -> None:
    # the plan's steps are shares of the weight the canary had when the rollback began;
    # resuming must neither jump to 0 % nor re-split the weight it finds
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": weight_found, "canary_state": "serving", "history": []})
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    common = {"deployment": "shop", "timestamp": "2026-11-27T09:00:00Z", "watch_id": "killed"}
    store.append(AuditRecord(kind="deployment_start", **common))
    store.append(
        AuditRecord(kind="action_intent", action="gradual_rollback_with_traffic_shifting", **common)
    )
    for step in recorded_steps:
        output = {"step": "set_canary_weight", "ok": True, **step}
        store.append(AuditRecord(kind="action_step", executor_output=output, **common))
    # users keep seeing errors: no early stop
    watcher = next_watch("gradual", state, store, healthy=False, at=1_795_000_000.0)
    result = await watcher.run(duration_seconds=30)
    assert result.outcome is Outcome.ROLLED_BACK
    # the rest of the plan, then the release undone once the canary has no traffic
    steps = [["set_canary_weight", weight] for weight in expected]
    assert read_state(state)["history"] == [*steps, ["rollback", 0]]
    assert store.verify().ok
    store.close()


def test_a_store_call_that_fails_while_its_caller_is_cancelled_is_not_reported_as_unretrieved() -> (
    None
):
    """A lock refused (LockedError) after the watch was cancelled: only the cancellation goes on."""
    reported: list[dict[str, object]] = []

    def refused() -> None:
        entered.set()
        assert proceed.wait(10)
        raise LockedError("held by another owner")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: reported.append(context)
        )
        waiting = asyncio.ensure_future(to_completion(refused))
        assert await asyncio.to_thread(entered.wait, 10)
        waiting.cancel()
        await asyncio.sleep(0)  # the cancellation reaches to_completion while the call runs
        proceed.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gc.collect()  # an unretrieved exception is reported when its task is collected

    entered, proceed = threading.Event(), threading.Event()
    asyncio.run(main())
    assert reported == []


async def test_a_lock_no_longer_kept_runs_out_while_its_watch_goes_on(tmp_path: Path) -> None:
    """The controller renews a deployment's lock only while it owns the policy's shard: a
    replica cut off from the API server keeps watching (no resync stops it), but once its
    shard has lapsed the lock runs out within one lease and the shard's new owner takes it."""
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    kept = [True]

    def renewed_since(first: float) -> bool:
        found = store.lock_holder("team/shop")
        return found is not None and found.expires_at > first

    def taken() -> bool:
        try:
            store.acquire_lock("team/shop", owner="new owner", lease_seconds=60.0)
        except LockedError:
            return False
        return True

    try:
        async with deployment_lock(
            store, "team/shop", owner="old owner", lease=LockLease(1.0, lambda: kept[0])
        ):
            first = store.lock_holder("team/shop")
            assert first is not None
            await asyncio.to_thread(
                wait_until, lambda: renewed_since(first.expires_at), what="a renewal while kept"
            )
            kept[0] = False
            await asyncio.to_thread(wait_until, taken, what="the new owner's lock")
            holder = store.lock_holder("team/shop")
        assert holder is not None
        assert holder.owner == "new owner"
    finally:
        store.close()


async def test_a_lock_lasts_no_longer_than_the_ownership_left(tmp_path: Path) -> None:
    """The controller caps each lease it takes or renews at what is left of the shard's
    ownership: a killed replica's lock runs out no later than its right to act did,
    before any other replica may take its shard."""
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    left = [0.4]

    def renewed_since(first: float) -> bool:
        found = store.lock_holder("team/shop")
        return found is not None and found.expires_at > first

    try:
        lease = LockLease(3.0, lambda: True, lambda: left[0])
        async with deployment_lock(store, "team/shop", owner="owner", lease=lease):
            taken = store.lock_holder("team/shop")
            assert taken is not None
            left[0] = 1.5
            await asyncio.to_thread(
                wait_until, lambda: renewed_since(taken.expires_at), what="a renewal"
            )
            renewed = store.lock_holder("team/shop")
            seen_at = time.time()
    finally:
        store.close()
    assert taken.expires_at - taken.acquired_at == pytest.approx(0.4, abs=1e-6)
    assert renewed is not None
    assert renewed.expires_at <= seen_at + 1.5  # renewed before it was seen, for 1.5 s


async def test_an_interrupted_watch_is_recovered_only_in_its_own_namespace(
    tmp_path: Path,
) -> None:
    """`shop` in team-a and `shop` in team-b are two deployments: team-b's watch neither
    finishes nor closes team-a's interrupted rollback; team-a's next watch does."""
    state = tmp_path / "deployment.json"
    write_state(state, {"canary_weight": 20, "canary_state": "serving", "history": []})
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    common = {"deployment": "shop", "timestamp": "2026-11-27T09:00:00Z", "watch_id": "killed-a"}
    store.append(AuditRecord(kind="deployment_start", evidence={"namespace": "team-a"}, **common))
    store.append(AuditRecord(kind="action_intent", action="immediate_rollback", **common))

    def watcher(namespace: str) -> Watcher:
        return next_watch(
            "immediate", state, store, healthy=True, at=1_795_000_000.0, namespace=namespace
        )

    other = watcher("team-b")
    assert (await other.run(duration_seconds=30)).outcome is Outcome.HEALTHY
    assert read_state(state)["history"] == []  # team-a's rollback was not run for team-b
    assert store.list(kind="recovery") == []
    ended = {e.record.watch_id for e in store.list(kind="deployment_end")}
    assert ended == {other.watch_id}  # team-a's watch is still open, for team-a to finish
    started = store.list(kind="deployment_start")
    assert started[-1].record.evidence["namespace"] == "team-b"

    own = watcher("team-a")
    assert (await own.run(duration_seconds=30)).outcome is Outcome.ROLLED_BACK
    assert read_state(state)["history"] != []
    (recovered,) = store.list(kind="recovery")
    assert recovered.record.evidence["interrupted_watch"] == "killed-a"
    assert store.verify().ok
    store.close()


async def test_a_killed_release_is_taken_up_at_its_step_only_in_its_own_namespace(
    tmp_path: Path,
) -> None:
    """team-a's release of `shop`, killed at its 50 % step, is taken up at 50 % by team-a's
    next watch; team-b's watch of its own `shop` starts its release from the first step."""
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    common = {"deployment": "shop", "timestamp": "2026-11-27T09:00:00Z", "watch_id": "killed-a"}
    store.append(AuditRecord(kind="deployment_start", evidence={"namespace": "team-a"}, **common))
    output = {"step": 2, "canary_weight": 50}
    store.append(
        AuditRecord(kind="promotion_step", outcome="success", executor_output=output, **common)
    )

    async def weights(namespace: str) -> list[int]:
        state = tmp_path / f"{namespace}.json"
        write_state(state, {"canary_weight": 0, "canary_state": "drained", "history": []})
        watcher = next_watch(
            "progressive", state, store, healthy=True, at=1_795_000_600.0, namespace=namespace
        )
        assert (await watcher.run(duration_seconds=3600)).outcome is Outcome.PROMOTED
        return [weight for _, weight in read_state(state)["history"]]

    assert await weights("team-b") == [10, 50, 100]  # team-a's step is not team-b's
    assert await weights("team-a") == [50, 100]  # taken up at 50 %, never back to 10 %
    assert store.verify().ok
    store.close()
