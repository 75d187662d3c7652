"""Pick the executor a policy names (``target.executor.type``).

Each backend is imported only when a policy asks for it, so a policy for the
local router never imports the Kubernetes client. An unknown type cannot get
here: the policy schema rejects it with the file and line (no silent fallback,
unlike Flagger's default to Prometheus).

To add a backend, write ``executors/<name>.py`` and one loader below, keyed by
the ``type`` its spec in ``policy/model.py`` declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollguard.errors import ExecutorError
from rollguard.executors.base import Executor
from rollguard.policy.model import Policy

Loader = Callable[[Any, Policy], Executor]


def _local(spec: Any, policy: Policy) -> Executor:
    from rollguard.executors.local import LocalExecutor

    return LocalExecutor(str(spec.router))


def _noop(spec: Any, policy: Policy) -> Executor:
    from rollguard.executors.recording import RecordingExecutor

    return RecordingExecutor(canary_weight=policy.rollback.canary_weight)


def _haproxy(spec: Any, policy: Policy) -> Executor:
    from rollguard.executors.haproxy import HaproxyExecutor

    return HaproxyExecutor(spec)


def _command(spec: Any, policy: Policy) -> Executor:
    import os

    from rollguard.executors.command import CommandExecutor
    from rollguard.policy import secrets

    return CommandExecutor(
        spec,
        deployment=policy.target.deployment,
        withheld_env=secrets.secret_env_names(policy),
        redactor=secrets.Redactor.for_policy(policy, os.environ),
    )


def _kubernetes(spec: Any, policy: Policy) -> Executor:
    from rollguard.executors.kubernetes import KubernetesExecutor
    from rollguard.executors.kubernetes_api import api_client_for

    return KubernetesExecutor(spec, api_client=api_client_for(spec))


#: One loader per ``target.executor.type``.
LOADERS: dict[str, Loader] = {
    "local": _local,
    "noop": _noop,
    "haproxy": _haproxy,
    "command": _command,
    "kubernetes": _kubernetes,
}


def make_executor(policy: Policy) -> Executor:
    """The executor for ``policy.target.executor``, ready to use."""
    spec = policy.target.executor
    loader = LOADERS.get(spec.type)
    if loader is None:
        raise ExecutorError(f"executor type {spec.type!r} is not available in this build")
    return loader(spec, policy)
