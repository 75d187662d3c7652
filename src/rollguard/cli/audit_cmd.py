"""``rollguard audit list|show|export|verify``: read and check the audit trail."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from rollguard.cli.audit_options import (
    DbOption,
    KeyEnvOption,
    PolicyOption,
    open_cli_store,
    since_timestamp,
)
from rollguard.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rollguard.audit.base import AuditEntry

app = typer.Typer(help="Read, export and verify the audit trail.", no_args_is_help=True)

OutputOption = typer.Option("text", "--output", "-o", help="text or json.")
# -O was audit's own spelling of -o; it still works (hidden, with a warning). Only
# `export` uses -o for a file (--out), as `report` does, and it never had -O.
LegacyOutputOption = typer.Option(None, "-O", hidden=True)


def _output(value: str, legacy: str | None = None) -> str:
    if legacy is not None:
        typer.echo("warning: -O is deprecated; use -o/--output", err=True)
        value = legacy
    if value not in ("text", "json"):
        raise UsageError(f"--output: expected text or json, got {value!r}")
    return value


@app.command("list")
def list_entries(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    since: str | None = typer.Option(None, help="Only entries from this long ago (30d) or date."),
    deployment: str | None = typer.Option(None, help="Only this deployment's entries."),
    kind: str | None = typer.Option(None, help="Only this kind (decision, action_result, ...)."),
    output: str = OutputOption,
    db: str | None = DbOption,
    policy: Path | None = PolicyOption,
    legacy_output: str | None = LegacyOutputOption,
) -> None:
    """List entries, oldest first.

    Exit codes: 0 done · 2 invalid option · 6 the audit store cannot be opened.
    """
    from rollguard.audit.export import as_dict

    fmt, start = _output(output, legacy_output), since_timestamp(since)
    store = open_cli_store(db, policy)
    try:
        entries = store.list(since=start, deployment=deployment, kind=kind)
    finally:
        store.close()
    if fmt == "json":
        print(json.dumps([as_dict(entry) for entry in entries], indent=2))
        return
    _table(entries)


@app.command()
def show(
    entry_id: int = typer.Argument(..., metavar="ID", help="The entry's id."),
    output: str = OutputOption,
    db: str | None = DbOption,
    policy: Path | None = PolicyOption,
    legacy_output: str | None = LegacyOutputOption,
) -> None:
    """Show one entry with its evidence, executor output and hashes.

    Exit codes: 0 done · 2 invalid option or no such id · 6 audit store unusable.
    """
    from rollguard.audit.export import as_dict

    fmt = _output(output, legacy_output)
    store = open_cli_store(db, policy)
    try:
        entry = store.get(entry_id)
    finally:
        store.close()
    if entry is None:
        raise UsageError(f"no audit entry with id {entry_id}")
    data = as_dict(entry)
    if fmt == "json":
        print(json.dumps(data, indent=2))
        return
    console = Console()
    for key, value in data.items():
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        console.print(f"[bold]{key:>15}[/]  {escape(str(shown))}", highlight=False, soft_wrap=True)


@app.command()
def export(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    format: str = typer.Option("json", "--format", "-f", help="json or csv."),
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default stdout)."),  # noqa: B008
    since: str | None = typer.Option(None, help="Only entries from this long ago (30d) or date."),
    deployment: str | None = typer.Option(None, help="Only this deployment's entries."),
    db: str | None = DbOption,
    policy: Path | None = PolicyOption,
) -> None:
    """Export entries with the seed's RollbackAuditEntry fields, hashes included.

    Exit codes: 0 done · 2 invalid option or --out not writable · 6 audit store unusable.
    """
    from rollguard.audit.export import FORMATS

    if format not in FORMATS:
        raise UsageError(f"--format: expected json or csv, got {format!r}")
    start = since_timestamp(since)
    store = open_cli_store(db, policy)
    try:
        if out is None:
            store.export(sys.stdout, format=format, since=start, deployment=deployment)
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = store.export(handle, format=format, since=start, deployment=deployment)
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from exc
    finally:
        store.close()
    Console(stderr=True).print(f"wrote {count} entries to {out}", highlight=False)


@app.command()
def verify(
    output: str = OutputOption,
    db: str | None = DbOption,
    policy: Path | None = PolicyOption,
    key_env: str | None = KeyEnvOption,
    legacy_output: str | None = LegacyOutputOption,
) -> None:
    """Recompute the hash chain: exit 0 when intact, 6 naming the first damaged entry.

    An empty trail has nothing to verify: it says so and exits 4 (inconclusive).
    A store that does not exist exits 6 naming the path looked for. A keyed trail
    needs its key (--key-env, or the policy's audit.key_env): exit 2 without.
    """

    fmt = _output(output, legacy_output)
    store = open_cli_store(db, policy, key_env=key_env, verifying=True)
    try:
        report = store.verify()
    finally:
        store.close()
    empty = report.ok and report.entries == 0
    if fmt == "json":
        print(json.dumps({**report.__dict__, "empty": empty}, indent=2))
    elif empty:
        print(f"{report.message} in {store.url}")
    elif report.ok:
        keyed = f", keyed (key id {report.key_id})" if report.key_id else ""
        print(f"audit trail intact: {report.entries} entries, head {report.head_hash}{keyed}")
    else:
        Console(stderr=True).print(
            f"[bold red]audit trail broken:[/] {report.message} "
            f"({report.entries} entries verified before it)",
            highlight=False,
            soft_wrap=True,
        )
    if not report.ok:
        raise typer.Exit(int(ExitCode.AUDIT_BROKEN))
    if empty:
        raise typer.Exit(int(ExitCode.INCONCLUSIVE))


def _table(entries: Sequence[AuditEntry]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("id", "time", "deployment", "kind", "trigger", "action", "severity", "outcome"):
        table.add_column(column)
    for entry in entries:
        record = entry.record
        table.add_row(
            str(entry.id),
            record.timestamp[:19] + "Z",
            record.deployment,
            record.kind,
            record.trigger or "-",
            record.action,
            record.severity,
            record.outcome or "-",
        )
    console = Console()
    if not console.is_terminal:  # piped: never truncate ids, triggers or actions
        console = Console(width=200)
    console.print(table)
