"""User commands per action: ``helm rollback``, ``systemctl``, a deploy script.

Each action runs its command from the policy as a list of arguments, without a
shell unless the policy says ``shell: true``. Arguments may use the
placeholders ``{deployment}``, ``{action}``, ``{percent}``,
``{stable_percent}`` and ``{factor}``; the same facts are passed as
environment variables, so a script needs no parsing:

    ROLLGUARD_ACTION          rollback | set_weight | scale | isolate | status
    ROLLGUARD_DEPLOYMENT      target.deployment
    ROLLGUARD_CANARY_PERCENT  canary share asked for (set_weight; 0 for rollback/isolate)
    ROLLGUARD_STABLE_PERCENT  100 - the canary share
    ROLLGUARD_SCALE_FACTOR    scale only
    ROLLGUARD_<KEY>           anything given as ``context`` (e.g. TRIGGER, REASON, SEVERITY)

The command does not inherit rollguard's environment, which holds its secrets
(the audit key, webhook and Slack tokens, the API token): it gets
:data:`BASE_ENV` (what a program needs to run: ``PATH``, ``HOME``, the
locale...), the variables the policy passes on by name (``pass_env``), the
policy's ``env:`` values, then the ``ROLLGUARD_*`` facts above. A name in
``withheld_env`` is never passed. Every known secret value (``redactor``) is
replaced by ``[redacted]`` in what the command printed before it goes into the
result, and from there into the trail and any output.

With ``shell: true`` each value is shell-quoted, which keeps it one word only
where the shell reads it unquoted: a placeholder inside quotes is refused
(the policy refuses it first; this is the second fence).

A non-zero exit or a timeout is a failed action (``ok=False``) with the exit
code and the tail of stdout and stderr in the result, so they reach the audit
record. The timeout bounds the whole call, even when a process the command
left behind holds its output open (:mod:`rollguard.processes.bounded`). A
command dies with rollguard (a supervisor kills its group when rollguard is
killed), and two commands for one deployment never run at once on a host,
across a crash included: a restarted rollguard waits, within the timeout, for
what is left of a killed one's command (:mod:`rollguard.processes.run_lock`).
A command that does not exist is an :class:`ExecutorError` naming it.

``status`` runs the status command when one is given and reads its stdout as
JSON (``{"canary_weight": 0, "canary_state": "retired"}``); without one it
reports what the last successful action set, marked as such.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterable, Mapping

from rollguard import documents
from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus, refused_weight
from rollguard.policy.model import CommandExecutorSpec, quoted_placeholders
from rollguard.policy.secrets import Redactor
from rollguard.processes.bounded import run_bounded
from rollguard.processes.run_lock import RUN_DIR_ENV

OUTPUT_LIMIT = 4000  # characters of stdout/stderr kept per stream (the tail)
#: What every command gets from rollguard's environment: enough to find programs and run
#: them in the user's home and locale. Anything else is passed by name (``pass_env``).
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


class CommandExecutor:
    """Runs the policy's command for each action."""

    def __init__(
        self,
        spec: CommandExecutorSpec,
        *,
        deployment: str,
        context: Mapping[str, str] | None = None,
        withheld_env: Iterable[str] = (),
        redactor: Redactor | None = None,
    ) -> None:
        self._spec = spec
        self._deployment = deployment
        self._context = dict(context or {})
        self._withheld = frozenset(withheld_env) | {RUN_DIR_ENV}  # rollguard's own setting
        self._redactor = redactor or Redactor(())
        self._canary_weight: int | None = None
        self._canary_state = "unknown"

    def set_context(self, context: Mapping[str, str]) -> None:
        """Facts about the decision (trigger, reason, severity) for the next commands' env."""
        self._context = dict(context)

    async def rollback(self) -> ActionResult:
        result = await self._run("rollback", self._spec.rollback, percent=0)
        return self._remember(result, 0, "retired")

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        if (refused := refused_weight(percent)) is not None:
            return refused
        if self._spec.set_weight is None:
            return ActionResult(
                ok=False,
                detail="no set_weight command (target.executor.set_weight); cannot shift traffic",
            )
        result = await self._run("set_weight", self._spec.set_weight, percent=percent)
        return self._remember(result, percent, "serving" if percent else "drained")

    async def scale(self, *, factor: float) -> ActionResult:
        if self._spec.scale is None:
            return ActionResult(
                ok=True,
                detail=f"no scale command (target.executor.scale); scale x{factor} skipped",
                output={"skipped": True},
            )
        return await self._run("scale", self._spec.scale, factor=factor)

    async def isolate(self) -> ActionResult:
        if self._spec.isolate is None:
            result = await self._run("isolate", self._spec.rollback, percent=0, field="rollback")
            result = ActionResult(
                ok=result.ok,
                detail=f"no isolate command; ran the rollback command instead: {result.detail}",
                output=result.output,
            )
        else:
            result = await self._run("isolate", self._spec.isolate, percent=0)
        return self._remember(result, 0, "isolated")

    async def status(self) -> TargetStatus:
        if self._spec.status is None:
            return TargetStatus(
                canary_weight=self._canary_weight or 0,
                canary_state=self._canary_state,
                detail={"source": "last successful action (no status command)"},
                assumed="the command executor has no status command",
            )
        result = await self._run("status", self._spec.status)
        if not result.ok:
            raise ExecutorError(f"status command failed: {result.detail}")
        stdout = str(result.output.get("stdout", ""))
        try:
            answer = documents.load_json(stdout, source="status command", what="answer")
            weight = int(answer["canary_weight"])
            state = str(answer.get("canary_state", "unknown"))
        except (documents.DocumentError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ExecutorError(
                "status command must print JSON such as "
                f'{{"canary_weight": 0, "canary_state": "retired"}}; it printed {stdout[:200]!r}'
            ) from exc
        return TargetStatus(canary_weight=weight, canary_state=state, detail={"source": "command"})

    async def aclose(self) -> None:
        """Commands do not outlive their action."""

    def _remember(self, result: ActionResult, weight: int, state: str) -> ActionResult:
        if result.ok:
            self._canary_weight, self._canary_state = weight, state
        return result

    def _environment(self, action: str, values: Mapping[str, str]) -> dict[str, str]:
        passed = (*BASE_ENV, *self._spec.pass_env)
        env = {
            name: os.environ[name]
            for name in passed
            if name in os.environ and name not in self._withheld
        }
        env.update(self._spec.env)
        env["ROLLGUARD_ACTION"] = action
        env["ROLLGUARD_DEPLOYMENT"] = self._deployment
        if "percent" in values:
            env["ROLLGUARD_CANARY_PERCENT"] = values["percent"]
            env["ROLLGUARD_STABLE_PERCENT"] = values["stable_percent"]
        if "factor" in values:
            env["ROLLGUARD_SCALE_FACTOR"] = values["factor"]
        for key, value in self._context.items():
            env[f"ROLLGUARD_{key.upper()}"] = value
        return env

    async def _run(
        self,
        action: str,
        template: list[str] | None,
        *,
        percent: int | None = None,
        factor: float | None = None,
        field: str | None = None,
    ) -> ActionResult:
        field = field or action
        assert template is not None  # noqa: S101 rollback is required by the policy schema
        values = {"deployment": self._deployment, "action": action}
        if percent is not None:
            values |= {"percent": str(percent), "stable_percent": str(100 - percent)}
        if factor is not None:
            values["factor"] = f"{factor:g}"
        argv = _fill(template, values, quote=self._spec.shell, field=field)
        if self._spec.shell:
            argv = ["/bin/sh", "-c", argv[0]]
        started = time.monotonic()
        try:
            done = await run_bounded(
                argv,
                timeout=self._spec.timeout,
                env=self._environment(action, values),
                cwd=self._spec.workdir,
                lock=self._deployment,  # one command per deployment at a time, crashes included
            )
        except FileNotFoundError as exc:
            raise ExecutorError(
                f"target.executor.{field}: command {argv[0]!r} not found"
                + (f" (or workdir {self._spec.workdir!r} missing)" if self._spec.workdir else "")
            ) from exc
        except PermissionError as exc:
            raise ExecutorError(f"target.executor.{field}: {argv[0]!r} is not executable") from exc
        stdout, stderr = self._clean(done.stdout), self._clean(done.stderr)
        if done.timed_out:
            held = (
                f" (it exited with code {done.exit_code}, but a process it started kept its "
                "output open)"
                if done.exit_code is not None
                else ""
            )
            return ActionResult(
                ok=False,
                detail=f"{action}: {shlex.join(argv)} timed out after {self._spec.timeout:g}s"
                + held,
                output=_output(argv, done.exit_code, stdout, stderr, started),
            )
        output = _output(argv, done.exit_code, stdout, stderr, started)
        if done.waited_seconds:
            output["waited_for_previous_seconds"] = round(done.waited_seconds, 3)
        if done.exit_code != 0:
            last_line = (stderr or stdout).strip().splitlines()[-1:]
            return ActionResult(
                ok=False,
                detail=f"{action}: {argv[0]} exited with code {done.exit_code}"
                + (f": {last_line[0]}" if last_line else ""),
                output=output,
            )
        return ActionResult(
            ok=True, detail=f"{action}: {shlex.join(argv)} succeeded", output=output
        )

    def _clean(self, output: bytes) -> str:
        """A stream's tail as text, every known secret redacted (before it is cut)."""
        return self._redactor.redact(output.decode(errors="replace"))[-OUTPUT_LIMIT:]


def _fill(template: list[str], values: Mapping[str, str], *, quote: bool, field: str) -> list[str]:
    """Fill placeholders; in a shell line every value is quoted so it stays one word.

    The policy schema checks placeholder names, not format specs: ``{percent:d}`` or
    ``{deployment!x}`` pass it and only fail here (ValueError), so those become an
    ExecutorError naming the field too, never a traceback.
    """
    safe = {key: shlex.quote(value) for key, value in values.items()} if quote else values
    filled = []
    for argument in template:
        if quote and (inside := quoted_placeholders(argument)):
            raise ExecutorError(
                f"target.executor.{field}: placeholder {{{inside[0]}}} is inside quotes; "
                "with shell: true write it bare, rollguard quotes each value"
            )
        try:
            filled.append(argument.format_map(safe))
        except KeyError as exc:
            raise ExecutorError(
                f"target.executor.{field}: placeholder {exc} has no value for this action"
            ) from exc
        except (ValueError, IndexError) as exc:
            raise ExecutorError(
                f"target.executor.{field}: cannot fill {argument!r}: {exc} "
                "(placeholders are plain {name}, values are text)"
            ) from exc
    return filled


def _output(
    argv: list[str], exit_code: int | None, stdout: str, stderr: str, started: float
) -> dict[str, object]:
    return {
        "argv": argv,
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "duration_seconds": round(time.monotonic() - started, 3),
    }
