"""``rollguard generate alerts`` and ``rollguard generate grafana``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollguard.cli import help_format, out
from rollguard.cli.options import BaselineOption, OutputFileOption, PolicyOption, deprecated

app = help_format.App(
    help="Write Prometheus alert rules and Grafana dashboards from a policy; the CRD.",
    no_args_is_help=True,
)

#: ``-o FILE`` was generate's spelling of the file before ``-o`` meant the format everywhere.
LegacyFileOption = Annotated[Path | None, typer.Option("-o", hidden=True)]


def _write(text: str, output_file: Path | None, legacy: Path | None) -> None:
    target = deprecated(legacy, output_file, old="-o FILE", new="-f/--output-file")
    if target is None:
        typer.echo(text, nl=False)
        return
    from rollguard.errors import UsageError

    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{target}: cannot write: {exc.strerror}") from exc
    out.say(f"wrote {target}", stderr=True)


@app.command()
def alerts(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    policy: PolicyOption,
    output_file: OutputFileOption = None,
    baseline: BaselineOption = None,
    runbook_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of your runbooks; each alert links to URL#<trigger>.",
            show_default=False,
        ),
    ] = None,
    rollguard_job: Annotated[
        str, typer.Option(help="The Prometheus job that scrapes `rollguard serve`.")
    ] = "rollguard",
    legacy_file: LegacyFileOption = None,
) -> None:
    """Prometheus alerting rules (YAML): one per trigger, plus rollguard's own health.

    Exit codes: 0 written · 2 invalid policy or baseline, or --output-file not writable.
    """
    from rollguard.generate import alerts as generator
    from rollguard.generate.source import load_source

    source = load_source(policy, baseline_file=baseline)
    options = generator.AlertOptions(runbook_url=runbook_url, rollguard_job=rollguard_job)
    _write(generator.render(generator.alert_groups(source, options)), output_file, legacy_file)


@app.command()
def grafana(
    policy: PolicyOption,
    output_file: OutputFileOption = None,
    baseline: BaselineOption = None,
    legacy_file: LegacyFileOption = None,
) -> None:
    """A Grafana dashboard (JSON): stable and canary side by side, rollguard's decisions annotated.

    Exit codes: 0 written · 2 invalid policy or baseline, or --output-file not writable.
    """
    import rollguard.generate.grafana as generator
    from rollguard.generate.source import load_source

    source = load_source(policy, baseline_file=baseline)
    _write(generator.render(generator.dashboard(source)), output_file, legacy_file)


@app.command()
def crd(output_file: OutputFileOption = None) -> None:
    """The RollbackPolicy CustomResourceDefinition (YAML) for `rollguard controller`.

    Its spec's schema is generated from the policy model, so the API server refuses
    what `rollguard policy check` refuses, naming the field (docs/controller.md).

    Exit codes: 0 written · 2 --output-file not writable.
    """
    from rollguard.operator.crd import manifest_yaml

    _write(manifest_yaml(), output_file, None)
