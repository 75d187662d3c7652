"""``rollguard security scan-log``: the runtime-security signatures over a whole log."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rollguard.cli import help_format, out
from rollguard.cli.options import OutputFormat, OutputOption, deprecated

app = help_format.App(
    help="Runtime security: attack signatures in access logs.", no_args_is_help=True
)


class LogFormat(StrEnum):
    """The access-log formats ``scan-log`` reads."""

    COMBINED = "combined"
    HAPROXY = "haproxy"


@app.command("scan-log")
def scan_log(
    file: Annotated[Path, typer.Argument(help="An NGINX/Apache/HAProxy access log.")],
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="combined or haproxy (httplog).")
    ] = LogFormat.COMBINED,
    output: OutputOption = OutputFormat.TEXT,
    legacy_format: Annotated[LogFormat | None, typer.Option("--format", hidden=True)] = None,
) -> None:
    """List requests matching attack signatures and the peak 401/403 per minute.

    Exit 0 after a scan (matches are reported, not judged), 2 when the file is
    not an access log in the given format.
    """
    from rich.table import Table

    from rollguard.security.scan import scan_log as scan

    fmt = deprecated(legacy_format, log_format, old="--format", new="--log-format")
    result = scan(file, fmt=fmt.value)
    if output is OutputFormat.JSON:
        body = {
            "requests": result.requests,
            "unauthorized": result.unauthorized,
            "peak_unauthorized_per_minute": result.peak_unauthorized_per_minute,
            "unparsed_lines": result.unparsed,
            "first_problem": result.first_problem,
            "matches": [hit.__dict__ for hit in result.hits],
        }
        out.emit_json(body, indent=2, default=list)
        return
    console = out.console()
    if result.hits:
        table = Table(title="Requests matching attack signatures", title_justify="left")
        for column in ("line", "client", "category", "signatures", "target"):
            table.add_column(column, overflow="fold")
        for hit in result.hits[:100]:
            # Client and target are the attacker's text: shown as text, controls escaped.
            table.add_row(
                str(hit.line),
                out.styled(hit.client),
                ", ".join(hit.categories),
                ", ".join(hit.signatures),
                out.styled(out.clean(hit.target)[:160]),
            )
        console.print(table)
    console.print(
        out.line(
            f"{result.requests} requests · {len(result.hits)} suspicious · "
            f"{result.unauthorized} unauthorized (401/403), peak "
            f"{result.peak_unauthorized_per_minute} per minute"
        )
    )
    if result.unparsed:
        console.print(
            out.line(
                ("warning", out.WARN),
                f" {result.unparsed} line(s) not understood; first: {result.first_problem or ''}",
            )
        )
