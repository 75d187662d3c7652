"""The examples work as shipped: every policy is valid, the seed policy finds its
baseline, `serve --policies examples` loads them all, and the demo's "by hand"
recipe in docs/demo.md runs as pasted."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support import free_port, require_binary, wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICIES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the repository's examples, as a user's checkout has them."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)


def test_every_example_policy_is_valid_and_watches_its_own_deployment(
    rollguard_cmd: list[str], cli_env: dict[str, str], checkout: Path
) -> None:
    from rollguard.policy import load_policy

    done = _run([*rollguard_cmd, "policy", "check", *map(str, POLICIES)], cli_env, checkout)
    assert done.returncode == 0, done.stdout
    deployments = [load_policy(path).target.deployment for path in POLICIES]
    assert len(set(deployments)) == len(deployments), deployments


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "alerts", "-p", "examples/seed-policy.yaml"],
        ["generate", "grafana", "-p", "examples/seed-policy.yaml"],
        ["drill", "-p", "examples/seed-policy.yaml", "--trigger", "latency_trigger"],
        ["baseline", "show", "examples/performance-baseline.json"],
        ["policy", "explain", "examples/seed-policy.yaml"],
    ],
)
def test_the_seed_policy_finds_its_shipped_baseline(
    rollguard_cmd: list[str], cli_env: dict[str, str], checkout: Path, args: list[str]
) -> None:
    done = _run([*rollguard_cmd, *args], cli_env, checkout)
    assert done.returncode == 0, done.stderr


def test_generate_takes_another_baseline(
    rollguard_cmd: list[str], cli_env: dict[str, str], checkout: Path
) -> None:
    other = checkout / "other.json"
    text = (EXAMPLES / "performance-baseline.json").read_text()
    other.write_text(text.replace('"p95_latency_ms": 30.0', '"p95_latency_ms": 100.0'))
    shipped = _run(
        [*rollguard_cmd, "generate", "alerts", "-p", "examples/seed-policy.yaml"], cli_env, checkout
    )
    overridden = _run(
        [*rollguard_cmd, "generate", "alerts", "-p", "examples/seed-policy.yaml", "--baseline",
         str(other)],
        cli_env,
        checkout,
    )  # fmt: skip
    assert (shipped.returncode, overridden.returncode) == (0, 0), overridden.stderr
    assert "> 39" in shipped.stdout  # p95 30 ms + 30 %
    assert "> 130" in overridden.stdout  # p95 100 ms + 30 %


def test_serve_loads_every_example(
    rollguard_cmd: list[str], cli_env: dict[str, str], checkout: Path
) -> None:
    port = free_port()
    with subprocess.Popen(
        [*rollguard_cmd, "serve", "--policies", "examples", "--listen", f"127.0.0.1:{port}"],
        cwd=checkout,
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as served:
        try:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                try:
                    return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return served.poll() is not None  # stop waiting when serve died

            wait_until(ready, timeout=60, what="serve to load the examples")
            assert served.poll() is None, served.stderr.read() if served.stderr else ""
            readiness = httpx.get(f"{url}/readyz", timeout=5).json()
            listed = httpx.get(f"{url}/api/v1/deployments", timeout=5).json()
        finally:
            served.send_signal(signal.SIGTERM)
            served.wait(30)
    assert readiness["policy_errors"] == 0, listed
    assert readiness["deployments"] == len(POLICIES)


def _recipe() -> str:
    text = (ROOT / "docs" / "demo.md").read_text()
    section = text[text.index("## The parts, by hand") :]
    match = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
def test_the_demo_recipe_runs_as_pasted(cli_env: dict[str, str], checkout: Path) -> None:
    """Pasted from docs/demo.md into bash at the checkout's root: the canary is broken,
    rollguard rolls it back, and the parts are stopped."""
    require_binary("curl", hint="apt-get install curl")
    bash = require_binary("bash", hint="apt-get install bash")
    ports = (8001, 8002, 8090)
    for port in ports:  # the recipe's fixed ports must be free, or the test says why
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.TransportError:
            continue
        pytest.skip(f"port {port} is taken on this machine; the recipe needs it")
    # `python` and `rollguard` as a user's shell finds them: this environment's.
    env = {**cli_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{cli_env['PATH']}"}
    done = subprocess.run(
        [str(bash), "-c", _recipe()],
        capture_output=True,
        text=True,
        env=env,
        cwd=checkout,
        timeout=240,
        check=False,
    )
    assert "ROLLED_BACK" in done.stdout, done.stdout + done.stderr
    assert "trigger: error_rate_trigger" in done.stdout
    listed = _run(
        [sys.executable, "-m", "rollguard", "audit", "list", "-p", "examples/demo-policy.yaml"],
        cli_env,
        checkout,
    )
    assert "action_result" in listed.stdout, listed.stderr

    def stopped() -> bool:
        for port in ports:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            except httpx.TransportError:
                continue
            return False
        return True

    wait_until(stopped, timeout=20, what="the recipe's parts to stop")
