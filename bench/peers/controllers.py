"""The real Argo Rollouts and Flagger controllers, run as processes outside the cluster.

Both run as their development guides describe (Argo Rollouts: docs/CONTRIBUTING.md,
"Running Controller Locally"; Flagger: docs/gitbook/dev/dev-guide.md, ``-kubeconfig``
and ``-mesh-provider``), with the binaries and CRDs that ``tools/peers/build.sh``
built from the same module versions. Nothing is downloaded here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s

from servers.kube_cluster import Component, KubeCluster, spawn
from support import free_port, unavailable, wait_until

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "tools" / "peers" / "versions.env"
BINARIES = ("rollouts-controller", "flagger")
HINT = "run: bash tools/peers/build.sh"


def peers_dist() -> Path:
    """Where ``tools/peers/build.sh`` puts its output (``bin/``, ``crds/``)."""
    cache = os.environ.get("ROLLGUARD_TOOLS_CACHE") or str(Path.home() / ".cache/rollguard-tools")
    return Path(cache) / "peers" / "dist"


def versions() -> dict[str, str]:
    """The releases pinned in ``tools/peers/versions.env``."""
    pairs = (
        line.split("=", 1)
        for line in VERSIONS.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def require_peers() -> Path:
    """The build's folder; skip locally (fail under CI) when it is missing or stale."""
    dist = peers_dist()
    missing = [name for name in BINARIES if not (dist / "bin" / name).is_file()]
    stamp = dist / ".stamp"
    if missing or not stamp.is_file():
        unavailable(f"Argo Rollouts and Flagger are not built in {dist} ({HINT})")
    if not stamp.read_text().startswith(VERSIONS.read_text()):
        unavailable(f"{dist} was built for other versions than {VERSIONS.name} ({HINT})")
    return dist


def install_crds(cluster: KubeCluster, dist: Path) -> None:
    """Both tools' CRDs, server-side as Argo Rollouts' guide applies them; wait until served."""
    files = [
        *sorted((dist / "crds" / "argo-rollouts").glob("*.yaml")),
        dist / "crds" / "flagger.yaml",
    ]
    names: list[str] = []
    for path in files:
        applied = cluster.kubectl("apply", "--server-side", "-o", "name", "-f", str(path))
        names += [line.split("/", 1)[1] for line in applied.stdout.split()]
    with cluster.api_client() as api:
        crds = k8s.ApiextensionsV1Api(api)

        def established() -> bool:
            # A CRD just created may have no conditions yet (``kubectl wait`` then fails).
            return all(
                any(
                    c.type == "Established" and c.status == "True"
                    for c in crds.read_custom_resource_definition(name).status.conditions or []
                )
                for name in names
            )

        wait_until(established, timeout=60, what=f"CRDs established: {', '.join(names)}")
    # Argo Rollouts' guide: the controller expects its own namespace to exist.
    if cluster.kubectl("get", "namespace", "argo-rollouts", check=False).returncode:
        cluster.kubectl("create", "namespace", "argo-rollouts")


@dataclass
class Peers:
    """The two running controllers."""

    argo: Component
    flagger: Component

    def check_running(self) -> None:
        """Raise, with its log, if either controller has exited."""
        self.argo.check()
        self.flagger.check()


@contextmanager
def running_peers(
    cluster: KubeCluster, prometheus_url: str, *, control_loop_seconds: float = 10.0
) -> Iterator[Peers]:
    """Install the CRDs, start both controllers against ``cluster``; stop them afterwards.

    ``control_loop_seconds`` is Flagger's ``-control-loop-interval`` (documented
    default 10 s), scaled with everything else by the caller."""
    dist = require_peers()
    install_crds(cluster, dist)
    directory = cluster.directory
    kubeconfig = str(cluster.kubeconfig)
    with ExitStack() as stack:
        argo = spawn(
            "rollouts-controller",
            [
                str(dist / "bin" / "rollouts-controller"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                f"--metricsPort={free_port()}",
                f"--healthzPort={free_port()}",
                "--loglevel=info",
            ],
            directory,
        )
        stack.callback(argo.stop)
        flagger = spawn(
            "flagger",
            [
                str(dist / "bin" / "flagger"),
                f"-kubeconfig={kubeconfig}",
                "-mesh-provider=kubernetes",
                f"-metrics-server={prometheus_url}",
                f"-control-loop-interval={control_loop_seconds:g}s",
                f"-port={free_port()}",
                "-log-level=info",
            ],
            directory,
        )
        stack.callback(flagger.stop)
        yield Peers(argo, flagger)
