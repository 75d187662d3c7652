"""``rollguard release pause|resume|promote|abort|retry NAME``: manual gates through ``serve``.

Each command is one authenticated ``POST /api/v1/deployments/{name}/{command}``
to a running ``rollguard serve`` (docs/serve.md), then a read of the
deployment's status to show where it stands. The token comes from an
environment variable named by ``--token-env`` and is never printed. ``serve``
records who asked: the token's name, and whom ``--as`` names (the OS user by
default; the client's word, not verified).
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any

import typer

from rollguard.cli import help_format, out
from rollguard.cli.options import OutputFormat, OutputOption
from rollguard.errors import ExitCode, RefusedError, RollguardError, UsageError

app = help_format.App(
    help="Manual gates on a release watched by `rollguard serve`: pause, resume, promote, "
    "abort, retry.",
    no_args_is_help=True,
)

DEFAULT_SERVER = "http://127.0.0.1:8080"
TOKEN_ENV = "ROLLGUARD_API_TOKEN"  # noqa: S105 the variable's name, not a token
SERVER_ENV = "ROLLGUARD_SERVER"
EXIT_CODES = (
    "Exit codes: 0 done · 2 invalid input, no token, the server unreachable or the token "
    "refused, no such deployment · 5 the abort's or promote's action failed · 7 refused: "
    "the command does not apply in the deployment's current status, or a release hook held it."
)

Name = Annotated[str, typer.Argument(help="The deployment (its policy's target.deployment).")]
Server = Annotated[
    str,
    typer.Option("--server", envvar=SERVER_ENV, help="The URL of the running `rollguard serve`."),
]
TokenEnv = Annotated[
    str,
    typer.Option(
        "--token-env",
        help="The environment variable holding serve's API token (never printed).",
    ),
]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the audit trail.")]
As = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Whom you ask for, recorded beside the token's name (default: your OS user; "
        "not verified by the server).",
        show_default=False,
    ),
]
Timeout = Annotated[
    float,
    typer.Option("--timeout", min=1.0, help="Seconds to wait for serve (an abort waits for it)."),
]


def _gate(
    command: str,
    name: str,
    *,
    server: str,
    token_env: str,
    reason: str,
    as_: str | None,
    timeout: float,
    output: OutputFormat,
) -> None:
    from urllib.parse import quote

    import httpx

    token = os.environ.get(token_env, "")
    if not token:
        raise UsageError(f"--token-env {token_env}: the variable is not set (serve's API token)")
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server {server}: expected an http:// or https:// URL")
    try:
        base = str(httpx.URL(server)).rstrip("/")
    except httpx.InvalidURL as exc:
        raise UsageError(f"--server {server}: not a URL ({exc})") from None
    who = as_ if as_ is not None else _os_user()
    body = {"reason": reason, **({"on_behalf_of": who} if who else {})}
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/v1/deployments/{quote(name, safe='')}"  # any name stays one path segment
    try:
        with httpx.Client(timeout=timeout) as client:
            answer = client.post(f"{url}/{command}", json=body, headers=headers)
            _raise_for(answer, command, name, server, token_env)
            shown = client.get(url)
    except httpx.HTTPError as exc:
        raise RollguardError(
            f"--server {server}: cannot reach rollguard serve ({type(exc).__name__})"
        ) from exc
    detail: dict[str, Any] = shown.json() if shown.status_code == 200 else {}
    result = {
        **answer.json(),
        "requested_as": who or None,
        "canary_weight": detail.get("canary_weight"),
        "promotion": detail.get("promotion"),
    }
    if output is OutputFormat.JSON:
        out.emit_json(result, indent=2)
    else:
        _say(result)
    if result["status"] == "failed":
        raise typer.Exit(int(ExitCode.ACTION_FAILED))


def _raise_for(answer: Any, command: str, name: str, server: str, token_env: str) -> None:
    """Turn serve's refusals into rollguard's errors (one message, a documented code)."""
    status = answer.status_code
    if status < 300:
        return
    try:
        detail = str(answer.json().get("detail", ""))
    except ValueError:
        detail = answer.text[:200]
    if status == 401:
        raise UsageError(f"{server}: the token in {token_env} was refused ({detail})")
    if status == 404:
        raise UsageError(f"{server}: no watched deployment named {name!r}")
    if status == 409:
        raise RefusedError(f"{command} {name}: refused: {detail}")
    raise RollguardError(f"{command} {name}: serve answered HTTP {status}: {detail}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return ""


def _say(result: dict[str, Any]) -> None:
    weight = result.get("canary_weight")
    split = f", canary at {weight}%" if weight is not None else ""
    out.say(
        (result["deployment"], out.BOLD),
        f": {result['command']} accepted; status {result['status']}{split}",
    )
    promotion = result.get("promotion")
    if promotion:
        held = f", held by {promotion['held_by']}" if promotion.get("held_by") else ""
        following = promotion.get("next_weight")
        after = f"; next step {following}%" if following is not None else ""
        out.say(
            f"  step {promotion['step']} of {promotion['of']} at {promotion['canary_weight']}%"
            f"{held}{after}; evidence: {promotion['reason']}",
        )


def _command(command: str, summary: str) -> None:
    def run(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
        name: Name,
        server: Server = DEFAULT_SERVER,
        token_env: TokenEnv = TOKEN_ENV,
        reason: Reason = "",
        as_: As = None,
        timeout: Timeout = 600.0,
        output: OutputOption = OutputFormat.TEXT,
    ) -> None:
        _gate(
            command,
            name,
            server=server,
            token_env=token_env,
            reason=reason,
            as_=as_,
            timeout=timeout,
            output=output,
        )

    example = (
        f"Example: ROLLGUARD_API_TOKEN=... rollguard release {command} web "
        f"--server http://rollguard:8080 --reason 'why'"
    )
    run.__doc__ = f"{summary}\n\n{EXIT_CODES}\n\n{example}"
    app.command(name=command)(run)


_command(
    "pause",
    "Hold a progressive release at its current step; rollback triggers still act. "
    "(A policy without promotion: stops evaluating until resume.)",
)
_command("resume", "Let a paused release move on (or watch a paused deployment again).")
_command(
    "promote",
    "Send all traffic to the canary now, through the release's confirm_promotion hook.",
)
_command("abort", "Roll the release back now (recorded like any rollback; crash-safe).")
_command(
    "retry",
    "Watch the release again from its first step, after an abort, a rollback or a failure.",
)
