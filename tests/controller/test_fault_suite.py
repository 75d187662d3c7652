"""Cancellation and SIGKILL at every await of every action path, engine- and operator-initiated.

For each path the run is first done without a fault to count its points (each
awaited call into the store, the executor, the provider or the clock), then
once per fault: cancelled before and after each point, and SIGKILLed after
each point (a kill before a call leaves what a kill after the previous one
leaves: no durable change happens between points). After every fault the
next watch runs and the invariants are checked: the lease was released (a
cancellation) or taken over (a kill), no entry was lost (after a kill the
store holds exactly the entries whose append had returned), every watch
ended, every action has a result (completed, or recorded as failed), no two
actions were ever open at once, traffic only moved towards stable, and the
chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from faults import PATHS, Injector, check_after, run_path

from rollguard.audit.factory import open_store
from rollguard.controller.watch import WatchResult

HERE = Path(__file__).resolve().parent
POSITIONS = ("before", "after")


def _points(path: str, folder: Path) -> list[str]:
    folder.mkdir()
    counting = Injector()
    result = asyncio.run(run_path(path, folder, counting))
    assert isinstance(result, WatchResult), result
    asyncio.run(check_after(path, folder))
    return counting.points


@pytest.mark.parametrize("path", list(PATHS))
def test_cancelled_at_every_await(tmp_path: Path, path: str) -> None:
    points = _points(path, tmp_path / "count")
    assert points[0] == "store.acquire_lock"
    assert points[-1] == "store.release_lock"
    for number in range(1, len(points) + 1):
        for position in POSITIONS:
            folder = tmp_path / f"{number}-{position}"
            folder.mkdir()
            injector = Injector((number, position), kind="cancel")
            asyncio.run(run_path(path, folder, injector))
            assert injector.fired, f"no fault at {number} {position} of {points}"
            store = open_store(f"sqlite:///{folder / 'audit.db'}")
            try:
                holder = store.lock_holder("shop")
            finally:
                store.close()
            assert holder is None, f"lease kept after a cancellation {injector.fired}"
            asyncio.run(check_after(path, folder))


@pytest.mark.parametrize("path", list(PATHS))
def test_sigkilled_at_every_await(tmp_path: Path, path: str, cli_env: dict[str, str]) -> None:
    points = _points(path, tmp_path / "count")
    faults = [(1, "before")] + [(number, "after") for number in range(1, len(points) + 1)]
    folders = [tmp_path / f"{number}-{position}" for number, position in faults]
    for folder in folders:
        folder.mkdir()
    plan = [f"{folder}:{n}:{p}" for folder, (n, p) in zip(folders, faults, strict=True)]
    # One process imports everything once and forks a child per fault.
    paths = [str(HERE), str(HERE.parent), cli_env["PYTHONPATH"]]
    done = subprocess.run(
        [sys.executable, str(HERE / "faults.py"), path, *plan],
        env={**cli_env, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    statuses = json.loads(done.stdout.splitlines()[-1])
    assert statuses == [-signal.SIGKILL] * len(faults), f"{path}: not killed where planned"
    for folder, (number, position) in zip(folders, faults, strict=True):
        # No entry lost: every append that returned before the kill is in the store.
        done = points[: number if position == "after" else number - 1]
        store = open_store(f"sqlite:///{folder / 'audit.db'}")
        try:
            found = len(store.list())
        finally:
            store.close()
        assert found == sum(p.startswith("store.append") for p in done), (path, number)
        asyncio.run(check_after(path, folder))
