"""A real Kubernetes control plane for tests, from the binaries ``tools/kubernetes`` builds.

etcd, kube-apiserver (RBAC authorizer), kube-controller-manager and
kube-scheduler run as child processes on loopback, and kwok plays kubelet for
a few fake nodes: pods scheduled there become Running and Ready, so
Deployments really roll out with no containers. Every wait polls a condition
(etcd's ``/health``, the API server's ``/readyz``, nodes Ready and untainted,
the ``default`` ServiceAccount) and reports a component that exited with its
log's tail. Nothing is downloaded here: without a build the tests skip locally
and fail under ``CI=true``.

The components are started directly rather than through ``kwokctl create
cluster --runtime binary``: kwokctl v0.8.0 binds every component to 0.0.0.0 by
default, waits a fixed two minutes when the API server has already exited (and
then exits 0), and polls with whichever ``kubectl`` is first on ``PATH``.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from servers.kube_pki import LOOPBACK, Authority, KeyPair, write_kubeconfig, write_signing_key
from servers.process import exited, start_on_free_port, terminate
from support import free_port, unavailable, wait_until

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "tools" / "kubernetes" / "versions.env"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
#: kwok manages the nodes carrying this annotation (and only those).
FAKE_NODE = ("kwok.x-k8s.io/node", "fake")
#: Generous for a loaded two-core machine; a healthy start takes seconds.
START_TIMEOUT = 90.0


def tools_dist() -> Path:
    """Where ``tools/kubernetes/build.sh`` puts its output (``bin/``, ``stages/``, ``crds/``)."""
    cache = os.environ.get("ROLLGUARD_TOOLS_CACHE") or str(Path.home() / ".cache/rollguard-tools")
    return Path(cache) / "kubernetes" / "dist"


def versions() -> dict[str, str]:
    """The releases pinned in ``tools/kubernetes/versions.env``."""
    pairs = (
        line.split("=", 1)
        for line in VERSIONS.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def require_control_plane() -> Path:
    """The build's folder; skip locally (fail under CI) when it is missing or stale."""
    dist = tools_dist()
    hint = "run: bash tools/kubernetes/build.sh"
    missing = [name for name in BINARIES if not (dist / "bin" / name).is_file()]
    stamp = dist / ".stamp"
    if missing or not stamp.is_file():
        unavailable(f"the Kubernetes control plane is not built in {dist} ({hint})")
    if not stamp.read_text().startswith(VERSIONS.read_text()):
        unavailable(f"{dist} was built for other versions than {VERSIONS.name} ({hint})")
    return dist


@dataclass
class Component:
    """One running program of the control plane, logging to ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def check(self) -> None:
        """Raise with the log's tail if the program has exited."""
        code = self.process.poll()
        if code is not None:
            raise exited(self.name, code, self.log)

    def stop(self) -> None:
        terminate(self.process)


def spawn(name: str, args: list[str], directory: Path, *, port: int = 0) -> Component:
    """Start ``args`` with its output in ``directory/<name>.log``."""
    log = directory / f"{name}.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory
        )
    return Component(name, process, log, port)


def wait_answering(component: Component, probe: Callable[[], object], *, what: str) -> None:
    """Poll ``probe()`` until it is true; raise with the log as soon as the program exits."""

    def answered() -> bool:
        component.check()
        try:
            return bool(probe())
        except httpx.HTTPError:
            return False

    wait_until(answered, timeout=START_TIMEOUT, what=f"{component.name} {what}")


@dataclass
class KubeCluster:
    """A running control plane: its API server ``url`` and an admin ``kubeconfig``."""

    directory: Path
    dist: Path
    url: str
    kubeconfig: Path
    pki: Path
    components: list[Component] = field(default_factory=list)

    @property
    def bin(self) -> Path:
        return self.dist / "bin"

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built ``kubectl`` (as admin unless ``kubeconfig`` says otherwise)."""
        command = [
            str(self.bin / "kubectl"),
            f"--kubeconfig={kubeconfig or self.kubeconfig}",
            f"--cache-dir={self.directory / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def api_client(self, kubeconfig: Path | None = None) -> k8s.ApiClient:
        """A Kubernetes client (admin unless ``kubeconfig`` says otherwise); close it after use."""
        api: k8s.ApiClient = k8s_config.new_client_from_config(
            config_file=str(kubeconfig or self.kubeconfig)
        )
        return api

    def check_running(self) -> None:
        """Raise, with its log, if any component has exited."""
        for component in self.components:
            component.check()

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()


def _tls(pki: Path, client: KeyPair) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _start_etcd(directory: Path, binary: Path) -> Component:
    def start(port: int) -> Component:
        peer = f"http://{LOOPBACK}:{free_port()}"
        client = f"http://{LOOPBACK}:{port}"
        args = [
            str(binary),
            "--name=test",
            f"--data-dir={directory / f'etcd-data-{port}'}",  # new per attempt
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--unsafe-no-fsync",  # a throw-away store: fsync costs seconds on a busy disk
            "--log-level=warn",
        ]
        return spawn("etcd", args, directory, port=port)

    def healthy(etcd: Component) -> None:
        url = f"http://{LOOPBACK}:{etcd.port}/health"
        wait_answering(etcd, lambda: httpx.get(url, timeout=2).is_success, what="/health")

    return start_on_free_port(start, healthy)


def _start_apiserver(
    directory: Path, binary: Path, *, etcd: Component, pki: Path, serving: KeyPair, admin: KeyPair
) -> Component:

    def start(port: int) -> Component:
        args = [
            str(binary),
            f"--etcd-servers=http://{LOOPBACK}:{etcd.port}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={port}",
            # The `kubernetes` Service would point at 127.0.0.1, which Endpoints reject.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'service-accounts.pub'}",
            f"--service-account-signing-key-file={pki / 'service-accounts.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--profiling=false",
        ]
        return spawn("kube-apiserver", args, directory, port=port)

    def ready(apiserver: Component) -> None:
        with httpx.Client(verify=_tls(pki, admin), timeout=5) as http:
            url = f"https://{LOOPBACK}:{apiserver.port}/readyz"
            wait_answering(apiserver, lambda: http.get(url).is_success, what="/readyz")

    return start_on_free_port(start, ready)


def _start_controllers(
    cluster: KubeCluster, authority: Authority, controller_manager_args: Sequence[str] = ()
) -> None:
    """kube-controller-manager (with ``controller_manager_args``), kube-scheduler and kwok,
    each as its own user."""

    def kubeconfig(name: str, *, user: str, group: str | None = None) -> Path:
        pair = authority.issue(name, common_name=user, organization=group)
        path = cluster.directory / f"{name}.kubeconfig"
        return write_kubeconfig(path, server=cluster.url, ca=authority.cert, user=user, pair=pair)

    directory, binary = cluster.directory, cluster.bin
    controller_manager = [
        str(binary / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig('controller-manager', user='system:kube-controller-manager')}",
        "--secure-port=0",  # no metrics or health endpoint: nothing here reads them
        "--leader-elect=false",
        # Each controller acts as its own ServiceAccount under RBAC, as kubeadm runs it.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={cluster.pki / 'service-accounts.key'}",
        f"--root-ca-file={authority.cert}",
        # kwokctl's timings for kwok nodes: a node lease renewed late on a busy machine
        # must not mark the nodes NotReady (their pods would turn unready for good).
        "--node-monitor-period=25s",
        "--node-monitor-grace-period=200s",
        *controller_manager_args,
    ]
    scheduler = [
        str(binary / "kube-scheduler"),
        f"--kubeconfig={kubeconfig('scheduler', user='system:kube-scheduler')}",
        "--secure-port=0",
        "--leader-elect=false",
    ]
    stages = sorted((cluster.dist / "stages").glob("*.yaml"))
    kwok = [
        str(binary / "kwok"),
        f"--kubeconfig={kubeconfig('kwok', user='kwok-controller', group='system:masters')}",
        *(f"--config={stage}" for stage in stages),
        f"--manage-nodes-with-annotation-selector={FAKE_NODE[0]}={FAKE_NODE[1]}",
        "--node-lease-duration-seconds=200",
        f"--node-ip={LOOPBACK}",
    ]
    for name, args in (
        ("kube-controller-manager", controller_manager),
        ("kube-scheduler", scheduler),
        ("kwok", kwok),
    ):
        cluster.components.append(spawn(name, args, directory))


def add_fake_nodes(cluster: KubeCluster, api: k8s.ApiClient, count: int) -> list[str]:
    """Create ``count`` nodes that kwok manages; return once each is Ready and untainted."""
    core = k8s.CoreV1Api(api)
    names = [f"kwok-node-{index}" for index in range(count)]
    for name in names:
        core.create_node(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE[0]: FAKE_NODE[1]},
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
                },
            }
        )

    def schedulable() -> bool:
        cluster.check_running()
        nodes = {node.metadata.name: node for node in core.list_node().items}
        return all(name in nodes and _schedulable(nodes[name]) for name in names)

    wait_until(schedulable, timeout=START_TIMEOUT, what=f"nodes {names} Ready and untainted")
    return names


def _schedulable(node: Any) -> bool:
    ready = any(
        condition.type == "Ready" and condition.status == "True"
        for condition in node.status.conditions or []
    )
    # The node lifecycle controller taints a node not-ready until it has seen it Ready.
    return ready and not node.spec.taints


def wait_for_service_account(cluster: KubeCluster, api: k8s.ApiClient, namespace: str) -> None:
    """The ``default`` ServiceAccount, without which no pod is admitted in ``namespace``."""
    core = k8s.CoreV1Api(api)

    def exists() -> bool:
        cluster.check_running()
        found = core.list_namespaced_service_account(
            namespace, field_selector="metadata.name=default"
        )
        return bool(found.items)

    wait_until(exists, timeout=START_TIMEOUT, what=f"ServiceAccount {namespace}/default")


@contextmanager
def new_namespace(cluster: KubeCluster, api: k8s.ApiClient) -> Iterator[str]:
    """A namespace of its own, ready for pods; deleted afterwards (not waited for)."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        wait_for_service_account(cluster, api, name)
        yield name
    finally:
        core.delete_namespace(name)


@contextmanager
def running_kube_cluster(
    directory: Path, *, nodes: int = 3, controller_manager_args: Sequence[str] = ()
) -> Iterator[KubeCluster]:
    """Start a control plane in ``directory`` with ``nodes`` fake nodes; stop it on the way out.

    ``controller_manager_args`` go to kube-controller-manager (a benchmark creating
    thousands of Deployments raises its client's rate limit).
    """
    dist = require_control_plane()
    directory.mkdir(parents=True, exist_ok=True)
    pki = directory / "pki"
    authority = Authority(pki)
    write_signing_key(pki, "service-accounts")
    admin = authority.issue(
        "admin", common_name="rollguard-test-admin", organization="system:masters"
    )
    serving = authority.issue("apiserver", common_name="kube-apiserver", server=True)
    with ExitStack() as stack:
        etcd = _start_etcd(directory, dist / "bin" / "etcd")
        stack.callback(etcd.stop)
        apiserver = _start_apiserver(
            directory,
            dist / "bin" / "kube-apiserver",
            etcd=etcd,
            pki=pki,
            serving=serving,
            admin=admin,
        )
        stack.callback(apiserver.stop)
        url = f"https://{LOOPBACK}:{apiserver.port}"
        kubeconfig = write_kubeconfig(
            directory / "admin.kubeconfig", server=url, ca=authority.cert, user="admin", pair=admin
        )
        cluster = KubeCluster(directory, dist, url, kubeconfig, pki, [etcd, apiserver])
        stack.callback(cluster.stop)
        _start_controllers(cluster, authority, controller_manager_args)
        api = stack.enter_context(cluster.api_client())
        add_fake_nodes(cluster, api, nodes)
        wait_for_service_account(cluster, api, "default")
        yield cluster
