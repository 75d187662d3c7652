"""``rollguard policy check`` and ``rollguard policy explain``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from rollguard.cli import help_format, out
from rollguard.cli.options import OutputFormat, OutputOption
from rollguard.errors import ExitCode, PolicyError

app = help_format.App(help="Validate and explain policy files.", no_args_is_help=True)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Policy files to validate.")],
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Validate policies: exit 0 when all are valid, else 2 with FILE:LINE:COL: field: message.

    A valid policy may still get warnings (exit 0): a sequential trigger whose
    analysis.interval is too short for the scrape interval the policy states
    (docs/detection.md). With --output json: one object with every file's status,
    problems (each with file, line, column, field and message) and warnings.
    """
    from rollguard.engine import cadence
    from rollguard.policy import load_policy

    results: list[dict[str, Any]] = []
    for file in files:
        try:
            policy = load_policy(file)
        except PolicyError as exc:
            results.append(
                {"file": str(file), "ok": False, "problems": exc.problems, "warnings": []}
            )
            continue
        known = cadence.policy_cadence(policy)
        thin = {} if known is None else cadence.thin_windows(policy, known)
        warnings = [{"trigger": name, "message": why} for name, why in thin.items()]
        results.append({"file": str(file), "ok": True, "problems": [], "warnings": warnings})
    if output is OutputFormat.JSON:
        body = [{**item, "problems": [asdict(p) for p in item["problems"]]} for item in results]
        out.emit_json({"ok": all(item["ok"] for item in results), "files": body}, indent=2)
    else:
        for item in results:
            if item["ok"]:
                out.say(f"{item['file']}: ok")
            for warning in item["warnings"]:
                out.say(f"{item['file']}: warning: {warning['trigger']}: {warning['message']}")
            for problem in item["problems"]:
                out.say(out.clean(problem, limit=out.ECHO_LIMIT))
    if not all(item["ok"] for item in results):
        raise typer.Exit(int(ExitCode.INVALID))


@app.command()
def explain(file: Annotated[Path, typer.Argument(help="The policy file.")]) -> None:
    """Say in plain sentences what each trigger of a policy does.

    Exit codes: 0 explained · 2 invalid policy (FILE:LINE:COL: field: message).
    """
    from rollguard.controller.assemble import foreseen_fallbacks
    from rollguard.policy import load_policy
    from rollguard.policy.explain import custom_signals
    from rollguard.policy.explain import explain as sentences

    policy = load_policy(file)
    fallbacks = foreseen_fallbacks(policy, base_dir=file.resolve().parent)
    out.say((policy.name, out.BOLD), f" (deployment {policy.target.deployment})")
    for sentence in [*custom_signals(policy), *sentences(policy, fallbacks)]:
        out.say(f"• {sentence}")
