"""Real traffic shifting without Kubernetes: HAProxy's runtime API over its stats socket.

Stable and canary are two servers of one HAProxy backend. rollguard changes
their weights and states with ``set server <be>/<srv> weight N`` and
``set server <be>/<srv> state ready|drain|maint``, and reads them back with
``show servers state <be>``. The socket needs ``level admin``:

    stats socket /run/haproxy/admin.sock mode 600 level admin

Weights are percentages (canary ``p``, stable ``100 - p``; HAProxy allows
0-256), so ``show servers state`` reads back as the split itself. Every call
sends its commands in one connection, separated by ``;`` (HAProxy answers an
empty line per successful ``set``), then reads the state back: an action
reports success only when HAProxy's own state says it took effect.

Names come from the policy, which checks them against HAProxy's name grammar;
as a second fence, a command containing ``;`` or a line break is never sent
(it would be a second command: ``app;disable frontend web``), and an answer
is read no further than :data:`MAX_ANSWER_BYTES`.

Status is derived from HAProxy alone, so a restarted rollguard reads the truth:
canary in maintenance with weight 0 is ``retired`` (rolled back), in maintenance
with its weight kept is ``isolated``, draining or weight 0 is ``drained``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult, TargetStatus, refused_weight
from rollguard.policy.model import HaproxyExecutorSpec

#: ``show servers state`` of one backend is a few hundred bytes per server.
MAX_ANSWER_BYTES = 1024 * 1024
_FORCED_MAINT = 0x01
_ANY_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
_ANY_DRAIN = 0x08 | 0x10
_SEPARATORS = (";", "\n", "\r")


@dataclass(frozen=True)
class ServerState:
    """One server's line of ``show servers state``."""

    name: str
    operational: int  # srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping
    admin: int  # srv_admin_state bit field (maintenance, drain)
    weight: int  # srv_uweight, the current weight

    @property
    def state(self) -> str:
        if self.admin & _ANY_MAINT:
            return "maint"
        if self.admin & _ANY_DRAIN:
            return "drain"
        return "ready"

    @property
    def effective_weight(self) -> int:
        """The weight new requests see: none in maintenance or drain."""
        return self.weight if self.state == "ready" else 0


class HaproxyExecutor:
    """Drives one backend's stable and canary servers through the runtime API."""

    def __init__(self, spec: HaproxyExecutorSpec, *, timeout_seconds: float = 5.0) -> None:
        self._spec = spec
        self._timeout = timeout_seconds

    async def rollback(self) -> ActionResult:
        """Canary weight 0 and maintenance, stable weight 100 and ready: all traffic on stable."""
        return await self._apply(
            [
                self._set(self._spec.stable_server, "state ready"),
                self._set(self._spec.stable_server, "weight 100"),
                self._set(self._spec.canary_server, "weight 0"),
                self._set(self._spec.canary_server, "state maint"),
            ],
            want=("retired", 0),
            done="rolled back: all traffic on stable, canary in maintenance",
        )

    async def set_canary_weight(self, *, percent: int) -> ActionResult:
        """Canary weight ``percent``, stable ``100 - percent``; both ready to take their share."""
        if (refused := refused_weight(percent)) is not None:
            return refused
        commands = [
            self._set(self._spec.stable_server, f"weight {100 - percent}"),
            self._set(self._spec.canary_server, f"weight {percent}"),
            self._set(self._spec.stable_server, "state ready"),
        ]
        if percent > 0:
            commands.append(self._set(self._spec.canary_server, "state ready"))
        return await self._apply(
            commands, want=(None, percent), done=f"canary at {percent}% of traffic"
        )

    async def scale(self, *, factor: float) -> ActionResult:
        """HAProxy balances traffic; it cannot add instances. Say so, change nothing."""
        return ActionResult(
            ok=True,
            detail=f"haproxy cannot scale (asked x{factor}); skipped, traffic is shifted instead",
            output={"skipped": True},
        )

    async def isolate(self) -> ActionResult:
        """Canary to maintenance at once (its weight is kept for the record); stable ready."""
        before = await self._servers()
        canary = before[self._spec.canary_server]
        commands = [self._set(self._spec.stable_server, "state ready")]
        if canary.weight == 0:  # keep a non-zero weight so status reads "isolated", not "retired"
            commands.append(self._set(self._spec.canary_server, "weight 1"))
        commands.append(self._set(self._spec.canary_server, "state maint"))
        return await self._apply(
            commands,
            want=("isolated", 0),
            done="canary isolated: in maintenance, no traffic",
            names_checked=True,
        )

    async def status(self) -> TargetStatus:
        """Weights and states as HAProxy reports them now."""
        servers = await self._servers()
        stable = servers[self._spec.stable_server]
        canary = servers[self._spec.canary_server]
        total = stable.effective_weight + canary.effective_weight
        percent = round(100 * canary.effective_weight / total) if total else 0
        return TargetStatus(
            canary_weight=percent,
            canary_state=_canary_state(canary),
            detail={
                "backend": self._spec.backend,
                "stable": {"state": stable.state, "weight": stable.weight},
                "canary": {"state": canary.state, "weight": canary.weight},
            },
        )

    async def aclose(self) -> None:
        """Each command opens its own connection; nothing stays open."""

    async def send(self, commands: Sequence[str]) -> str:
        """Send runtime API commands in one connection (one line, ``;`` between them)."""
        for command in commands:
            if any(mark in command for mark in _SEPARATORS):
                raise ExecutorError(
                    f"refused to send {command[:200]!r} to HAProxy: a ';' or a line break "
                    "would start another runtime API command"
                )
        line = ";".join(commands)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self._spec.socket), self._timeout
            )
        except FileNotFoundError as exc:
            raise ExecutorError(
                f"HAProxy stats socket {self._spec.socket} does not exist "
                "(target.executor.socket; HAProxy needs 'stats socket <path> level admin')"
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"cannot connect to HAProxy stats socket {self._spec.socket}: {exc}"
            ) from exc
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            answer = b""
            while chunk := await asyncio.wait_for(reader.read(65536), self._timeout):
                answer += chunk
                if len(answer) > MAX_ANSWER_BYTES:
                    raise ExecutorError(
                        f"HAProxy stats socket {self._spec.socket} answered more than "
                        f"{MAX_ANSWER_BYTES:,} bytes; refused"
                    )
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"HAProxy stats socket {self._spec.socket}: {exc}") from exc
        finally:
            writer.close()
        return answer.decode(errors="replace")

    def _set(self, server: str, change: str) -> str:
        return f"set server {self._spec.backend}/{server} {change}"

    async def _apply(
        self,
        commands: list[str],
        *,
        want: tuple[str | None, int],
        done: str,
        names_checked: bool = False,
    ) -> ActionResult:
        """Run ``commands`` in one connection, then confirm the state they should produce."""
        if not names_checked:  # an unknown server is named before anything changes
            await self._servers()
        answer = (await self.send(commands)).strip()
        if answer:
            return ActionResult(
                ok=False,
                detail=f"HAProxy refused: {answer}",
                output={"commands": commands, "answer": answer},
            )
        status = await self.status()
        want_state, want_percent = want
        ok = status.canary_weight == want_percent and want_state in (None, status.canary_state)
        detail = done if ok else f"HAProxy reports {status.canary_weight}% ({status.canary_state})"
        return ActionResult(
            ok=ok, detail=detail, output={"commands": commands, "status": dict(status.detail)}
        )

    async def _servers(self) -> dict[str, ServerState]:
        """The backend's servers; unknown backend or server names are an ExecutorError."""
        answer = await self.send([f"show servers state {self._spec.backend}"])
        if not answer.startswith("1\n"):
            raise ExecutorError(
                f"HAProxy has no backend {self._spec.backend!r} (target.executor.backend): "
                f"{answer.strip()}"
            )
        servers = {}
        for line in answer.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 9 or line.startswith("#"):
                continue
            try:
                servers[fields[3]] = ServerState(
                    name=fields[3],
                    operational=int(fields[5]),
                    admin=int(fields[6]),
                    weight=int(fields[7]),
                )
            except ValueError:
                raise ExecutorError(
                    f"HAProxy answered 'show servers state' with a line rollguard cannot "
                    f"read (expected numbers in fields 6-8): {line.strip()[:200]}"
                ) from None
        for role in ("stable_server", "canary_server"):
            name = getattr(self._spec, role)
            if name not in servers:
                raise ExecutorError(
                    f"HAProxy backend {self._spec.backend!r} has no server {name!r} "
                    f"(target.executor.{role}); it has: {', '.join(sorted(servers)) or 'none'}"
                )
        return servers


def _canary_state(canary: ServerState) -> str:
    if canary.state == "maint":
        return "retired" if canary.weight == 0 else "isolated"
    if canary.state == "drain" or canary.weight == 0:
        return "drained"
    return "serving"
