"""``rollguard drill``: a rollback fire drill that leaves evidence in the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollguard.cli import out
from rollguard.cli.options import BaselineOption, OutputFormat, OutputOption, PolicyOption
from rollguard.wording import counted

if TYPE_CHECKING:
    from rollguard.audit.base import AuditStore
    from rollguard.baseline import Baseline
    from rollguard.controller.drill import DrillResult
    from rollguard.executors.base import Executor
    from rollguard.policy.model import Policy
    from rollguard.policy.triggers import Trigger

HELP = "\n\n".join(
    [
        "Prove a policy's rollback path works before a bad release needs it.",
        "Feeds the watch engine, on a simulated clock, measurements that breach one "
        "trigger (--trigger, default the policy's first rollback trigger by priority) "
        "while every other trigger reads healthy, checks that the decision names that "
        "trigger and its action, then runs the action: against a recording executor by "
        "default (nothing real is touched), or with --execute through the policy's real "
        "executor, reading its status back to confirm the canary has no traffic. One "
        "`drill` entry goes to the policy's audit store (none of the watch's own "
        "entries); `rollguard report` counts successful drills under 'Rollback triggers "
        "functional'. With --output json: one JSON object.",
        "Exit codes: 0 the drill passed · 2 invalid input · 4 the trigger did not fire "
        "on the breach (it is not functional) · 5 the action failed · 6 audit store broken.",
        "Example: rollguard drill --policy rollguard.yaml --trigger latency_trigger",
    ]
)


def drill(
    policy: PolicyOption,
    trigger: Annotated[
        str | None,
        typer.Option(
            "--trigger",
            "-t",
            help="The trigger to drill (default: first rollback trigger).",
            show_default=False,
        ),
    ] = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Run the action through the policy's real executor.")
    ] = False,
    baseline: BaselineOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Rehearse a rollback: breach one trigger, run its action, record a drill entry."""
    import asyncio

    from rollguard.audit.factory import open_policy_store
    from rollguard.controller.drill import pick_trigger, record_drill, record_unbuilt_executor
    from rollguard.errors import RollguardError
    from rollguard.executors.factory import make_executor
    from rollguard.policy import load_policy

    loaded = load_policy(policy)
    base_dir = policy.resolve().parent
    rule = pick_trigger(loaded, trigger)
    reference = _baseline(loaded, rule, base_dir=base_dir, override=baseline)
    store = open_policy_store(loaded.audit, base_dir=base_dir)  # broken: exit 6 before acting
    try:
        if execute and output is OutputFormat.TEXT:
            out.say(
                ("WARNING:", out.BAD),
                f" --execute: {rule.action.value} will run on the real target "
                f"({loaded.target.executor.type} executor) of {loaded.target.deployment}",
                stderr=True,
            )
        real = None
        if execute:
            try:
                real = make_executor(loaded)
            except RollguardError as exc:  # the rollback path is broken: a failed drill
                record_unbuilt_executor(loaded, rule, exc, audit=store)
                raise
        result = asyncio.run(
            _run(loaded, rule, executor=real, baseline=reference, store=store, base_dir=base_dir)
        )
        result.audit_id = record_drill(loaded, result, audit=store)
    finally:
        store.close()
    if output is OutputFormat.JSON:
        out.emit_json(result.as_dict())
    else:
        _print(result)
    raise typer.Exit(int(result.exit_code))


def _baseline(
    loaded: Policy, rule: Trigger, *, base_dir: Path, override: Path | None
) -> Baseline | None:
    """The baseline the drilled trigger needs; others may go without it."""
    from rollguard.controller.assemble import policy_baseline
    from rollguard.controller.drill import needs_baseline
    from rollguard.errors import InputError

    try:
        return policy_baseline(loaded, base_dir=base_dir, override=override)
    except InputError as exc:
        if override is not None:
            raise
        if needs_baseline(loaded, rule):
            raise InputError(
                f"{exc}; trigger {rule.name!r} compares with the baseline: "
                "give --baseline FILE or fix baseline.file"
            ) from exc
        return None  # only other triggers compare with it: they read no data


async def _run(
    loaded: Policy,
    rule: Trigger,
    *,
    executor: Executor | None,
    baseline: Baseline | None,
    store: AuditStore,
    base_dir: Path,
) -> DrillResult:
    """The drill: on the real ``executor`` under the deployment's lock, as a watch holds
    it; without one, against a recording executor."""
    import contextlib
    import uuid

    from rollguard.audit.locks import lock_key
    from rollguard.controller.drill import run_drill
    from rollguard.controller.recovery import deployment_lock, namespace_of
    from rollguard.executors.recording import RecordingExecutor

    execute = executor is not None
    if executor is None:
        executor = RecordingExecutor(canary_weight=loaded.rollback.canary_weight)
    owner = f"drill-{uuid.uuid4().hex}"
    lock: contextlib.AbstractAsyncContextManager[None] = (
        deployment_lock(
            store, lock_key(loaded.target.deployment, namespace_of(loaded)), owner=owner
        )
        if execute
        else contextlib.nullcontext()
    )
    try:
        async with lock:  # a live watch of the deployment: LockedError, nothing executed
            return await run_drill(
                loaded,
                rule,
                executor=executor,
                executed=execute,
                baseline=baseline,
                base_dir=base_dir,
            )
    finally:
        await executor.aclose()


def _print(result: DrillResult) -> None:
    from rollguard.policy.actions import gradual_canary_percent

    data = result.as_dict()
    breach = data["breach"]
    verdict = ("DRILL PASSED", "bold green") if result.passed else ("DRILL FAILED", out.BAD)
    mode = "executed on the real target" if result.executed else "dry run: recording executor"
    out.say(verdict, f"  trigger: {result.trigger}  action: {result.action.value}  ({mode})")
    if breach["method"] == "threshold":
        fed = f"canary {breach['signal']} {breach['value']:.4g} > limit {breach['limit']:.4g}"
        fed += f", {breach['requests']:g} requests, {counted(breach['persistence'], 'evaluation')}"
    else:
        counts = ", ".join(f"{k} {v:g}" for k, v in breach["counts"].items())
        fed = f"{breach['method']} test on {breach['signal']}, per interval: {counts}"
    out.say(f"breach:   {fed}")
    decision = data["decision"]
    out.say(
        f"decision: {decision['outcome']} · {decision['action']} by {decision['trigger']} "
        f"after {counted(result.evaluations, 'evaluation')} — {decision['reason']}"
    )
    for step in result.steps:
        if step.get("assumed"):  # nothing was checked: no tick
            out.say(f"  - {step.get('step')}: not read back ({step['assumed']})")
            continue
        mark = "✓" if step.get("ok") else "✗"
        extra = f"canary {step['canary_weight']}%" if "canary_weight" in step else ""
        if "to_stable_percent" in step:
            canary = gradual_canary_percent(step["from_percent"], step["to_stable_percent"])
            extra = (
                f"{step['to_stable_percent']}% of the canary's traffic to stable, canary {canary}%"
            )
        if step.get("canary_state"):
            extra += f" ({step['canary_state']})"
        out.say(f"  {mark} {step.get('step')}: {extra or step.get('detail', '')}")
    out.say(f"outcome:  {result.reason}")
    out.say(
        f"audit:    drill entry #{result.audit_id} ({'success' if result.passed else 'failure'})"
    )
