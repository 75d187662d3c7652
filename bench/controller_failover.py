"""Failover of ``rollguard controller`` replicas on the real control plane.

Three real controller processes (one PostgreSQL audit store) evaluate N
RollbackPolicies on healthy canaries; the replica owning the most policies is
SIGKILLed, and the time until each of its policies is watched again by another
replica (``status.controller`` changed, phase ``Watching``) is measured; the
killed replica is then started again. Usage::

    python bench/controller_failover.py [--policies 12] [--kills 3] [--lease-seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from kube_support import deployment  # noqa: E402
from operator_support import (  # noqa: E402
    CRD_FILE,
    ControllerProcess,
    install_crd,
    policy_status,
    rollback_policy,
    scrape_policy,
    serving,
)
from servers.kube_cluster import KubeCluster, new_namespace, running_kube_cluster  # noqa: E402
from servers.postgres import running_postgres  # noqa: E402


def _owners(cluster: KubeCluster, namespace: str, names: list[str]) -> dict[str, str] | None:
    owners = {}
    for name in names:
        status = policy_status(cluster, namespace, name)
        if status.get("phase") != "Watching" or not status.get("controller"):
            return None
        owners[name] = status["controller"]
    return owners


def _wait(condition: object, timeout: float = 180.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.1)
    raise SystemExit("timed out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=12)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--lease-seconds", default="10")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rollguard-failover-"))
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(running_kube_cluster(work / "kube"))
        install_crd(cluster, CRD_FILE)
        postgres = stack.enter_context(running_postgres())
        audit = postgres.create_schema("failover")
        api = stack.enter_context(cluster.api_client())
        namespace = stack.enter_context(new_namespace(cluster, api))
        stable = stack.enter_context(serving(0.0))
        canary = stack.enter_context(serving(0.0))
        names = [f"svc-{index}" for index in range(args.policies)]
        items = []
        for name in names:
            items.append(deployment("svc:v1", name=name, replicas=1))
            items.append(rollback_policy(name, namespace, scrape_policy(name, stable, canary)))
        cluster.kubectl(
            "apply", "-n", namespace, "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )  # fmt: skip
        extra = ("--lease-seconds", args.lease_seconds, "--log-level", "warning")

        def start(identity: str) -> ControllerProcess:
            return ControllerProcess(
                cluster, work, namespace=namespace, identity=identity, audit=audit, extra=extra
            )

        replicas = {f"replica-{i}": start(f"replica-{i}") for i in range(3)}
        times = []
        try:
            for kill in range(args.kills):
                before = _wait(lambda: _owners(cluster, namespace, names))
                assert isinstance(before, dict)
                counts = {r: list(before.values()).count(r) for r in replicas}
                victim = max(counts, key=lambda r: counts[r])
                orphaned = [name for name, owner in before.items() if owner == victim]
                replicas[victim].process.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                replicas[victim].process.wait(timeout=10)

                def moved(orphaned: list[str] = orphaned, victim: str = victim) -> bool:
                    owners = _owners(cluster, namespace, orphaned)
                    return bool(owners) and victim not in owners.values()  # type: ignore[union-attr]

                _wait(moved)
                took = time.monotonic() - killed
                times.append(took)
                print(f"kill {kill + 1}: {victim} owned {len(orphaned)}; all moved in {took:.1f} s")
                replicas[victim] = start(victim)
        finally:
            for replica in replicas.values():
                replica.stop()
    print(
        f"| {args.policies} | 3 | {args.lease_seconds} | {len(times)} | "
        f"{statistics.median(times):.1f} | {max(times):.1f} |"
    )


if __name__ == "__main__":
    main()
