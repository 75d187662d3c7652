"""``rollguard report``: the compliance report, computed from the audit store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollguard.cli import out
from rollguard.cli.audit_options import (
    DbOption,
    DeploymentOption,
    KeyEnvOption,
    NamespaceOption,
    PolicyOption,
    deployment_filter,
    open_cli_store,
    since_timestamp,
)
from rollguard.cli.options import (
    LegacyOutOption,
    OutputFileOption,
    ReportFormat,
    deprecated,
    not_a_format,
)
from rollguard.errors import UsageError


def report(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    since: Annotated[
        str, typer.Option(help="Period: a duration back from now (30d) or a date.")
    ] = "30d",
    output: Annotated[
        ReportFormat,
        typer.Option("--output", "-o", help="Output format: md, html or json."),
    ] = ReportFormat.MD,
    output_file: OutputFileOption = None,
    db: DbOption = None,
    policy: PolicyOption = None,
    key_env: KeyEnvOption = None,
    legacy_format: Annotated[ReportFormat | None, typer.Option("--format", hidden=True)] = None,
    legacy_out: LegacyOutOption = None,
    deployment: DeploymentOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Write the compliance report: deployments, rollbacks, timings and a computed checklist.

    Exit codes: 0 written · 2 invalid option or file not writable · 6 audit store missing.
    """
    from rollguard.reports.build import build, render_report

    fmt = deprecated(legacy_format, output, old="--format", new="-o/--output")
    target = deprecated(legacy_out, output_file, old="--out", new="-f/--output-file")
    not_a_format(target, ReportFormat)
    start = since_timestamp(since)
    if start is None:
        raise UsageError("--since is required")
    name, namespace = deployment_filter(deployment, namespace)
    store = open_cli_store(db, policy, key_env=key_env, verifying=True)
    try:
        report = build(store, since=start, deployment=name, namespace=namespace)
        text = render_report(report, format=fmt.value)
    finally:
        store.close()
    if target is None:
        if fmt is ReportFormat.MD:
            text = out.clean(text)  # Markdown is read in the terminal; HTML and JSON are data
        print(text, end="" if text.endswith("\n") else "\n")
        return
    _write(target, text)


def _write(target: Path, text: str) -> None:
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from exc
    out.say(f"wrote {target}", stderr=True)
