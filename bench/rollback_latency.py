"""Decision → 100 % of traffic on stable, through a real HAProxy.

    python bench/rollback_latency.py [--trials 20]

Starts HAProxy (Debian ``haproxy``) in front of two loopback HTTP servers that
answer their version name, puts the canary at 20 %, keeps two client threads
sending requests through HAProxy, then calls the HAProxy executor's
``rollback`` (and, separately, ``isolate``) and measures from the call
("decision") to:

- *confirmed*: the executor returned, having read HAProxy's state back;
- *all on stable*: the send time of the first request after which every request
  was answered by stable (in-flight requests that reached the canary count);
- *last canary*: the last canary answer received.

Goal (issue 3): under 100 ms to 100 % on stable. Prints the median, p90 and max
over the trials, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from rollguard.executors.haproxy import HaproxyExecutor  # noqa: E402
from rollguard.policy.model import HaproxyExecutorSpec  # noqa: E402
from servers.haproxy import BACKEND, HaproxyServer, running_haproxy  # noqa: E402
from servers.version_http import running_version_servers  # noqa: E402

CLIENT_THREADS = 2


class Load:
    """Client threads sending requests through HAProxy, logging (sent, received, version)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.log: list[tuple[float, float, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(CLIENT_THREADS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                sent = time.perf_counter()
                version = client.get("/").text.strip()
                with self._lock:
                    self.log.append((sent, time.perf_counter(), version))

    def since(self, start: float) -> list[tuple[float, float, str]]:
        with self._lock:
            return sorted(entry for entry in self.log if entry[1] >= start)


def one_trial(
    haproxy: HaproxyServer, executor: HaproxyExecutor, load: Load, action: str
) -> tuple[float, float, float]:
    haproxy.command(
        f"set server {BACKEND}/canary state ready;set server {BACKEND}/canary weight 20;"
        f"set server {BACKEND}/stable weight 80"
    )
    settle = time.perf_counter()
    while not any(
        v == "canary" for _, _, v in load.since(settle)
    ):  # traffic really reaches the canary
        time.sleep(0.005)
    decision = time.perf_counter()
    result = asyncio.run(getattr(executor, action)())
    confirmed = time.perf_counter()
    if not result.ok:
        raise SystemExit(f"{action} failed: {result.detail}")
    time.sleep(0.2)  # let the load show where traffic goes after the switch
    entries = load.since(decision - 1.0)
    canary = [e for e in entries if e[2] == "canary"]
    last_canary_sent = max((e[0] for e in canary), default=decision)
    last_canary_received = max((e[1] for e in canary), default=decision)
    first_stable_run = min((e[0] for e in entries if e[0] > last_canary_sent), default=confirmed)
    return (
        1000 * (confirmed - decision),
        1000 * max(0.0, first_stable_run - decision),
        1000 * max(0.0, last_canary_received - decision),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_version_servers("stable", "canary") as versions,
        running_haproxy(
            Path(tmp),
            stable=versions["stable"].address,
            canary=versions["canary"].address,
            canary_weight=20,
        ) as haproxy,
        Load(haproxy.url) as load,
    ):
        executor = HaproxyExecutor(
            HaproxyExecutorSpec(socket=str(haproxy.socket_path), backend=BACKEND)
        )
        rows = []
        for action in ("rollback", "isolate"):
            trials = [one_trial(haproxy, executor, load, action) for _ in range(args.trials)]
            for index, label in enumerate(("confirmed", "all on stable", "last canary answer")):
                values = sorted(t[index] for t in trials)
                p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
                rows.append((action, label, statistics.median(values), p90, values[-1]))
        served = len(load.log)
    print(
        f"HAProxy executor, {args.trials} trials per action, "
        f"{CLIENT_THREADS} client threads, {served} requests"
    )
    print(f"{'action':<10} {'decision ->':<20} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
    for action, label, median, p90, worst in rows:
        print(f"{action:<10} {label:<20} {median:>10.2f} {p90:>8.2f} {worst:>8.2f}")


if __name__ == "__main__":
    main()
