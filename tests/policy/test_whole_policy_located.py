"""Checks across fields are reported at the field that is wrong, not at the file's top.

A model validator sees the whole section (or the whole policy); it names the field
it blames, and ``policy check`` prints that field's own line, as it does for a
value of the wrong type.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollguard.errors import ExitCode, PolicyError
from rollguard.policy import parse_policy
from support import Run

#: Two lines: every case below starts on line 3.
HEADER = """\
target: {deployment: shop}
metrics: {provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}
"""


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (
            "error_rate_trigger:\n  threshold: 5%\n  query: sum(rate(x[1m]))\n",
            5,
            "error_rate_trigger.query",
            "only the prometheus provider runs",
        ),
        (
            "latency_trigger:\n  threshold: 30% increase from baseline\n",
            4,
            "latency_trigger.threshold",
            "baseline.file is not set",
        ),
        (
            "triggers:\n  slow:\n    increase_percent: 30\n    signal: latency_p95_ms\n",
            5,
            "triggers.slow.increase_percent",
            "baseline.file is not set",
        ),
        (
            "error_rate_trigger:\n  threshold: 5%\n  dry_run: true\n",
            5,
            "error_rate_trigger.dry_run",
            "every trigger is dry_run",
        ),
        (
            "memory_trigger:\n  above: 500\n  detection:\n    method: sequential\n",
            6,
            "memory_trigger.detection.method",
            "sequential detection exists for",
        ),
        (
            "memory_trigger: {above: 500}\npromotion:\n  steps: [50, 100]\n",
            4,
            "promotion",
            "needs an error_rate_trigger or a latency trigger",
        ),
        (
            "memory_trigger:\n  above: 500\n  measurement_window: 1m\n  window: 2m\n",
            6,
            "memory_trigger.window",
            "not both",
        ),
        (
            "error_rate_trigger: {threshold: 5%}\n"
            "notifications:\n  channels: {ops: {type: log}}\n"
            "  routes:\n    critical_alert:\n      - ops\n      - pager\n",
            9,
            "notifications.routes.critical_alert.1",
            "unknown channel 'pager'",
        ),
        (
            "error_rate_trigger: {threshold: 5%}\n"
            "promotion:\n  min_step_duration: 60\n  max_step_duration: 30\n",
            6,
            "promotion.max_step_duration",
            "shorter than min_step_duration",
        ),
        ("", 1, "(policy)", "no trigger"),  # nothing in the file to point at
    ],
)
def test_a_check_across_fields_names_the_field_and_its_line(
    text: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(HEADER + text, source="p.yaml")
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("p.yaml", line, field)
    assert words in problem.message


def test_a_command_executor_step_is_located_at_its_argument() -> None:
    text = (
        "target:\n  deployment: shop\n  executor:\n    type: command\n"
        "    rollback:\n      - helm\n      - rollback\n      - '{release}'\n"
        "metrics: {provider: replay, file: r.csv}\nerror_rate_trigger: {threshold: 5%}\n"
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (8, "target.executor.rollback.2")
    assert "unknown placeholder {release}" in problem.message


def test_policy_check_prints_file_line_field_and_what_is_expected(
    tmp_path: Path, run_cli: Run
) -> None:
    policy = tmp_path / "shop.yaml"
    policy.write_text(HEADER + "latency_trigger:\n  threshold: 30% increase from baseline\n")
    done = run_cli("policy", "check", str(policy))
    assert done.returncode == ExitCode.INVALID
    assert done.stdout.strip().splitlines() == [
        f"{policy}:4:3: latency_trigger.threshold: trigger 'latency_trigger' compares with "
        "the baseline, but baseline.file is not set (set it, or baseline.compare_with: stable)"
    ]
    assert "Traceback" not in done.stderr
