"""``rollguard generate alerts`` and ``rollguard generate grafana``."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Write Prometheus alert rules and Grafana dashboards from a policy.",
    no_args_is_help=True,
)

_POLICY = typer.Option(..., "--policy", "-p", help="The policy file.", exists=False)
_OUTPUT = typer.Option(None, "--output-file", "-o", help="Write here instead of stdout.")


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    from rollguard.errors import UsageError

    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror}") from exc
    typer.echo(f"wrote {output}", err=True)


@app.command()
def alerts(
    policy: Path = _POLICY,
    output: Path | None = _OUTPUT,
    runbook_url: str | None = typer.Option(
        None, help="Base URL of your runbooks; each alert links to URL#<trigger>."
    ),
    rollguard_job: str = typer.Option(
        "rollguard", help="The Prometheus job that scrapes `rollguard serve`."
    ),
) -> None:
    """Prometheus alerting rules: one per trigger, plus rollguard's own health.

    Exit codes: 0 written · 2 invalid policy or baseline, or --output-file not writable.
    """
    from rollguard.generate import alerts as generator
    from rollguard.generate.source import load_source

    source = load_source(policy)
    options = generator.AlertOptions(runbook_url=runbook_url, rollguard_job=rollguard_job)
    _write(generator.render(generator.alert_groups(source, options)), output)


@app.command()
def grafana(
    policy: Path = _POLICY,
    output: Path | None = _OUTPUT,
) -> None:
    """A Grafana dashboard: stable and canary side by side, rollguard's decisions annotated.

    Exit codes: 0 written · 2 invalid policy or baseline, or --output-file not writable.
    """
    import rollguard.generate.grafana as generator
    from rollguard.generate.source import load_source

    _write(generator.render(generator.dashboard(load_source(policy))), output)
