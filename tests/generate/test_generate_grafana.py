"""``rollguard generate grafana``: Grafana's model accepts it, promtool parses its queries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from generate_cases import PROMTOOL_CASES
from grafana_foundation_sdk.models.dashboard import Dashboard
from ruamel.yaml import YAML

from rollguard.generate import own_metrics
from rollguard.generate.grafana import dashboard
from rollguard.generate.source import load_source


@pytest.fixture
def seed_dashboard() -> dict[str, Any]:
    return dashboard(load_source(PROMTOOL_CASES / "seed-policy.yaml"))


def _panels(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel for panel in model["panels"] if panel["type"] != "row"}


def _exprs(model: dict[str, Any]) -> list[str]:
    exprs = [
        target["expr"]
        for panel in model["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    return exprs + [annotation["expr"] for annotation in model["annotations"]["list"]]


def test_dashboard_round_trips_through_grafanas_dashboard_model(
    seed_dashboard: dict[str, Any],
) -> None:
    parsed = Dashboard.from_json(seed_dashboard)
    again = json.loads(json.dumps(parsed.to_json(), default=lambda obj: obj.to_json()))
    extras = {"step", "titleFormat", "tagKeys", "textFormat"}
    expected = json.loads(json.dumps(seed_dashboard))
    for annotation in expected["annotations"]["list"]:
        for key in extras:
            annotation.pop(key)
    assert again == expected
    assert parsed.title == "rollguard: pqc-service"


def test_error_rate_stat_is_a_ratio_with_the_seeds_thresholds(
    seed_dashboard: dict[str, Any],
) -> None:
    panel = _panels(seed_dashboard)["Error rate, canary"]
    assert panel["type"] == "stat"
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(step["value"], step["color"]) for step in steps] == [
        (None, "green"),
        (2.0, "yellow"),
        (5.0, "red"),
    ]
    expr = panel["targets"][0]["expr"]
    assert expr.startswith(
        '100 * (sum(rate(http_requests_total{code=~"5..",version="canary"}[5m]))'
    )
    assert '/ sum(rate(http_requests_total{version="canary"}[5m]))' in expr


@pytest.mark.parametrize(
    ("title", "baseline", "limit"),
    [
        ("p95 latency: stable vs canary", 200, 260),
        ("Memory (resident): stable vs canary", 300, 350),
    ],
)
def test_side_by_side_panels_show_stable_canary_baseline_and_limit(
    seed_dashboard: dict[str, Any], title: str, baseline: float, limit: float
) -> None:
    panel = _panels(seed_dashboard)[title]
    legends = [target["legendFormat"] for target in panel["targets"]]
    assert legends == ["stable", "canary", "baseline"]
    assert 'version="stable"' in panel["targets"][0]["expr"]
    assert 'version="canary"' in panel["targets"][1]["expr"]
    assert panel["targets"][2]["expr"] == f"vector({baseline})"
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"value": limit, "color": "red"}


def test_every_query_uses_the_datasource_variable(seed_dashboard: dict[str, Any]) -> None:
    variables = seed_dashboard["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in variables] == [
        ("datasource", "datasource", "prometheus")
    ]
    for panel in _panels(seed_dashboard).values():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for annotation in seed_dashboard["annotations"]["list"]:
        assert annotation["datasource"]["uid"] == "${datasource}"


def test_decisions_are_annotations_from_rollguards_own_metrics(
    seed_dashboard: dict[str, Any],
) -> None:
    annotations = {item["name"]: item for item in seed_dashboard["annotations"]["list"]}
    decisions = annotations["rollguard decisions"]
    assert own_metrics.DECISIONS in decisions["expr"]
    assert 'action!="continue"' in decisions["expr"]
    assert decisions["titleFormat"] == "{{action}}"
    assert own_metrics.ROLLBACKS in annotations["rollguard rollbacks"]["expr"]


def test_panels_do_not_overlap(seed_dashboard: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in seed_dashboard["panels"]:
        pos = panel["gridPos"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert pos["x"] + pos["w"] <= 24
        assert not cells & area, panel["title"]
        cells |= area


def test_stable_comparison_policy_draws_no_baseline_line() -> None:
    model = dashboard(load_source(PROMTOOL_CASES / "stable-policy.yaml"))
    panel = _panels(model)["p95 latency: stable vs canary"]
    assert [target["legendFormat"] for target in panel["targets"]] == ["stable", "canary"]
    assert 'track="canary"' in panel["targets"][1]["expr"]
    assert "http_server_duration_seconds_bucket" in panel["targets"][1]["expr"]


@pytest.mark.real_server
@pytest.mark.parametrize("policy", ["seed-policy.yaml", "stable-policy.yaml"])
def test_every_query_is_valid_promql(tmp_path: Path, promtool: Path, policy: str) -> None:
    model = dashboard(load_source(PROMTOOL_CASES / policy))
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"rollguard:query_{n}", "expr": expr}
                    for n, expr in enumerate(_exprs(model))
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    with path.open("w") as handle:
        YAML().dump(rules, handle)
    check = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(_exprs(model)) >= 10


def test_cli_writes_the_dashboard(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    for name in ("seed-policy.yaml", "performance-baseline.json"):
        shutil.copy(PROMTOOL_CASES / name, tmp_path / name)
    output = tmp_path / "dashboard.json"
    policy = tmp_path / "seed-policy.yaml"
    result = subprocess.run(
        [
            *rollguard_cmd,
            "generate",
            "grafana",
            "-p",
            str(policy),
            "-f",
            str(output),
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text())["uid"] == "rollguard-pqc-service"
