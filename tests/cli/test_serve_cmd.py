"""``rollguard serve`` refuses bad options with exit 2 and one message, never a traceback."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]
TOKEN = {"ROLLGUARD_API_TOKEN": "0123456789abcdef0123"}


def test_unknown_log_level_is_a_usage_error(run_cli: Run, tmp_path: Path) -> None:
    done = run_cli("serve", "--policies", str(tmp_path), "--log-level", "loud", env=TOKEN)
    assert done.returncode == 2
    assert "'loud' is not one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_listen_address_in_use_exits_2_not_3(run_cli: Run, tmp_path: Path) -> None:
    """uvicorn's own exit code (3) would read as "blocked"; the CLI says invalid input."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            "serve", "--policies", str(tmp_path), "--listen", f"127.0.0.1:{port}", env=TOKEN
        )
    assert done.returncode == 2, done.stderr
    assert f"--listen 127.0.0.1:{port}: cannot serve there" in done.stderr
    assert "Traceback" not in done.stderr
