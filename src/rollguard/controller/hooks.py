"""Release hooks: an HTTP POST or a command that can hold or fail a release.

A hook succeeds on HTTP 2xx or exit code 0 within its timeout; anything else
(a refusal, a timeout, a connection refused, a missing secret) is a failure
with a one-line detail. The caller records every call, success or not.
HTTP hooks are signed like the webhook channel (``X-Rollguard-Signature``), so
a receiver checks both with the same code. Commands get the same minimal
environment as the command executor, plus the release's facts as
``ROLLGUARD_*`` variables; never rollguard's secrets.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from rollguard.executors.command import BASE_ENV
from rollguard.notifiers.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from rollguard.policy.promotion import Hook
from rollguard.processes.bounded import run_bounded

#: Bytes of a command's output kept in the audit entry (its tail).
OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class HookResult:
    """How one call of a hook ended."""

    hook: str
    ok: bool
    detail: str
    seconds: float
    output: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "ok": self.ok,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            **self.output,
        }


async def call(
    name: str,
    hook: Hook,
    *,
    facts: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> HookResult:
    """Call ``hook`` with the release's ``facts``; never raises for the hook's own failure."""
    began = time.monotonic()
    env = os.environ if environ is None else environ
    try:
        if hook.url is not None:
            ok, detail, output = await _post(name, hook, facts, env)
        else:
            ok, detail, output = await _run(name, hook, facts, env)
    except TimeoutError:
        ok, detail, output = False, f"no answer within {hook.timeout:g}s", {}
    return HookResult(name, ok, detail, time.monotonic() - began, output)


async def _post(
    name: str, hook: Hook, facts: Mapping[str, str], env: Mapping[str, str]
) -> tuple[bool, str, dict[str, Any]]:
    secret = None
    if hook.secret_env is not None:
        secret = env.get(hook.secret_env)
        if not secret:
            return False, f"variable {hook.secret_env} is not set (the hook's secret)", {}
    delivery = uuid.uuid4().hex
    body = json.dumps({"version": 1, "hook": name, "id": delivery, **facts}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "rollguard",
        TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: delivery,
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    async with httpx.AsyncClient(timeout=hook.timeout) as client:
        try:
            async with asyncio.timeout(hook.timeout):
                response = await client.post(str(hook.url), content=body, headers=headers)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            return False, f"request failed ({type(exc).__name__})", {}
    status = response.status_code
    output = {"http_status": status, "body": response.text[:OUTPUT_TAIL]}
    if 200 <= status < 300:
        return True, f"HTTP {status}", output
    return False, f"answered HTTP {status}", output


async def _run(
    name: str, hook: Hook, facts: Mapping[str, str], env: Mapping[str, str]
) -> tuple[bool, str, dict[str, Any]]:
    assert hook.command is not None  # noqa: S101 a hook has a url or a command
    passed = {key: env[key] for key in BASE_ENV if key in env}
    passed.update({f"ROLLGUARD_{key.upper()}": value for key, value in facts.items()})
    passed["ROLLGUARD_HOOK"] = name
    try:
        done = await run_bounded(hook.command, timeout=hook.timeout, env=passed, cwd=None)
    except (FileNotFoundError, PermissionError) as exc:
        return False, f"cannot run {hook.command[0]}: {exc.strerror}", {}
    output = {
        "exit_code": done.exit_code,
        "stdout": done.stdout[-OUTPUT_TAIL:].decode(errors="replace"),
        "stderr": done.stderr[-OUTPUT_TAIL:].decode(errors="replace"),
    }
    if done.timed_out:
        return False, f"no answer within {hook.timeout:g}s (killed)", output
    if done.exit_code == 0:
        return True, "exit code 0", output
    return False, f"exit code {done.exit_code}", output
