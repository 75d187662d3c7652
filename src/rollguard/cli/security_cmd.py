"""``rollguard security scan-log``: the runtime-security signatures over a whole log."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rollguard.cli.options import OutputFormat
from rollguard.errors import UsageError

app = typer.Typer(help="Runtime security: attack signatures in access logs.", no_args_is_help=True)


@app.command("scan-log")
def scan_log(
    file: Path = typer.Argument(..., help="An NGINX/Apache/HAProxy access log."),  # noqa: B008
    fmt: str = typer.Option("combined", "--format", help="combined or haproxy (httplog)."),
    output: OutputFormat = typer.Option(OutputFormat.TEXT, "--output", help="text or json."),  # noqa: B008
) -> None:
    """List requests matching attack signatures and the peak 401/403 per minute.

    Exit 0 after a scan (matches are reported, not judged), 2 when the file is
    not an access log in the given format.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from rollguard.security.scan import scan_log as scan

    if fmt not in ("combined", "haproxy"):
        raise UsageError(f"--format must be combined or haproxy, not {fmt!r}")
    result = scan(file, fmt="combined" if fmt == "combined" else "haproxy")
    if output is OutputFormat.JSON:
        body = {
            "requests": result.requests,
            "unauthorized": result.unauthorized,
            "peak_unauthorized_per_minute": result.peak_unauthorized_per_minute,
            "unparsed_lines": result.unparsed,
            "first_problem": result.first_problem,
            "matches": [hit.__dict__ for hit in result.hits],
        }
        typer.echo(json.dumps(body, indent=2, default=list))
        return
    console = Console()
    if result.hits:
        table = Table(title="Requests matching attack signatures", title_justify="left")
        for column in ("line", "client", "category", "signatures", "target"):
            table.add_column(column, overflow="fold")
        for hit in result.hits[:100]:
            # Client and target are the attacker's text: shown as is, never as rich markup.
            table.add_row(
                str(hit.line),
                Text(hit.client),
                ", ".join(hit.categories),
                ", ".join(hit.signatures),
                Text(hit.target[:160]),
            )
        console.print(table)
    console.print(
        f"{result.requests} requests · {len(result.hits)} suspicious · "
        f"{result.unauthorized} unauthorized (401/403), peak "
        f"{result.peak_unauthorized_per_minute} per minute",
        highlight=False,
    )
    if result.unparsed:
        console.print(
            f"[yellow]warning[/] {result.unparsed} line(s) not understood; first: "
            f"{escape(result.first_problem or '')}",
            highlight=False,
            soft_wrap=True,
        )
