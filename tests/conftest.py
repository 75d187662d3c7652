"""Suite-wide fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from ruamel.yaml import YAML

from servers.haproxy import HaproxyServer, running_haproxy
from servers.kube_cluster import KubeCluster, new_namespace, running_kube_cluster
from servers.version_http import VersionServer, running_version_servers
from support import Run

ROOT = Path(__file__).resolve().parents[1]
#: Real output of the real tools (Trivy, Grype, SARIF, Artillery, k6, Locust, Falco,
#: Prometheus), kept in the repository so every checkout tests against them.
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def private_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Command run locks (processes.run_lock) of this session only: other checkouts' test
    runs on the machine use the same deployment names."""
    folder = tmp_path_factory.mktemp("run")
    folder.chmod(0o700)
    before = os.environ.get("ROLLGUARD_RUN_DIR")
    os.environ["ROLLGUARD_RUN_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("ROLLGUARD_RUN_DIR", None)
    else:
        os.environ["ROLLGUARD_RUN_DIR"] = before


@pytest.fixture
def rollguard_cmd() -> list[str]:
    """The CLI as a subprocess command, importing this tree's sources."""
    return [sys.executable, "-m", "rollguard"]


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: this tree's ``src`` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def run_cli(rollguard_cmd: list[str], cli_env: dict[str, str], tmp_path: Path) -> Run:
    """Run the CLI in ``tmp_path``; extra environment variables by keyword ``env``.

    ``timeout`` (seconds) is for commands that run long on purpose, such as ``demo``.
    """

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**cli_env, **(env or {})}
        return subprocess.run(
            [*rollguard_cmd, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def fixtures_dir() -> Path:
    """The real tools' output files (see each folder's SOURCES.md)."""
    return FIXTURES


@pytest.fixture(scope="module")
def version_servers() -> Iterator[dict[str, VersionServer]]:
    """Real ``stable`` and ``canary`` HTTP servers, each answering with its name."""
    with running_version_servers("stable", "canary") as servers:
        yield servers


@pytest.fixture
def canary_haproxy(
    version_servers: dict[str, VersionServer], tmp_path: Path
) -> Iterator[HaproxyServer]:
    """A real HAProxy with 20% of the traffic on the canary."""
    with running_haproxy(
        tmp_path / "haproxy",
        stable=version_servers["stable"].address,
        canary=version_servers["canary"].address,
        canary_weight=20,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """A real control plane for the session: etcd, kube-apiserver (RBAC), controller manager,
    scheduler, and three kwok nodes whose pods become Running and Ready."""
    with running_kube_cluster(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kube_admin(kube_cluster: KubeCluster) -> Iterator[k8s.ApiClient]:
    """A Kubernetes client for the cluster as a member of ``system:masters``."""
    with kube_cluster.api_client() as api:
        yield api


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster, kube_admin: k8s.ApiClient) -> Iterator[str]:
    """A new namespace for one test, ready for pods; deleted afterwards (not waited for)."""
    with new_namespace(kube_cluster, kube_admin) as name:
        yield name


#: The router CRDs, from the modules tools/kubernetes/build.sh took them from.
GATEWAY_HTTPROUTE = "gateway-api/gateway.networking.k8s.io_httproutes.yaml"
ISTIO = "istio.yaml"


@pytest.fixture(scope="session")
def router_crds(kube_cluster: KubeCluster) -> list[str]:
    """The Gateway API's HTTPRoute and Istio's VirtualService CRDs, installed and Established,
    so the API server checks every router write against their real schemas."""
    crds, yaml = kube_cluster.dist / "crds", YAML(typ="safe")
    httproute = yaml.load(crds / GATEWAY_HTTPROUTE)
    virtualservice = next(
        doc
        for doc in yaml.load_all(crds / ISTIO)
        if doc and doc["spec"]["names"]["kind"] == "VirtualService"
    )
    names = []
    for crd in (httproute, virtualservice):
        # create, not apply: apply's last-applied annotation would exceed the size limit.
        kube_cluster.kubectl("create", "-f", "-", stdin=json.dumps(crd))
        names.append(crd["metadata"]["name"])
    kube_cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )
    return names
