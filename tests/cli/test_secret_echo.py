"""Messages never echo a secret pasted where its variable's name belongs, nor 1 MB of input."""

from __future__ import annotations

import subprocess
import types
import typing
from pathlib import Path

import pydantic
import pytest

from rollguard.policy.model import Policy
from rollguard.policy.promotion import HOOK_NAMES

SECRET = "xoxb-1234-5678-s3cr3tT0kenValue"
HEADER = "target: {deployment: shop}\n"
PROMETHEUS = "metrics: {provider: prometheus, address: 'http://127.0.0.1:9', auth: {%s}}\n"
REPLAY = "metrics: {provider: replay, file: s.csv}\n"
DATADOG = "metrics: {provider: datadog, %s, queries: {requests: r, errors: e}}\n"
WEB = (
    "metrics: {provider: web, headers_env: {Authorization: '%s'}, queries: {requests: "
    "{url: 'http://127.0.0.1:9/r', json_path: '$.n'}, errors: "
    "{url: 'http://127.0.0.1:9/e', json_path: '$.n'}}}\n"
)
CLOUDWATCH = (
    "metrics: {provider: cloudwatch, region: eu-west-1, %s, queries: {requests: "
    "{namespace: App, metric: Requests}, errors: {namespace: App, metric: Errors}}}\n"
)
TRIGGER = "error_rate_trigger: {threshold: 5%}\n"

#: Every field naming the variable that holds a secret, and a policy with a secret pasted there.
PASTED = {
    "metrics.auth.bearer_token_env": PROMETHEUS % f"bearer_token_env: '{SECRET}'",
    "metrics.auth.password_env": PROMETHEUS % f"username: u, password_env: '{SECRET}'",
    "notifications.channels.*.url_env": REPLAY
    + f"notifications: {{channels: {{hook: {{type: apprise, url_env: '{SECRET}'}}}}}}\n",
    "notifications.channels.*.secret_env": REPLAY
    + "notifications: {channels: {hook: {type: webhook, url_env: HOOK_URL,"
    f" secret_env: '{SECRET}'}}}}}}\n",
    "audit.url_env": REPLAY + f"audit: {{url_env: '{SECRET}'}}\n",
    "metrics.api_key_env": DATADOG % f"api_key_env: '{SECRET}', app_key_env: DD_APP_KEY",
    "metrics.app_key_env": DATADOG % f"api_key_env: DD_API_KEY, app_key_env: '{SECRET}'",
    "metrics.headers_env": WEB % SECRET,
    "metrics.access_key_id_env": CLOUDWATCH
    % f"access_key_id_env: '{SECRET}', secret_access_key_env: AWS_KEY",
    "metrics.secret_access_key_env": CLOUDWATCH
    % f"access_key_id_env: AWS_ID, secret_access_key_env: '{SECRET}'",
    "audit.key_env": REPLAY + f"audit: {{key_env: '{SECRET}'}}\n",
    "runtime_security.falco_secret_env": REPLAY
    + f"runtime_security: {{falco_listen: '127.0.0.1:2801', falco_secret_env: '{SECRET}'}}\n",
    **{
        f"promotion.hooks.{hook}.secret_env": REPLAY
        + f"promotion: {{hooks: {{{hook}: {{url: 'http://h:9', secret_env: '{SECRET}'}}}}}}\n"
        for hook in HOOK_NAMES
    },
}


def _env_fields(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    """Every ``*_env`` field under ``model`` (dict values as ``*``)."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if name.endswith("_env"):
            found.add(path)
        for sub, star in _models(info.annotation):
            found |= _env_fields(sub, f"{path}.*." if star else f"{path}.")
    return found


def _models(annotation: object, star: bool = False) -> list[tuple[type[pydantic.BaseModel], bool]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [(annotation, star)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return _models(args[1], True)
    if origin in (typing.Union, types.UnionType, typing.Annotated, list):
        return [found for arg in args for found in _models(arg, star)]
    return []


#: ``*_env`` fields that name variables which are not secrets.
#: (passed on to commands; a secret one is refused)
NOT_SECRETS = {"target.executor.pass_env", "metrics.pass_env"}


def test_every_secret_name_field_is_covered() -> None:
    assert _env_fields(Policy) - NOT_SECRETS == set(PASTED)


@pytest.mark.parametrize("field", sorted(PASTED))
@pytest.mark.parametrize("command", [["policy", "check"], ["watch", "--for", "1s", "-p"]])
def test_a_pasted_secret_is_refused_and_never_printed(
    field: str,
    command: list[str],
    tmp_path: Path,
    rollguard_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(HEADER + PASTED[field] + TRIGGER)
    done = subprocess.run(
        [*rollguard_cmd, *command, str(policy)],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    printed = done.stdout + done.stderr
    assert field.rsplit(".", 1)[-1] in printed  # the field is named ...
    assert "never" in printed
    assert SECRET not in printed  # ... its value never shown
    assert "s3cr3t" not in printed


def test_a_huge_value_is_cut_in_messages(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(HEADER + REPLAY + f"error_rate_trigger: {{threshold: '{'x' * 1_000_000}'}}\n")
    for command in (["policy", "check"], ["watch", "-p"]):
        done = subprocess.run(
            [*rollguard_cmd, *command, str(policy)],
            capture_output=True,
            text=True,
            env=cli_env,
            check=False,
        )
        printed = done.stdout + done.stderr
        assert done.returncode == 2, printed[:2000]
        assert len(printed) < 2_000
        assert "more characters" in printed
