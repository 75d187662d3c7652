"""The command executor running real commands: a state-keeping deploy tool, sh, sleep, false."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rollguard.errors import ExecutorError
from rollguard.executors.base import ActionResult
from rollguard.executors.command import CommandExecutor
from rollguard.policy.model import CommandExecutorSpec
from support import process_running, wait_until

TOOL = str(Path(__file__).resolve().parents[1] / "servers" / "weights_cli.py")


def tool_spec(state: Path, **changes: object) -> CommandExecutorSpec:
    """Every action wired to weights_cli.py keeping its state in ``state``."""
    base = [sys.executable, TOOL, str(state)]
    spec: dict[str, object] = {
        "rollback": [*base, "rollback"],
        "set_weight": [*base, "set", "{percent}"],
        "scale": [*base, "scale", "{factor}"],
        "isolate": [*base, "isolate"],
        "status": [*base, "status"],
        "timeout": "20s",
        **changes,
    }
    return CommandExecutorSpec.model_validate(spec)


def _log(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(f"{state}.log").read_text().splitlines()]


def test_actions_run_with_placeholders_and_environment(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    executor = CommandExecutor(
        tool_spec(state), deployment="shop", context={"trigger": "error_rate"}
    )

    async def go() -> tuple[ActionResult, ActionResult, int]:
        shifted = await executor.set_canary_weight(percent=30)
        rolled = await executor.rollback()
        return shifted, rolled, (await executor.status()).canary_weight

    shifted, rolled, weight = asyncio.run(go())
    assert shifted.ok, shifted.detail
    assert rolled.ok, rolled.detail
    assert weight == 0
    assert json.loads(state.read_text()) == {"canary_weight": 0, "canary_state": "retired"}
    first = _log(state)[0]
    assert first["argv"] == ["set", "30"]
    assert first["env"] == {
        "ROLLGUARD_ACTION": "set_weight",
        "ROLLGUARD_DEPLOYMENT": "shop",
        "ROLLGUARD_CANARY_PERCENT": "30",
        "ROLLGUARD_STABLE_PERCENT": "70",
        "ROLLGUARD_TRIGGER": "error_rate",
    }
    assert shifted.output["exit_code"] == 0
    assert shifted.output["stdout"] == "set done\n"


def test_non_zero_exit_is_a_failed_action_with_its_output(tmp_path: Path) -> None:
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["sh", "-c", "echo rolling; echo 'release not found' >&2; exit 3"]}
    )
    result = asyncio.run(CommandExecutor(spec, deployment="shop").rollback())
    assert not result.ok
    assert result.detail == "rollback: sh exited with code 3: release not found"
    assert result.output["exit_code"] == 3
    assert result.output["stdout"] == "rolling\n"
    assert result.output["stderr"] == "release not found\n"


def test_timeout_kills_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["sh", "-c", f"sleep 30; touch {marker}"], "timeout": "0.3s"}
    )
    result = asyncio.run(CommandExecutor(spec, deployment="shop").rollback())
    assert not result.ok
    assert "timed out after 0.3s" in result.detail
    assert result.output["exit_code"] is None
    assert not marker.exists()


def test_a_timeout_bounds_the_call_when_a_grandchild_left_the_group_holding_stdout(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    result = _rollback_beside_a_setsid_grandchild(pid_file, then="echo half-way; exec sleep 30")
    grandchild = int(pid_file.read_text())
    try:
        # Without the bound the call would return only once the grandchild is gone.
        assert process_running(grandchild)
        assert not result.ok
        assert "timed out after 1s" in result.detail
        assert result.output["exit_code"] is None
        assert result.output["stdout"] == "half-way\n"  # what was read before the deadline
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)


def test_a_command_that_exits_but_leaves_its_output_held_open_times_out_saying_so(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    result = _rollback_beside_a_setsid_grandchild(pid_file, then="echo done")
    grandchild = int(pid_file.read_text())
    try:
        assert process_running(grandchild)
        assert not result.ok
        assert result.detail.endswith(
            "timed out after 1s (it exited with code 0, but a process it started kept its "
            "output open)"
        )
        assert result.output["exit_code"] == 0
        assert result.output["stdout"] == "done\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)


def test_cancelling_an_action_kills_its_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "command.pid"
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], "timeout": "60s"}
    )

    async def cancel_onceprocess_running() -> int:
        action = asyncio.create_task(CommandExecutor(spec, deployment="shop").rollback())
        await asyncio.to_thread(wait_until, lambda: pid_file.exists() and pid_file.read_text())
        action.cancel()
        with pytest.raises(asyncio.CancelledError):
            await action
        return int(pid_file.read_text())

    pid = asyncio.run(cancel_onceprocess_running())
    wait_until(lambda: not process_running(pid), what="the cancelled command to be killed")


def _rollback_beside_a_setsid_grandchild(pid_file: Path, *, then: str) -> ActionResult:
    """A rollback whose shell first starts ``sleep 30`` in its own session (so killing
    the command's group misses it) sharing its stdout, then runs ``then``; timeout 1 s."""
    line = (
        f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 30' & "
        f"until [ -s {pid_file} ]; do sleep 0.01; done; {then}"
    )
    spec = CommandExecutorSpec.model_validate({"rollback": [line], "shell": True, "timeout": "1s"})
    return asyncio.run(CommandExecutor(spec, deployment="shop").rollback())


def test_no_shell_by_default_so_metacharacters_stay_literal(tmp_path: Path) -> None:
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["echo", "{deployment}; touch x", "$HOME"]}
    )
    result = asyncio.run(CommandExecutor(spec, deployment="shop").rollback())
    assert result.ok
    assert result.output["stdout"] == "shop; touch x $HOME\n"


def test_shell_mode_quotes_placeholder_values(tmp_path: Path) -> None:
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["echo deploying {deployment} && echo $ROLLGUARD_ACTION"], "shell": True}
    )
    result = asyncio.run(CommandExecutor(spec, deployment="shop; rm -rf /").rollback())
    assert result.ok
    assert result.output["stdout"] == "deploying shop; rm -rf /\nrollback\n"


def test_isolate_without_its_command_runs_rollback(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    executor = CommandExecutor(tool_spec(state, isolate=None, status=None), deployment="shop")
    result = asyncio.run(executor.isolate())
    assert result.ok
    assert "ran the rollback command instead" in result.detail
    status = asyncio.run(executor.status())
    assert (status.canary_weight, status.canary_state) == (0, "isolated")
    assert _log(state)[0]["env"]["ROLLGUARD_ACTION"] == "isolate"


def test_missing_set_weight_command_fails_clearly(tmp_path: Path) -> None:
    executor = CommandExecutor(tool_spec(tmp_path / "s.json", set_weight=None), deployment="shop")
    result = asyncio.run(executor.set_canary_weight(percent=50))
    assert not result.ok
    assert "target.executor.set_weight" in result.detail


def test_command_not_found_names_the_field() -> None:
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["helm-that-is-not-installed", "rollback"]}
    )
    with pytest.raises(
        ExecutorError,
        match=re.escape("target.executor.rollback: command 'helm-that-is-not-installed'"),
    ):
        asyncio.run(CommandExecutor(spec, deployment="shop").rollback())


def test_bad_status_output_is_named(tmp_path: Path) -> None:
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["true"], "status": ["echo", "all good"]}
    )
    with pytest.raises(ExecutorError, match="must print JSON"):
        asyncio.run(CommandExecutor(spec, deployment="shop").status())


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("{percent:d}", r"set_weight: cannot fill '\{percent:d\}': Unknown format code 'd'"),
        ("{percent!x}", r"set_weight: cannot fill '\{percent!x\}': Unknown conversion"),
        ("{percent:>{width}}", r"set_weight: placeholder 'width' has no value"),
    ],
)
def test_a_placeholder_the_schema_lets_through_but_format_refuses_is_named(
    tmp_path: Path, argument: str, message: str
) -> None:
    marker = tmp_path / "ran"
    spec = CommandExecutorSpec.model_validate(
        {"rollback": ["true"], "set_weight": ["touch", str(marker), argument]}
    )
    with pytest.raises(ExecutorError, match=message):
        asyncio.run(CommandExecutor(spec, deployment="shop").set_canary_weight(percent=10))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"set_weight": ["x"]}, "needs a rollback command"),
        ({"rollback": []}, "needs a rollback command"),
        ({"rollback": ["helm", "rollback", "{release}"]}, "unknown placeholder {release}"),
        ({"rollback": ["a", "b"], "shell": True}, "one command line"),
    ],
)
def test_bad_specs_are_policy_errors(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CommandExecutorSpec.model_validate(spec)


def test_the_audit_key_variable_is_withheld_from_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rollguard.executors.factory import make_executor
    from rollguard.policy.load import parse_policy

    monkeypatch.setenv("AUDIT_KEY", "k3y-exec-9a8b7c6d5e4f3a2b-never-shown")
    monkeypatch.setenv("OTHER_VAR", "still-passed")
    policy = parse_policy(
        "target:\n"
        "  deployment: shop\n"
        "  executor:\n"
        "    type: command\n"
        """    rollback: [sh, -c, 'echo "[$AUDIT_KEY] [$OTHER_VAR]"']\n"""
        "    pass_env: [OTHER_VAR]\n"  # only what the policy passes on, by name
        "metrics: {provider: replay, file: series.csv}\n"
        "audit: {key_env: AUDIT_KEY}\n"
        "error_rate_trigger: {threshold: 5%}\n"
    )
    result = asyncio.run(make_executor(policy).rollback())
    assert result.ok, result.detail
    assert result.output["stdout"] == "[] [still-passed]\n"
