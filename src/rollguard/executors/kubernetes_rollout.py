"""``kubectl rollout`` semantics on plain Deployment and ReplicaSet JSON: pure functions.

How ``rollout undo`` picks the ReplicaSet to return to, how ``rollout status``
reads progress, and how rollguard recognizes a Deployment it already rolled
back. No I/O here, so these rules are tested on their own.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
ROLLED_BACK_TO = "rollguard.dev/rolled-back-to"
ISOLATED = "rollguard.dev/isolated"
REPLICAS_BEFORE_SCALE = "rollguard.dev/replicas-before-scale"
REPLICA_TOTAL = "rollguard.dev/replica-total"
# Annotations ``kubectl rollout undo`` does not copy from the ReplicaSet.
NOT_COPIED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


def rollout_progress(deployment: Obj) -> tuple[bool, str, bool]:
    """(done, message, failed) from a Deployment, as ``kubectl rollout status`` reads it."""
    name = deployment["metadata"]["name"]
    spec, status = deployment["spec"], deployment.get("status") or {}
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False, "waiting for the deployment spec update to be observed", False
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return False, f"deployment/{name} exceeded its progress deadline", True
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return False, f"{updated} of {wanted} new replicas updated", False
    if total > updated:
        return False, f"{total - updated} old replicas pending termination", False
    if available < updated:
        return False, f"{available} of {updated} updated replicas available", False
    return True, f"deployment/{name} successfully rolled out", False


def pick_revision(
    deployment: Obj, owned: list[Obj], to_revision: int | None
) -> tuple[Obj | None, str]:
    """The ReplicaSet to roll back to, or None and why not."""
    name = deployment["metadata"]["name"]
    by_revision: dict[int, Obj] = {}
    for rs in owned:
        raw = (rs["metadata"].get("annotations") or {}).get(REVISION)
        if raw is not None and raw.isdigit():
            by_revision[int(raw)] = rs
    known = ", ".join(str(r) for r in sorted(by_revision)) or "none"
    if to_revision is not None:
        if to_revision not in by_revision:
            return None, (
                f"revision {to_revision} of deployment/{name} not found "
                f"(target.executor.to_revision; revisions: {known})"
            )
        return by_revision[to_revision], ""
    current_raw = (deployment["metadata"].get("annotations") or {}).get(REVISION, "0")
    current = int(current_raw) if current_raw.isdigit() else max(by_revision, default=0)
    previous = [revision for revision in by_revision if revision < current]
    if not previous:
        return None, (
            f"deployment/{name} has no previous revision to roll back to "
            f"(current revision {current}; revisions: {known})"
        )
    return by_revision[max(previous)], ""


def _without_hash(template: Obj) -> Any:
    clean = copy.deepcopy(template)
    (clean.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return clean


def same_template(a: Obj, b: Obj) -> bool:
    return bool(_without_hash(a) == _without_hash(b))


def rolled_back(deployment: Obj, owned: list[Obj]) -> bool:
    """The Deployment runs the template rollguard rolled it back to."""
    wanted = (deployment["metadata"].get("annotations") or {}).get(ROLLED_BACK_TO)
    if not wanted:
        return False
    template = deployment["spec"]["template"]
    return any(
        rs["metadata"].get("labels", {}).get(HASH_LABEL) == wanted
        and same_template(rs["spec"]["template"], template)
        for rs in owned
    )


def undo_changes(deployment: Obj, target: Obj) -> tuple[Obj, dict[str, str]]:
    """The template and annotations ``rollout undo`` writes to return to ``target``.

    The template is the ReplicaSet's minus its ``pod-template-hash`` label; the
    annotations are the Deployment's, overlaid with the ReplicaSet's (except
    those kubectl does not copy), plus the hash rollguard rolled back to.
    """
    template = copy.deepcopy(target["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("labels", {}).pop(HASH_LABEL, None)
    annotations = dict(deployment["metadata"].get("annotations") or {})
    for key, value in (target["metadata"].get("annotations") or {}).items():
        if key not in NOT_COPIED:
            annotations[key] = value
    annotations[ROLLED_BACK_TO] = target["metadata"].get("labels", {}).get(HASH_LABEL, "")
    annotations.pop(ISOLATED, None)
    return template, annotations
