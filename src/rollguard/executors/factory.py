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
    from rollguard.executors.noop import NoopExecutor

    return NoopExecutor(canary_weight=policy.rollback.canary_weight)


#: One loader per ``target.executor.type``; haproxy, kubernetes and command go here too.
LOADERS: dict[str, Loader] = {
    "local": _local,
    "noop": _noop,
}


def make_executor(policy: Policy) -> Executor:
    """The executor for ``policy.target.executor``, ready to use."""
    spec = policy.target.executor
    loader = LOADERS.get(spec.type)
    if loader is None:
        raise ExecutorError(f"executor type {spec.type!r} is not available in this build")
    return loader(spec, policy)
