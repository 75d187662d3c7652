"""``rollguard controller`` at scale on the real control plane: N RollbackPolicies, 3 replicas.

    python bench/controller_cluster.py [--deployments 100,1000,10000] [--replicas 3]
        [--measure-seconds 60] [--kills 10] [--kill-at 1000] [--lease-seconds 10]
        [--renew-deadline-seconds 7] [--retry-seconds 2] [--resync-seconds 2] [--shards 8]
        [--same-host-locks]

The control plane built by tools/kubernetes/build.sh runs on loopback
(:mod:`servers.kube_cluster`, as the tests start it). N Deployments (0 replicas:
no pod has to run; kube-controller-manager gives each its first revision) and N
RollbackPolicies are created in one namespace, each policy with an error-rate and
a p95-latency trigger against the stable version at a 5 s interval
(:func:`controller.policy_spec`). A real Prometheus scrapes the synthetic exporter
(``tests/servers/fleet.py``) serving every deployment's stable and canary series.
``--replicas`` real ``rollguard controller`` processes share the policies through
shard Leases, with one PostgreSQL audit store.

For each N, once every policy was evaluated by its replica, it measures over
``--measure-seconds``, per replica, from the replica's own ``/metrics`` and
``/proc``: analyses running, evaluations per interval, evaluation lag p50/p99
(``rollguard_controller_evaluation_lag_seconds``, interpolated in its buckets as
``histogram_quantile`` does), Prometheus queries per interval, RSS and CPU, the
requests it made to the API server (its reconcile loop's, status writer's and
Lease keeper's counters), the status writes it made and how many wait at the
end; and from kube-apiserver's own ``/metrics``
(``apiserver_request_total``) the request rate by resource, for a cross-check.

At each N of ``--kill-at``, failover: ``--kills`` times, once every policy is
evaluated by the holder of its shard's Lease, one replica (in turn) is SIGKILLed
and the time until each of its policies is evaluated again by another replica
is measured (the bench watches the policies' status: the new owner writes it at
its first evaluation); then a new replica replaces it. Each kill is also taken
apart: when every one of the victim's shard Leases had a new holder (the bench
lists them every 0.2 s), when every one of its policies' analyses had started
there (the new owner's ``Watching`` status), and when each was evaluated. The
replicas all run on this machine, where a dead process's deployment locks are
free at once (its pid is gone); as on a cluster of several hosts, the victim's
locks are recorded as held on another host right before the kill, so the new
owner waits for them to run out (``--same-host-locks``: not).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from kubernetes import client as k8s  # noqa: E402
from kubernetes import watch as k8s_watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench.controller import fleet_prometheus, policy_spec  # noqa: E402
from kube_support import deployment  # noqa: E402
from operator_support import CRD_FILE, ControllerProcess, install_crd, rollback_policy  # noqa: E402
from rollguard.operator.crd import GROUP, PLURAL, VERSION  # noqa: E402
from rollguard.operator.kube import PolicyKey  # noqa: E402
from rollguard.operator.shards import shard_of  # noqa: E402
from servers.kube_cluster import KubeCluster, new_namespace, running_kube_cluster  # noqa: E402
from servers.postgres import running_postgres  # noqa: E402
from support import wait_until  # noqa: E402

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CHUNK = 500  # objects per ``kubectl create``
METRIC = "rollguard_controller_"


# --- what the bench sees of the policies -------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A policy's status as the bench's watch saw it (``at``: the bench's monotonic clock)."""

    at: float
    name: str
    controller: str
    evaluations: int


@dataclass
class PolicyWatch:
    """Every change of the namespace's RollbackPolicies, from one watch request (whatever N)."""

    cluster: KubeCluster
    namespace: str
    log: list[Seen] = field(default_factory=list)
    latest: dict[str, Seen] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> PolicyWatch:
        self._client = self.cluster.api_client()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)
        self._client.close()

    def _run(self) -> None:
        custom = k8s.CustomObjectsApi(self._client)
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = json.loads(
                        custom.list_namespaced_custom_object(
                            GROUP, VERSION, self.namespace, PLURAL, _preload_content=False
                        ).data
                    )
                    for item in listed["items"]:
                        self._note(item)
                    version = listed["metadata"]["resourceVersion"]
                stream = k8s_watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=version,
                    timeout_seconds=30,
                )
                for event in stream:
                    if self._stop.is_set():
                        return
                    found = event["object"]
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    version = found["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._note(found)
            except ApiException as exc:
                if exc.status == 410:  # too old: list again
                    version = ""
                time.sleep(0.5)

    def _note(self, found: dict[str, Any]) -> None:
        status = found.get("status") or {}
        seen = Seen(
            time.monotonic(),
            found["metadata"]["name"],
            str(status.get("controller") or ""),
            int(status.get("evaluations") or 0),
        )
        self.log.append(seen)
        self.latest[seen.name] = seen

    def count_evaluated(self, names: list[str], replicas: set[str]) -> int:
        """How many policies of ``names`` one of ``replicas`` evaluated at least once."""
        return sum(
            1
            for seen in (self.latest.get(name) for name in names)
            if seen is not None and seen.controller in replicas and seen.evaluations >= 1
        )

    def wait_evaluated(
        self, names: list[str], replicas: set[str], *, timeout: float, alive: list[Replica]
    ) -> bool:
        """Wait until every policy of ``names`` was evaluated by one of ``replicas``;
        False at the deadline (the benchmark measures what there is)."""
        deadline = time.monotonic() + timeout
        while self.count_evaluated(names, replicas) < len(names):
            _alive(alive)
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)
        return True


# --- what the processes say about themselves ---------------------------------------------


def parse(text: str) -> Sample:
    """Prometheus' text format: (sample name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(found: Sample, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, have), value in found.items()
        if sample == name and set(labels.items()) <= set(have)
    )


def lag_quantile(before: Sample, after: Sample, q: float) -> float | None:
    """``histogram_quantile(q, ...)`` of the lag histogram's growth between two scrapes."""
    name = f"{METRIC}evaluation_lag_seconds_bucket"
    buckets = sorted(
        (float(dict(labels)["le"]), value - before.get((sample, labels), 0.0))
        for (sample, labels), value in after.items()
        if sample == name
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    low, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return low  # beyond the last finite bucket: at least this
            return low + (bound - low) * (rank - below) / max(count - below, 1e-9)
        low, below = bound, count
    return low


def process_figures(pid: int) -> dict[str, float]:
    """RSS now and at its peak (MB), and CPU seconds used so far, from /proc."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
        "cpu_s": (int(fields[11]) + int(fields[12])) / ticks,
    }


@dataclass
class Replica:
    """One ``rollguard controller`` process and where its metrics are."""

    process: ControllerProcess
    url: str = ""

    @property
    def identity(self) -> str:
        return self.process.identity

    def scrape(self) -> Sample:
        return parse(httpx.get(f"{self.url}/metrics", timeout=60).text)

    def figures(self) -> dict[str, float]:
        return process_figures(self.process.process.pid)


def apiserver_requests(cluster: KubeCluster) -> dict[str, float]:
    """kube-apiserver's own count of requests, by resource (and subresource)."""
    found = parse(cluster.kubectl("get", "--raw", "/metrics").stdout)
    by: dict[str, float] = {}
    for (sample, labels), value in found.items():
        if sample != "apiserver_request_total":
            continue
        have = dict(labels)
        resource = have.get("resource", "") + (
            f"/{have['subresource']}" if have.get("subresource") else ""
        )
        by[resource] = by.get(resource, 0.0) + value
    return by


# --- the fleet in the API server ---------------------------------------------------------


def create_fleet(
    cluster: KubeCluster, namespace: str, names: list[str], address: str, interval: float
) -> None:
    """Deployments (0 replicas) and a RollbackPolicy each, ``CHUNK`` objects a request batch."""
    executor = {"type": "kubernetes"}
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        deployments = [deployment("fleet:v1", name=name, replicas=0) for name in chunk]
        policies = [
            rollback_policy(
                name,
                namespace,
                policy_spec(address, interval, name, {**executor, "deployment": name}),
            )
            for name in chunk
        ]
        for items in (deployments, policies):
            cluster.kubectl(
                "create", "-n", namespace, "-f", "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
            )  # fmt: skip


def revisions_given(api: k8s.ApiClient, namespace: str, count: int) -> bool:
    """kube-controller-manager gave ``count`` Deployments their first revision."""
    answer = k8s.AppsV1Api(api).list_namespaced_deployment(namespace, _preload_content=False)
    items = json.loads(answer.data)["items"]
    done = sum(
        1
        for item in items
        if "deployment.kubernetes.io/revision" in (item["metadata"].get("annotations") or {})
    )
    return done >= count


def shard_holders(cluster: KubeCluster, namespace: str) -> dict[int, str]:
    """Each shard's Lease holder (``rollguard-shard-N``)."""
    listed = json.loads(
        cluster.kubectl(
            "get", "leases", "-n", namespace, "-l", "rollguard.dev/role=shard", "-o", "json"
        ).stdout
    )
    return {
        int(item["metadata"]["name"].rsplit("-", 1)[1]): str(
            item["spec"].get("holderIdentity") or ""
        )
        for item in listed["items"]
    }


# --- one N -------------------------------------------------------------------------------


@dataclass
class Run:
    """What one N needs: the cluster, its namespace, the settings, and how to start a replica."""

    cluster: KubeCluster
    namespace: str
    audit: str
    work: Path
    watch: PolicyWatch
    args: argparse.Namespace
    leases: LeaseHolders

    def start(self, *identities: str) -> list[Replica]:
        """Start the replicas at once (one after another, each would first hold every
        shard), then wait for each one's metrics address."""
        replicas = [
            Replica(
                ControllerProcess(
                    self.cluster,
                    self.work,
                    namespace=self.namespace,
                    identity=identity,
                    audit=self.audit,
                    resync_seconds=self.args.resync_seconds,
                    extra=(
                        "--lease-seconds",
                        str(self.args.lease_seconds),
                        "--renew-deadline-seconds",
                        str(self.args.renew_deadline_seconds),
                        "--retry-seconds",
                        str(self.args.retry_seconds),
                        "--shards",
                        str(self.args.shards),
                    ),
                )
            )
            for identity in identities
        ]
        for replica in replicas:
            replica.url = replica.process.health_url(timeout=180)
        return replicas


def measure(run: Run, n: int) -> dict[str, Any]:
    """Start the replicas for N policies, wait until each is evaluated, then measure."""
    args = run.args
    names = [f"d{index:05}" for index in range(n)]
    replicas = run.start(*(f"n{n}-r{index}" for index in range(args.replicas)))
    began = time.monotonic()
    try:
        ready = run.watch.wait_evaluated(
            names, {r.identity for r in replicas}, timeout=args.ready_seconds, alive=replicas
        )
        started = time.monotonic() - began
        evaluated = run.watch.count_evaluated(names, {r.identity for r in replicas})
        time.sleep(2 * args.interval)  # past the first evaluations' status writes
        before = {r.identity: (r.scrape(), r.figures()) for r in replicas}
        api_before, t0 = apiserver_requests(run.cluster), time.monotonic()
        time.sleep(args.measure_seconds)
        after = {r.identity: (r.scrape(), r.figures()) for r in replicas}
        api_after, elapsed = apiserver_requests(run.cluster), time.monotonic() - t0
        load = Path("/proc/loadavg").read_text().split()[:3]
        result: dict[str, Any] = {
            "deployments": n,
            "ready_s": started if ready else None,
            "evaluated_at_start": evaluated,
            "elapsed_s": elapsed,
            "load": load,
            "apiserver_per_s": {
                key: (api_after[key] - api_before.get(key, 0.0)) / elapsed
                for key in sorted(api_after)
                if api_after[key] - api_before.get(key, 0.0) > 0
            },
            "replicas": [
                _replica_row(
                    identity,
                    before[identity],
                    after[identity],
                    elapsed=elapsed,
                    interval=args.interval,
                )
                for identity in sorted(after)
            ],
        }
        print(json.dumps(result), file=sys.stderr, flush=True)
        if n in args.kill_at:
            result["failover"] = failover(run, replicas, names)
            print(json.dumps(result["failover"]), file=sys.stderr, flush=True)
        return result
    finally:
        for replica in replicas:
            replica.process.stop()


def _alive(replicas: list[Replica]) -> bool:
    for replica in replicas:
        replica.process.check()
    return True


def _replica_row(
    identity: str,
    scraped_before: tuple[Sample, dict[str, float]],
    scraped_after: tuple[Sample, dict[str, float]],
    *,
    elapsed: float,
    interval: float,
) -> dict[str, Any]:
    (before, figures_before), (after, figures_after) = scraped_before, scraped_after
    intervals = elapsed / interval

    def grew(name: str) -> float:
        return total(after, name) - total(before, name)

    api = grew(f"{METRIC}api_requests_total") + grew(f"{METRIC}lease_requests_total")
    return {
        "replica": identity,
        "analyses": total(after, f"{METRIC}analyses_running"),
        "shards": total(after, f"{METRIC}shards_held"),
        "evaluations_per_interval": grew(f"{METRIC}evaluations_total") / intervals,
        "lag_p50": lag_quantile(before, after, 0.5),
        "lag_p99": lag_quantile(before, after, 0.99),
        "queries_per_interval": grew(f"{METRIC}prometheus_queries_total") / intervals,
        "api_per_s": api / elapsed,
        "status_written_per_s": (
            total(after, f"{METRIC}status_writes_total", result="written")
            - total(before, f"{METRIC}status_writes_total", result="written")
        )
        / elapsed,
        "status_pending": total(after, f"{METRIC}status_writes_pending"),
        "api_by_verb_per_s": {
            dict(labels)["verb"]: (value - before.get((sample, labels), 0.0)) / elapsed
            for (sample, labels), value in after.items()
            if sample == f"{METRIC}api_requests_total"
        },
        "rss_mb": figures_after["rss_mb"],
        "peak_mb": figures_after["peak_mb"],
        "cpu_share": (figures_after["cpu_s"] - figures_before["cpu_s"]) / elapsed,
    }


# --- failover ----------------------------------------------------------------------------


def failover(run: Run, replicas: list[Replica], names: list[str]) -> list[dict[str, Any]]:
    """SIGKILL each replica in turn; seconds until all its policies are evaluated again."""
    args, kills = run.args, []
    for kill in range(args.kills):
        owners = wait_until(
            lambda: _settled(run, replicas, names),
            timeout=600,
            interval=1.0,
            what="every policy evaluated by its shard's holder",
        )
        slot = kill % len(replicas)
        victim = replicas[slot]
        orphaned = {name for name, owner in owners.items() if owner == victim.identity}
        shards = {
            index
            for index, holder in shard_holders(run.cluster, run.namespace).items()
            if holder == victim.identity
        }
        takeover = Takeover(
            run.watch, orphaned, victim.identity, len(run.watch.log), run.leases, shards
        )
        if not args.same_host_locks:
            move_locks(run.audit, victim.process.process.pid, host="another-host")
        victim.process.process.send_signal(signal.SIGKILL)
        takeover.killed = time.monotonic()
        victim.process.process.wait(timeout=10)
        wait_until(takeover.done, timeout=600, interval=0.2, what="the killed replica's policies")
        times = sorted(takeover.taken.values())
        started = sorted(takeover.started.values())
        kills.append(
            {
                "victim": victim.identity,
                "policies": len(orphaned),
                "shards": len(shards),
                "leases_taken_s": takeover.leases_taken,
                "started_max_s": started[-1] if started else None,
                # a kill that orphaned no policy measured nothing: no figure, not 0 s
                "median_s": statistics.median(times) if times else None,
                "max_s": times[-1] if times else None,
            }
        )
        print(f"kill {kill + 1}: {kills[-1]}", file=sys.stderr, flush=True)
        (replicas[slot],) = run.start(f"{victim.identity.split('-k')[0]}-k{kill + 1}")
    return kills


@dataclass
class Takeover:
    """When a killed replica's shard Leases all had a new holder, and when each of its
    policies was first seen analysed (``Watching``) and evaluated by another replica."""

    watch: PolicyWatch
    orphaned: set[str]
    victim: str
    cursor: int
    leases: LeaseHolders
    shards: set[int]
    killed: float = 0.0
    leases_taken: float | None = None
    started: dict[str, float] = field(default_factory=dict)
    taken: dict[str, float] = field(default_factory=dict)

    def done(self) -> bool:
        if self.leases_taken is None:
            holders = self.leases.holders()
            if all(
                holders.get(index, self.victim) not in ("", self.victim) for index in self.shards
            ):
                self.leases_taken = time.monotonic() - self.killed
        log = self.watch.log
        end = len(log)
        for seen in log[self.cursor : end]:
            if seen.name not in self.orphaned or seen.controller in ("", self.victim):
                continue
            self.started.setdefault(seen.name, seen.at - self.killed)
            if seen.name not in self.taken and seen.evaluations >= 1:
                self.taken[seen.name] = seen.at - self.killed
        self.cursor = end
        return len(self.taken) == len(self.orphaned) and self.leases_taken is not None


@dataclass
class LeaseHolders:
    """The shard Leases' holders, read through one client (cheaper than ``kubectl``)."""

    client: k8s.ApiClient
    namespace: str

    def holders(self) -> dict[int, str]:
        answer = k8s.CoordinationV1Api(self.client).list_namespaced_lease(
            self.namespace, label_selector="rollguard.dev/role=shard", _preload_content=False
        )
        return {
            int(item["metadata"]["name"].rsplit("-", 1)[1]): str(
                (item.get("spec") or {}).get("holderIdentity") or ""
            )
            for item in json.loads(answer.data)["items"]
        }


def move_locks(audit_url: str, pid: int, *, host: str) -> int:
    """Record the deployment locks of process ``pid`` as held on ``host`` (no survivor can
    then see that its pid is gone, as on a cluster of several machines); how many."""
    import sqlalchemy as sa

    from rollguard.audit.schema import locks

    engine = sa.create_engine(audit_url)
    try:
        with engine.begin() as connection:
            moved = connection.execute(
                sa.update(locks).where(locks.c.pid == pid).values(host=host)
            ).rowcount
    finally:
        engine.dispose()
    return int(moved)


def _settled(run: Run, replicas: list[Replica], names: list[str]) -> dict[str, str] | None:
    """Each policy's owner, once every shard is held by a live replica, each replica holds
    its share, and every policy was evaluated by its shard's holder."""
    _alive(replicas)
    live = {replica.identity for replica in replicas}
    holders = shard_holders(run.cluster, run.namespace)
    shards = run.args.shards
    if len(holders) < shards or not set(holders.values()) <= live:
        return None
    counts = [list(holders.values()).count(identity) for identity in live]
    if min(counts) < shards // len(live):
        return None
    owners = {}
    for name in names:
        owner = holders[shard_of(PolicyKey(run.namespace, name), shards)]
        seen = run.watch.latest.get(name)
        if seen is None or seen.controller != owner or seen.evaluations < 1:
            return None
        owners[name] = owner
    return owners


# --- the table ---------------------------------------------------------------------------


def print_tables(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.replicas} replicas, {args.shards} shards, "
        f"--lease-seconds {args.lease_seconds:g}, --renew-deadline-seconds "
        f"{args.renew_deadline_seconds:g}, --retry-seconds {args.retry_seconds:g}, "
        f"--resync-seconds {args.resync_seconds:g}, "
        f"interval {args.interval:g} s, "
        f"measured over {args.measure_seconds:g} s\n"
    )
    print(
        "| deployments | replica | analyses | evaluated / interval | lag p50 s | lag p99 s "
        "| queries / interval | API requests / s | status writes / s (pending) "
        "| RSS MB (peak) | CPU | load |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for result in results:
        for row in result["replicas"]:
            print(
                f"| {result['deployments']:,} | {row['replica']} | {row['analyses']:,.0f} "
                f"| {row['evaluations_per_interval']:,.0f} | {_s(row['lag_p50'])} "
                f"| {_s(row['lag_p99'])} | {row['queries_per_interval']:.1f} "
                f"| {row['api_per_s']:.1f} | {row['status_written_per_s']:.1f} "
                f"({row['status_pending']:,.0f}) | {row['rss_mb']:,.0f} ({row['peak_mb']:,.0f}) "
                f"| {row['cpu_share']:.0%} | {' '.join(result['load'])} |"
            )
    print(
        "\n| deployments | all evaluated after start s | kube-apiserver requests / s, by resource |"
    )
    print("| ---: | ---: | --- |")
    for result in results:
        rates = ", ".join(
            f"{key or '(none)'} {value:.1f}"
            for key, value in sorted(result["apiserver_per_s"].items(), key=lambda kv: -kv[1])
            if value >= 0.05
        )
        ready = result["ready_s"]
        started = (
            f"{ready:.0f}"
            if ready is not None
            else f"not within {args.ready_seconds:g} ({result['evaluated_at_start']:,} were)"
        )
        print(f"| {result['deployments']:,} | {started} | {rates} |")
    for result in results:
        kills = result.get("failover")
        if not kills:
            continue
        maxima = [kill["max_s"] for kill in kills if kill["max_s"] is not None]
        taken = (
            f"after median {statistics.median(maxima):.1f} s, max {max(maxima):.1f} s"
            if maxima
            else "never measured (no kill orphaned a policy)"
        )
        print(
            f"\nfailover at {result['deployments']:,} deployments: {len(kills)} kills, "
            f"all of a killed replica's policies evaluated again {taken} "
            f"(policies per kill: {', '.join(str(kill['policies']) for kill in kills)}; "
            f"locks {'on this host' if args.same_host_locks else 'as on another host'})\n"
        )
        print("| kill | " + " | ".join(str(k + 1) for k in range(len(kills))) + " |")
        print("| --- |" + " ---: |" * len(kills))
        for label, field_name in (
            ("policies of the killed replica", "policies"),
            ("its shards", "shards"),
            ("every shard Lease taken, s", "leases_taken_s"),
            ("every analysis started, s", "started_max_s"),
            ("all evaluated again, s", "max_s"),
        ):
            cells = [kill[field_name] for kill in kills]
            shown = [
                "—" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
                for v in cells
            ]
            print(f"| {label} | " + " | ".join(shown) + " |")


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", default="100,1000,10000")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--measure-seconds", type=float, default=60.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-at", default="1000", help="Ns to measure failover at ('' none)")
    parser.add_argument("--lease-seconds", type=float, default=10.0)
    parser.add_argument("--renew-deadline-seconds", type=float, default=7.0)
    parser.add_argument("--retry-seconds", type=float, default=2.0)
    parser.add_argument(
        "--same-host-locks",
        action="store_true",
        help="leave the victim's locks on this host (free at once: its pid is gone)",
    )
    parser.add_argument("--resync-seconds", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument(
        "--ready-seconds",
        type=float,
        default=900.0,
        help="longest wait for every policy's first evaluation (then measure what there is)",
    )
    args = parser.parse_args()
    # stopped with SIGTERM, still stop the replicas, the cluster, Prometheus and PostgreSQL
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    args.kill_at = {int(n) for n in args.kill_at.split(",") if n}
    sizes = [int(n) for n in args.deployments.split(",")]
    work = Path(tempfile.mkdtemp(prefix="rollguard-ctlbench-"))
    print(f"working in {work}", file=sys.stderr)
    results = []
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(
            running_kube_cluster(
                work / "kube",
                nodes=1,
                # thousands of Deployments get their first revision in seconds, not minutes
                controller_manager_args=("--kube-api-qps=500", "--kube-api-burst=1000"),
            )
        )
        install_crd(cluster, CRD_FILE)
        postgres = stack.enter_context(running_postgres(fsync=True))
        address = stack.enter_context(fleet_prometheus(max(sizes), work))
        api = stack.enter_context(cluster.api_client())
        namespace = stack.enter_context(new_namespace(cluster, api))
        watch = stack.enter_context(PolicyWatch(cluster, namespace))
        created = 0
        for n in sizes:
            names = [f"d{index:05}" for index in range(created, n)]
            print(f"N={n}: creating {len(names)} Deployments and policies", file=sys.stderr)
            create_fleet(cluster, namespace, names, address, args.interval)
            created = max(created, n)
            wait_until(
                lambda n=n: revisions_given(api, namespace, n),
                timeout=max(120.0, n * 0.1),
                interval=2.0,
                what=f"{n} Deployments at their first revision",
            )
            audit = postgres.create_schema(f"audit_{n}")
            run = Run(cluster, namespace, audit, work, watch, args, LeaseHolders(api, namespace))
            results.append(measure(run, n))
    print_tables(results, args)


if __name__ == "__main__":
    main()
