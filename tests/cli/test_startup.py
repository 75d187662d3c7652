"""``rollguard --help`` stays fast because heavy libraries load only when a command runs."""

from __future__ import annotations

import json
import subprocess

HEAVY = ("pydantic", "httpx", "sqlalchemy", "numpy", "scipy", "fastapi", "kubernetes", "apprise")


def test_the_command_tree_imports_no_heavy_library(
    rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    probe = (
        "import json, sys; import rollguard.cli.main; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run(
        [rollguard_cmd[0], "-c", probe], capture_output=True, text=True, env=cli_env, check=True
    )
    assert json.loads(done.stdout) == []


def test_help_lists_every_command_and_the_exit_codes(
    rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    done = subprocess.run(
        [*rollguard_cmd, "--help"], capture_output=True, text=True, env=cli_env, check=True
    )
    commands = ("demo", "watch", "gate", "policy", "backtest", "drill", "audit", "report", "serve")
    for command in commands:
        assert command in done.stdout
    assert "4 inconclusive" in done.stdout
