"""The ``RollbackPolicy`` CustomResourceDefinition (``rollguard.dev/v1alpha1``).

Generated, never hand-written: the spec's schema comes from the policy model
(:mod:`rollguard.operator.schema`), so the chart's copy
(``deploy/helm/rollguard/crds/``) is the output of ``rollguard generate crd``
and a test keeps the two equal.
"""

from __future__ import annotations

from typing import Any

from rollguard.operator.schema import Schema, structural
from rollguard.policy.model import Policy

GROUP = "rollguard.dev"
VERSION = "v1alpha1"
KIND = "RollbackPolicy"
PLURAL = "rollbackpolicies"
SINGULAR = "rollbackpolicy"
NAME = f"{PLURAL}.{GROUP}"
API_VERSION = f"{GROUP}/{VERSION}"


class Phase:
    """The values of ``status.phase``."""

    WATCHING = "Watching"
    ROLLED_BACK = "RolledBack"
    BLOCKED = "Blocked"
    INCONCLUSIVE = "Inconclusive"
    IDLE = "Idle"
    FAILED = "Failed"  # the action was attempted and did not complete

    ALL = (WATCHING, ROLLED_BACK, BLOCKED, INCONCLUSIVE, IDLE, FAILED)


def _condition() -> Schema:
    """A ``metav1.Condition``, as Kubernetes' own types declare it."""
    return {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": {"type": "string", "maxLength": 316},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": {"type": "string", "maxLength": 1024},
            "message": {"type": "string", "maxLength": 32768},
        },
    }


def status_schema() -> Schema:
    """``status``: written by the controller through the status subresource only."""
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "What the controller last saw and decided; written by the controller.",
        "properties": {
            "phase": {"type": "string", "enum": list(Phase.ALL)},
            "revision": {
                "type": "string",
                "description": "The Deployment revision under analysis.",
            },
            "settledRevision": {
                "type": "string",
                "description": "The Deployment's revision once the analysis ended (after a "
                "rollback, the restored one); a new analysis starts when it moves on.",
            },
            "decision": {
                "type": "object",
                "description": "The current decision and its evidence summary.",
                "properties": {
                    "action": text,
                    "trigger": text,
                    "reason": text,
                    "severity": text,
                    "at": {"type": "string", "format": "date-time"},
                    "evidence": {"type": "array", "items": text},
                },
            },
            "lastEvaluation": {"type": "string", "format": "date-time"},
            "evaluations": {"type": "integer", "format": "int64", "minimum": 0},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "shard": {"type": "integer", "minimum": 0},
            "controller": {
                "type": "string",
                "description": "The replica evaluating this policy.",
            },
            "conditions": {
                "type": "array",
                "items": _condition(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    }


def printer_columns() -> list[dict[str, Any]]:
    """What ``kubectl get rollbackpolicies`` shows."""

    def column(name: str, kind: str, path: str, priority: int = 0) -> dict[str, Any]:
        found: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
        if priority:
            found["priority"] = priority
        return found

    return [
        column("Deployment", "string", ".spec.target.deployment"),
        column("Phase", "string", ".status.phase"),
        column("Action", "string", ".status.decision.action"),
        column("Trigger", "string", ".status.decision.trigger"),
        column("Revision", "string", ".status.revision"),
        column("Last-Evaluation", "date", ".status.lastEvaluation"),
        column("Reason", "string", ".status.decision.reason", priority=1),
        column("Controller", "string", ".status.controller", priority=1),
        column("Age", "date", ".metadata.creationTimestamp"),
    ]


def manifest() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    spec = structural(Policy)
    spec["description"] = (
        "A rollguard policy (the policy file's schema); target.deployment names the "
        "Deployment in this namespace."
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["rbp"],
                "categories": ["rollguard"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def manifest_yaml() -> str:
    """:func:`manifest` as YAML, as the chart ships it."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    out.write("# Generated by `rollguard generate crd`; do not edit.\n")
    yaml.dump(manifest(), out)
    return out.getvalue()
