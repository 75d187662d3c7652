"""``rollguard report``: the compliance report, computed from the audit store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rollguard.cli.audit_options import (
    DbOption,
    KeyEnvOption,
    PolicyOption,
    open_cli_store,
    since_timestamp,
)
from rollguard.errors import UsageError


def report(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    since: str = typer.Option("30d", help="Period: a duration back from now (30d) or a date."),
    format: str = typer.Option("md", "--format", "-f", help="md or html."),
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default stdout)."),  # noqa: B008
    db: str | None = DbOption,
    policy: Path | None = PolicyOption,
    key_env: str | None = KeyEnvOption,
) -> None:
    """Write the compliance report: deployments, rollbacks, timings and a computed checklist.

    Exit codes: 0 written · 2 invalid option or --out not writable · 6 audit store unusable.
    """
    from rollguard.reports.build import build, render_report

    if format not in ("md", "html"):
        raise UsageError(f"--format: expected md or html, got {format!r}")
    start = since_timestamp(since)
    if start is None:
        raise UsageError("--since is required")
    store = open_cli_store(db, policy, key_env=key_env, verifying=True)
    try:
        text = render_report(build(store, since=start), format="md" if format == "md" else "html")
    finally:
        store.close()
    if out is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from exc
    Console(stderr=True).print(f"wrote {out}", highlight=False)
