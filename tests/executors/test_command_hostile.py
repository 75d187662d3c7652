"""The command executor against hostile names and a secret-laden environment.

Found by an adversarial run: with ``shell: true`` a placeholder in double quotes
ran ``$(...)`` from the deployment name, and every notification secret in
rollguard's environment reached the command, its output, and from there the
audit trail and ``audit export``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from rollguard.errors import ExecutorError, PolicyError
from rollguard.executors.command import BASE_ENV, CommandExecutor
from rollguard.policy import parse_policy
from rollguard.policy.model import CommandExecutorSpec
from rollguard.policy.secrets import REDACTED, Redactor
from support import Run

METRICS = "metrics: {provider: prometheus, address: 'http://127.0.0.1:9090'}\n"
TRIGGER = "error_rate_trigger: {above: 5}\n"


def command_policy(
    executor: str, *, deployment: str = "shop", extra: str = "", metrics: str = METRICS
) -> str:
    return (
        f"target:\n  deployment: {deployment}\n  executor:\n    type: command\n{executor}"
        + metrics
        + TRIGGER
        + extra
    )


@pytest.mark.parametrize(
    "line",
    [
        'echo "rollback {deployment}"',
        "echo 'rollback {deployment}'",
        'echo "it\'s {deployment}"',
        'kubectl annotate deploy/x note="{action} at {percent}"',
    ],
)
def test_a_placeholder_inside_quotes_is_refused_with_shell(line: str) -> None:
    with pytest.raises(ValidationError, match=r"placeholder \{\w+\} is inside quotes"):
        CommandExecutorSpec.model_validate({"rollback": [line], "shell": True})


@pytest.mark.parametrize(
    "line", ["echo rollback {deployment}", 'echo "done:" {deployment}', "echo \\'{deployment}"]
)
def test_a_bare_placeholder_is_accepted_with_shell(line: str) -> None:
    assert CommandExecutorSpec.model_validate({"rollback": [line], "shell": True}).shell


def test_without_a_shell_quotes_are_only_text() -> None:
    spec = CommandExecutorSpec.model_validate({"rollback": ['echo "rollback {deployment}"']})
    assert not spec.shell


@pytest.mark.parametrize(
    "name",
    ['"$(touch pwned)"', '"shop;id"', "Shop", "shop_v2", "-shop", "shop-", '"a b"', "x" * 254],
)
def test_deployment_names_follow_kubernetes_dns_1123(name: str) -> None:
    with pytest.raises(PolicyError, match="is not a DNS-1123 name"):
        parse_policy(
            command_policy("    rollback: [helm, rollback, '{deployment}']\n", deployment=name)
        )


@pytest.mark.parametrize("name", ["shop", "shop-v2", "team.shop", "a", "x" * 253])
def test_dns_1123_names_load(name: str) -> None:
    policy = parse_policy(command_policy("    rollback: [helm, rollback]\n", deployment=name))
    assert policy.target.deployment == name


def test_the_executor_refuses_a_quoted_placeholder_whatever_spec_it_is_given(
    tmp_path: Path,
) -> None:
    # A spec built without validation, a hostile name given directly: the second fence holds.
    spec = CommandExecutorSpec.model_construct(  # noqa: S604 a quoted placeholder, on purpose
        rollback=['echo "rollback {deployment}"'],
        shell=True,
        timeout=10.0,
        env={},
        pass_env=[],
        workdir=str(tmp_path),
        set_weight=None,
        scale=None,
        isolate=None,
        status=None,
    )
    executor = CommandExecutor(spec, deployment="$(touch pwned)")
    with pytest.raises(ExecutorError, match="is inside quotes"):
        asyncio.run(executor.rollback())
    assert not (tmp_path / "pwned").exists()


SECRETS = {
    "AUDIT_KEY": "audit-key-5f1d2c3b4a596877",
    "HOOK_URL": "https://hooks.example.test/T000/B000/hook-token-ab12cd34",
    "HOOK_SECRET": "hook-signing-key-9z8y7x6w",
    "SLACK_URL": "slack://xoxb-slack-token-1234/C0123456",
    "ROLLGUARD_API_TOKEN": "api-token-0123456789abcdef",
    "PROM_TOKEN": "prom-bearer-token-42",
}
SECRET_METRICS = (
    "metrics: {provider: prometheus, address: 'http://127.0.0.1:9090',"
    " auth: {bearer_token_env: PROM_TOKEN}}\n"
)
INLINE_URL = "pover://inline-user-key@inline-app-token"
SECRET_POLICY = (
    "audit: {key_env: AUDIT_KEY}\n"
    "notifications:\n  channels:\n"
    "    hooks: {type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET}\n"
    "    slack: {type: apprise, url_env: SLACK_URL}\n"
    f"    inline: {{type: apprise, url: '{INLINE_URL}'}}\n"
)


def test_pass_env_may_not_name_a_secret() -> None:
    executor = "    rollback: [helm, rollback]\n    pass_env: [KUBECONFIG, HOOK_SECRET]\n"
    said = r"pass_env\.1: HOOK_SECRET holds a secret \(notifications"
    with pytest.raises(PolicyError, match=said):
        parse_policy(command_policy(executor, extra=SECRET_POLICY))


def test_a_command_gets_only_its_documented_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**SECRETS, "KUBECONFIG": "/etc/kube", "UNRELATED": "x"}.items():
        monkeypatch.setenv(name, value)
    from rollguard.executors.factory import make_executor

    printer = tmp_path / "print_env.py"
    printer.write_text("import json, os\nprint(json.dumps(dict(os.environ)))\n")
    executor = (
        f"    rollback: [{sys.executable}, {printer}]\n"
        "    pass_env: [KUBECONFIG]\n    env: {HELM_NAMESPACE: shop}\n"
    )
    policy = parse_policy(command_policy(executor, extra=SECRET_POLICY))
    result = asyncio.run(make_executor(policy).rollback())
    assert result.ok, result.detail
    seen = json.loads(str(result.output["stdout"]))
    documented = set(BASE_ENV) | {"KUBECONFIG", "HELM_NAMESPACE"}
    assert {name for name in seen if not name.startswith("ROLLGUARD_")} <= documented
    assert seen["KUBECONFIG"] == "/etc/kube"
    assert "ROLLGUARD_API_TOKEN" not in seen
    assert not set(SECRETS.values()) & set(seen.values())


def test_secrets_a_command_prints_are_redacted_before_they_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    from rollguard.executors.factory import make_executor

    # A command can learn a secret another way (a file, a vault); its output is still clean.
    leaked = tmp_path / "leak.txt"
    leaked.write_text("\n".join([*SECRETS.values(), INLINE_URL, "not a secret"]))
    executor = f"    rollback: [sh, -c, 'cat {leaked}; cat {leaked} >&2; exit 3']\n"
    policy = parse_policy(command_policy(executor, extra=SECRET_POLICY, metrics=SECRET_METRICS))
    result = asyncio.run(make_executor(policy).rollback())
    assert not result.ok
    recorded = json.dumps(result.output) + result.detail
    for value in SECRETS.values():
        assert value not in recorded
    assert INLINE_URL not in recorded
    assert recorded.count(REDACTED) >= 2 * (len(SECRETS) + 1)
    assert "not a secret" in recorded


def test_a_drill_on_record_and_its_export_hold_no_secret(tmp_path: Path, run_cli: Run) -> None:
    printer = tmp_path / "print_env.py"
    printer.write_text("import os\nfor k, v in sorted(os.environ.items()): print(k, v)\n")
    status = tmp_path / "status.py"
    status.write_text('print(\'{"canary_weight": 0, "canary_state": "retired"}\')\n')
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        command_policy(
            f"    rollback: [{sys.executable}, {printer}]\n"
            f"    status: [{sys.executable}, {status}]\n",
            extra=SECRET_POLICY,
            metrics=SECRET_METRICS,
        )
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=SECRETS, timeout=120)

    drill = run("drill", "--policy", str(policy), "--execute", "-o", "json")
    assert drill.returncode == 0, drill.stderr
    exported = run("audit", "export", "--policy", str(policy))
    listed = run("audit", "list", "--policy", str(policy), "-o", "json")
    assert exported.returncode == 0, exported.stderr
    assert "ROLLGUARD_ACTION rollback" in exported.stdout  # the command's output is there
    for output in (drill.stdout, drill.stderr, exported.stdout, listed.stdout):
        for value in SECRETS.values():
            assert value not in output


def test_short_values_are_not_redacted() -> None:
    assert Redactor(["abc", "long-enough-secret"]).redact("abc long-enough-secret") == (
        f"abc {REDACTED}"
    )


def test_a_secret_pasted_into_pass_env_is_refused_without_being_echoed() -> None:
    pasted = "xoxb-1234-5678-s3cr3tT0ken"
    executor = f"    rollback: [helm, rollback]\n    pass_env: [KUBECONFIG, '{pasted}']\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(command_policy(executor))
    assert "entry 2: expected the name of an environment variable" in str(caught.value)
    assert pasted not in str(caught.value)
