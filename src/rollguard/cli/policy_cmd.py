"""``rollguard policy check`` and ``rollguard policy explain``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from rollguard.errors import ExitCode, PolicyError

app = typer.Typer(help="Validate and explain policy files.", no_args_is_help=True)


@app.command()
def check(
    files: list[Path] = typer.Argument(..., help="Policy files to validate."),  # noqa: B008
) -> None:
    """Validate policies: exit 0 when all are valid, else 2 with FILE:LINE:COL: field: message."""
    from rollguard.policy import load_policy

    console = Console()
    failed = False
    for file in files:
        try:
            load_policy(file)
        except PolicyError as exc:
            failed = True
            for problem in exc.problems:
                console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"{file}: ok", markup=False, highlight=False)
    if failed:
        raise typer.Exit(int(ExitCode.INVALID))


@app.command()
def explain(file: Path = typer.Argument(..., help="The policy file.")) -> None:  # noqa: B008
    """Say in plain sentences what each trigger of a policy does.

    Exit codes: 0 explained · 2 invalid policy (FILE:LINE:COL: field: message).
    """
    from rollguard.controller.assemble import foreseen_fallbacks
    from rollguard.policy import load_policy
    from rollguard.policy.explain import explain as sentences

    policy = load_policy(file)
    fallbacks = foreseen_fallbacks(policy, base_dir=file.resolve().parent)
    console = Console()
    console.print(f"[bold]{escape(policy.name)}[/] (deployment {escape(policy.target.deployment)})")
    for line in sentences(policy, fallbacks):
        console.print(f"• {line}", markup=False, highlight=False, soft_wrap=True)
