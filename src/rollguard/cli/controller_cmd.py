"""``rollguard controller``: watch RollbackPolicy resources in a Kubernetes cluster."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from rollguard.cli.serve_cmd import LogLevel

HELP = """Evaluate every RollbackPolicy resource in the cluster (or --namespace).

Each policy's spec is a policy file's content; a new revision of its
Deployment starts an analysis, a policy edit is picked up at the next
resync. Install the CRD first: `rollguard generate crd | kubectl apply -f -`
(or the Helm chart, docs/controller.md). Runs until SIGTERM or Ctrl-C.

/healthz (the loop is alive), /readyz (API server, audit store and shard
Leases answer) and /metrics listen on --health-address (loopback by default;
port 0 picks a free one, logged at start).

Exit codes: 0 stopped · 2 invalid input (no usable Kubernetes credentials too)
· 6 the audit store cannot be opened.
"""


def controller(  # noqa: PLR0917 (typer passes options positionally)
    audit_url: str = typer.Option(
        ...,
        help="Audit store URL (sqlite:///PATH, or postgresql://... shared by every replica).",
    ),
    kubeconfig: Path | None = typer.Option(  # noqa: B008
        None, help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."
    ),
    context: str | None = typer.Option(None, help="Kubeconfig context (default: current)."),
    in_cluster: bool = typer.Option(
        False, "--in-cluster", help="Use the pod's service account instead of a kubeconfig."
    ),
    namespace: str | None = typer.Option(
        None, "--namespace", "-n", help="Only this namespace's policies (default: all)."
    ),
    identity: str | None = typer.Option(
        None, help="This replica's name in status and Leases (default: HOSTNAME-PID)."
    ),
    resync_seconds: float = typer.Option(
        2.0, min=0.1, help="How often to list policies and Deployments."
    ),
    watch_seconds: float = typer.Option(
        3600.0, min=1.0, help="How long one revision is analysed before it is called healthy."
    ),
    shards: int = typer.Option(
        8, min=1, max=1024, help="Shards the policies are split into (the same on every replica)."
    ),
    lease_seconds: float = typer.Option(
        10.0,
        min=1.0,
        help="A shard Lease's duration: how long it must stay unrenewed before another "
        "replica takes it (a killed replica's policies move after about this).",
    ),
    renew_deadline_seconds: float = typer.Option(
        7.0,
        min=0.5,
        help="How long after its last successful renewal a replica still acts on a shard's "
        "policies; shorter than --lease-seconds.",
    ),
    retry_seconds: float = typer.Option(
        2.0,
        min=0.1,
        help="How often each replica renews its Leases and looks for free shards; shorter "
        "than --renew-deadline-seconds.",
    ),
    lease_namespace: str | None = typer.Option(
        None, help="Namespace of the shard Leases (default: --namespace, else 'default')."
    ),
    health_address: str = typer.Option(
        "127.0.0.1:8080",
        help="HOST:PORT for /healthz, /readyz and /metrics (0.0.0.0:8080 in a pod; port 0: any).",
    ),
    log_level: LogLevel = typer.Option(LogLevel.INFO, help="How much to log."),  # noqa: B008
) -> None:
    import logging

    from rollguard.audit.factory import open_store
    from rollguard.errors import UsageError
    from rollguard.operator.probes import parse_address
    from rollguard.operator.run import Options, run
    from rollguard.operator.shards import LeaseTiming

    address = parse_address(health_address)
    timing = LeaseTiming(lease_seconds, renew_deadline_seconds, retry_seconds)
    problem = timing.problem()
    if problem is not None:
        raise UsageError(
            f"--lease-seconds {lease_seconds:g}, --renew-deadline-seconds "
            f"{renew_deadline_seconds:g}, --retry-seconds {retry_seconds:g}: {problem}"
        )
    store = open_store(audit_url, base_dir=Path.cwd(), field="--audit-url")
    options = Options(
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        namespace=namespace,
        identity=identity or f"{socket.gethostname()}-{os.getpid()}",
        resync_seconds=resync_seconds,
        watch_seconds=watch_seconds,
        lease_namespace=lease_namespace or namespace or "default",
        shards=shards,
        timing=timing,
        health_address=address,
    )
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if log_level is not LogLevel.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    run(options, store)
