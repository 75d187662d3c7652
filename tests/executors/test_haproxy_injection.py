"""Runtime API injection through a policy field, against a real HAProxy.

``backend: "app;disable frontend web"`` passed ``policy check`` and HAProxy ran
the second command: the frontend went down. Names are now checked against
HAProxy's name grammar when the policy loads, and the executor never sends a
command holding ``;`` or a line break, whatever spec it is given.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from rollguard.errors import ExecutorError, PolicyError
from rollguard.executors.haproxy import HaproxyExecutor
from rollguard.policy import parse_policy
from rollguard.policy.model import HaproxyExecutorSpec
from servers.haproxy import BACKEND, HaproxyServer

INJECTIONS = [
    f"{BACKEND};disable frontend web",
    f"{BACKEND}\ndisable frontend web",
    f"{BACKEND}\rdisable frontend web",
    f"{BACKEND} ;disable frontend web",
]


def frontend_status(haproxy: HaproxyServer) -> str:
    """The ``status`` column of the ``web`` frontend in ``show stat`` (OPEN or STOP)."""
    lines = haproxy.command("show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        fields = dict(zip(header, line.split(","), strict=False))
        if fields.get("pxname") == "web" and fields.get("svname") == "FRONTEND":
            return fields["status"]
    raise AssertionError(f"no web frontend in show stat: {lines[:3]}")


@pytest.mark.parametrize("field", ["backend", "stable_server", "canary_server"])
@pytest.mark.parametrize("name", [*INJECTIONS, "", "app server", "ápp", "app/canary", "a#b"])
def test_a_name_outside_haproxys_grammar_is_a_policy_error(field: str, name: str) -> None:
    values = {"type": "haproxy", "socket": "/run/h.sock", "backend": BACKEND, field: name}
    with pytest.raises(ValidationError, match="is not an HAProxy name"):
        HaproxyExecutorSpec.model_validate(values)


def test_policy_check_refuses_the_injected_backend() -> None:
    text = (
        "target:\n  deployment: shop\n  executor:\n    type: haproxy\n"
        "    socket: /run/haproxy/admin.sock\n"
        '    backend: "app;disable frontend web"\n'
        "metrics: {provider: prometheus, address: 'http://127.0.0.1:9090'}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.yaml")
    assert str(caught.value).startswith(
        "p.yaml:6:5: target.executor.backend: 'app;disable frontend web' is not an HAProxy name"
    )


@pytest.mark.real_server
@pytest.mark.parametrize("name", INJECTIONS)
@pytest.mark.parametrize("call", ["rollback", "isolate", "status", "set_canary_weight"])
def test_the_executor_never_sends_a_second_command(
    canary_haproxy: HaproxyServer, name: str, call: str
) -> None:
    # A spec built without validation (as a caller skipping the policy could): the fence holds.
    spec = HaproxyExecutorSpec.model_construct(
        type="haproxy",
        socket=str(canary_haproxy.socket_path),
        backend=name,
        stable_server="stable",
        canary_server="canary",
    )
    executor = HaproxyExecutor(spec)
    kwargs = {"percent": 0} if call == "set_canary_weight" else {}
    with pytest.raises(ExecutorError, match=r"refused to send .* another runtime API command"):
        asyncio.run(getattr(executor, call)(**kwargs))
    assert frontend_status(canary_haproxy) == "OPEN"
    answered = canary_haproxy.count_answers(20)
    assert set(answered) <= {"stable", "canary"}
    assert sum(answered.values()) == 20
