"""``rollguard audit list|show|export|verify``: read and check the audit trail."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from rollguard.audit.base import Kind
from rollguard.cli import help_format, out
from rollguard.cli.audit_options import (
    DbOption,
    DeploymentOption,
    KeyEnvOption,
    NamespaceOption,
    PolicyOption,
    SinceOption,
    deployment_filter,
    open_cli_store,
    since_timestamp,
)
from rollguard.cli.options import (
    ExportFormat,
    LegacyOutOption,
    OutputFileOption,
    OutputFormat,
    OutputOption,
    deprecated,
    not_a_format,
)
from rollguard.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rollguard.audit.base import AuditEntry
    from rollguard.audit.sql import SqlAuditStore

app = help_format.App(help="Read, export and verify the audit trail.", no_args_is_help=True)

# -O was audit's own spelling of -o; it still works (hidden, with a warning).
LegacyOutputOption = Annotated[OutputFormat | None, typer.Option("-O", hidden=True)]


def _output(value: OutputFormat, legacy: OutputFormat | None) -> OutputFormat:
    return deprecated(legacy, value, old="-O", new="-o/--output")


@app.command("list")
def list_entries(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    since: SinceOption = None,
    deployment: DeploymentOption = None,
    kind: Annotated[
        Kind | None,  # checked against every kind; an unknown one is exit 2 with the list
        typer.Option(help="Only this kind of entry.", show_default=False),
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
    db: DbOption = None,
    policy: PolicyOption = None,
    legacy_output: LegacyOutputOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List entries, oldest first.

    Exit codes: 0 done · 2 invalid option · 6 audit store missing or unusable.
    """
    from rollguard.audit.export import as_dict

    fmt, start = _output(output, legacy_output), since_timestamp(since)
    name, namespace = deployment_filter(deployment, namespace)
    store = open_cli_store(db, policy)
    try:
        entries = store.list(since=start, deployment=name, namespace=namespace, kind=kind)
    finally:
        store.close()
    if fmt is OutputFormat.JSON:
        out.emit_json([as_dict(entry) for entry in entries], indent=2)
        return
    _table(entries)


@app.command()
def show(
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The entry's id.")],
    output: OutputOption = OutputFormat.TEXT,
    db: DbOption = None,
    policy: PolicyOption = None,
    legacy_output: LegacyOutputOption = None,
) -> None:
    """Show one entry with its evidence, executor output and hashes.

    Exit codes: 0 done · 2 invalid option or no such id · 6 audit store missing or unusable.
    """
    import json

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
    if fmt is OutputFormat.JSON:
        out.emit_json(data, indent=2)
        return
    console = out.console()
    for key, value in data.items():
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        console.print(out.line((f"{key:>15}", out.BOLD), "  ", shown))


@app.command()
def export(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    output: Annotated[
        ExportFormat, typer.Option("--output", "-o", help="Output format: json or csv.")
    ] = ExportFormat.JSON,
    output_file: OutputFileOption = None,
    since: SinceOption = None,
    deployment: DeploymentOption = None,
    db: DbOption = None,
    policy: PolicyOption = None,
    legacy_format: Annotated[ExportFormat | None, typer.Option("--format", hidden=True)] = None,
    legacy_out: LegacyOutOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Export entries with RollbackAuditEntry's fields, hashes included.

    Exit codes: 0 done · 2 invalid option or --output-file not writable · 6 audit store
    missing or unusable.
    """
    fmt = deprecated(legacy_format, output, old="--format", new="-o/--output")
    target = deprecated(legacy_out, output_file, old="--out", new="-f/--output-file")
    not_a_format(target, ExportFormat)
    start = since_timestamp(since)
    name, namespace = deployment_filter(deployment, namespace)
    store = open_cli_store(db, policy)
    try:
        if target is None:
            _export_to_stdout(store, fmt, start, (name, namespace))
            return
        try:
            with target.open("w", encoding="utf-8", newline="") as handle:
                count = store.export(
                    handle, format=fmt.value, since=start, deployment=name, namespace=namespace
                )
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror}") from exc
    finally:
        store.close()
    out.say(f"wrote {count} entries to {target}", stderr=True)


def _export_to_stdout(
    store: SqlAuditStore,
    fmt: ExportFormat,
    since: str | None,
    target: tuple[str | None, str | None],
) -> None:
    """JSON is escaped by its encoder; CSV to a terminal is escaped here, exact in a pipe.

    ``target`` is the deployment's ``(name, namespace)`` filter."""
    import io

    name, namespace = target
    if fmt is ExportFormat.JSON or not sys.stdout.isatty():
        store.export(
            sys.stdout, format=fmt.value, since=since, deployment=name, namespace=namespace
        )
        return
    buffer = io.StringIO()
    store.export(buffer, format=fmt.value, since=since, deployment=name, namespace=namespace)
    sys.stdout.write(out.clean(buffer.getvalue()))


@app.command()
def verify(
    output: OutputOption = OutputFormat.TEXT,
    db: DbOption = None,
    policy: PolicyOption = None,
    key_env: KeyEnvOption = None,
    legacy_output: LegacyOutputOption = None,
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
    if fmt is OutputFormat.JSON:
        out.emit_json({**report.__dict__, "empty": empty}, indent=2)
    elif empty:
        out.say(f"{report.message} in {store.location}")
    elif report.ok:
        keyed = f", keyed (key id {report.key_id})" if report.key_id else ""
        out.say(f"audit trail intact: {report.entries} entries, head {report.head_hash}{keyed}")
    else:
        out.say(
            ("audit trail broken:", out.BAD),
            f" {report.message} ({report.entries} entries verified before it)",
            stderr=True,
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
        cells = (
            str(entry.id),
            record.timestamp[:19] + "Z",
            f"{record.namespace}/{record.deployment}" if record.namespace else record.deployment,
            record.kind,
            record.trigger or "-",
            record.action,
            record.severity,
            record.outcome or "-",
        )
        table.add_row(*(out.styled(cell) for cell in cells))
    out.console().print(table)
