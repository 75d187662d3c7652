"""``rollguard gate``: block a deployment before it starts.

Exit 0 when every check passes, 3 when the deployment is blocked, 2 when an
input (policy, report, ignore file) is invalid. Relative paths in the policy
(``baseline.file``, ``security_trigger.ignore_file``) are read from the
policy file's folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollguard.cli.options import OutputFormat, OutputOption, PolicyOption
from rollguard.errors import ExitCode

if TYPE_CHECKING:  # imported lazily at run time to keep `rollguard --help` fast
    from rollguard.policy.model import Policy
    from rollguard.scanners.gate import GateResult


def gate(
    policy_file: PolicyOption,
    vuln_reports: Annotated[
        list[Path] | None,
        typer.Option(
            "--vuln-report",
            help="A Trivy JSON, Grype JSON or SARIF report (repeatable).",
            show_default=False,
        ),
    ] = None,
    baseline_file: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="The baseline file (default: the policy's baseline.file).",
            show_default=False,
        ),
    ] = None,
    ignore_file: Annotated[
        Path | None,
        typer.Option(
            "--ignore-file",
            help="Accepted risks (default: security_trigger.ignore_file).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Check the baseline and the vulnerability reports; exit 0 pass, 3 blocked, 2 invalid."""
    from datetime import UTC, datetime

    from rollguard.cli import gate_render, out
    from rollguard.cli.github import GitHubActions
    from rollguard.policy import load_policy
    from rollguard.scanners.gate import evaluate_gate, read_baseline
    from rollguard.scanners.ignores import load_ignores
    from rollguard.scanners.reports import load_reports

    policy = load_policy(policy_file)
    base_dir = policy_file.parent
    reports = load_reports(vuln_reports or [])
    spec = policy.security_trigger
    ignore_path = ignore_file or (
        base_dir / spec.ignore_file if spec is not None and spec.ignore_file else None
    )
    ignores = load_ignores(ignore_path) if ignore_path is not None else []
    baseline_path = baseline_file or (
        base_dir / policy.baseline.file if policy.baseline.file else None
    )
    result = evaluate_gate(
        reports=reports,
        security=spec,
        ignores=ignores,
        baseline=read_baseline(baseline_path) if baseline_path is not None else None,
        baseline_max_age_seconds=policy.baseline.max_age,
        now=datetime.now(UTC),
    )
    # Annotations go to stderr in JSON mode so stdout stays one JSON document.
    github = GitHubActions.from_env(stream=None if output is OutputFormat.TEXT else sys.stderr)
    if output is OutputFormat.JSON:
        out.emit_json(result.as_dict(), indent=2)
    else:
        gate_render.print_text(result, out.console())
    if github.enabled:
        gate_render.annotate(result, github)
    _record(policy, result, base_dir=base_dir)
    raise typer.Exit(int(ExitCode.HEALTHY if result.passed else ExitCode.BLOCKED))


def _record(policy: Policy, result: GateResult, *, base_dir: Path) -> None:
    """Every gate verdict in the audit trail; a block also tells ``security_alert``."""
    import asyncio

    from rollguard.audit.factory import open_policy_store
    from rollguard.controller.gate_record import notify_gate, record_gate
    from rollguard.notifiers.factory import make_notifier

    store = open_policy_store(policy.audit, base_dir=base_dir)
    try:
        record_gate(policy, result, audit=store)
        from rollguard.cli import out

        for delivery in asyncio.run(notify_gate(policy, result, notifier=make_notifier(policy))):
            if not delivery.ok:
                out.warn(f"notification channel {delivery.channel} failed: {delivery.detail}")
    finally:
        store.close()
