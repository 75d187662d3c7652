"""A RollbackPolicy's spec as a :class:`~rollguard.policy.model.Policy`, checked by the model.

The CRD's schema refuses most bad specs at ``kubectl apply``; what a schema
cannot say (cross-field rules, a threshold beyond what its signal can take) is
refused here by the same code ``rollguard policy check`` runs, and reported
on the resource (condition ``SpecValid`` false, naming the field).

A policy acts in its own namespace only: a Kubernetes executor's ``namespace``
is the policy's, whatever the spec says, so a RollbackPolicy cannot reach a
Deployment its author could not.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from rollguard.errors import PolicyError
from rollguard.operator.kube import Obj, PolicyKey
from rollguard.policy.load import parse_policy
from rollguard.policy.model import Policy


@dataclass(frozen=True)
class Parsed:
    """A policy resource as the controller reads it: its policy, or why it has none."""

    key: PolicyKey
    generation: int
    policy: Policy | None
    problem: str | None

    @property
    def deployment(self) -> str | None:
        return self.policy.target.deployment if self.policy else None


def key_of(obj: Obj) -> PolicyKey:
    return PolicyKey(obj["metadata"]["namespace"], obj["metadata"]["name"])


def parse(obj: Obj) -> Parsed:
    """The policy in ``obj['spec']`` (acting in ``obj``'s namespace), or its problems."""
    key = key_of(obj)
    generation = int(obj["metadata"].get("generation") or 0)
    spec = _in_namespace(dict(obj.get("spec") or {}), key.namespace)
    try:
        policy = parse_policy(_yaml(spec), source=f"RollbackPolicy {key}")
    except PolicyError as exc:
        said = "; ".join(f"spec.{p.field}: {p.message}" for p in exc.problems)
        return Parsed(key, generation, None, said)
    refused = refusal(policy)
    if refused is not None:
        return Parsed(key, generation, None, refused)
    return Parsed(key, generation, policy, None)


#: Executors a RollbackPolicy may use: the others act on the controller's own machine.
EXECUTORS = ("kubernetes", "noop")
#: Metrics sources a RollbackPolicy may use: services reached over the network, never a
#: program or a file on the controller's machine (``command``, ``replay``).
METRICS = (
    "prometheus",
    "scrape",
    "influxdb",
    "graphite",
    "loki",
    "cloudwatch",
    "datadog",
    "newrelic",
    "web",
)


def refusal(policy: Policy) -> str | None:
    """Why a policy valid as a file is not valid as a resource: whoever may create a
    RollbackPolicy must not run commands or read files on the controller's machine."""
    if policy.target.executor.type not in EXECUTORS:
        return (
            f"spec.target.executor.type: {policy.target.executor.type!r} runs on the "
            f"controller's machine; a RollbackPolicy uses {' or '.join(EXECUTORS)}"
        )
    if policy.metrics.provider not in METRICS:
        return (
            f"spec.metrics.provider: {policy.metrics.provider!r} runs on the controller's "
            f"machine; a RollbackPolicy uses one of {', '.join(METRICS)}"
        )
    files = {
        "metrics.ca_file": bool(getattr(policy.metrics, "ca_file", None)),
        "baseline.file": bool(policy.baseline.file),
        "runtime_security.access_log": bool(
            policy.runtime_security and policy.runtime_security.access_log
        ),
        "runtime_security.falco_listen": bool(
            policy.runtime_security and policy.runtime_security.falco_listen
        ),
        "security_trigger.ignore_file": bool(
            policy.security_trigger and policy.security_trigger.ignore_file
        ),
    }
    named = [field for field, used in files.items() if used]
    if named:
        return (
            f"spec.{named[0]}: a RollbackPolicy cannot read files or listen on the "
            "controller's machine"
        )
    return None


def _in_namespace(spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    target = spec.get("target")
    if isinstance(target, dict):
        executor = target.get("executor")
        if isinstance(executor, dict) and executor.get("type") == "kubernetes":
            target = {**target, "executor": {**executor, "namespace": namespace}}
            spec = {**spec, "target": target}
    return spec


def _yaml(spec: dict[str, Any]) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(spec, out)
    return out.getvalue()
