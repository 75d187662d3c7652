"""A watcher assembled from a policy: the access log answers runtime-security signals."""

from __future__ import annotations

from pathlib import Path

from rollguard.audit.base import MemoryAuditSink
from rollguard.controller import Outcome
from rollguard.controller.assemble import Overrides, assemble
from rollguard.engine.evaluate import Evaluation
from rollguard.notifiers.log import LogNotifier
from rollguard.policy import Action, parse_policy

POLICY = """\
target: {deployment: shop}
metrics: {provider: replay, file: series.csv}
analysis: {interval: 5s}
error_rate_trigger: {threshold: 5%, window: 1m}
runtime_security:
  suspicious_patterns: immediate_detection
  unauthorized_access_attempts: 5 per minute
  access_log: access.log
"""

BENIGN = (
    '10.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /search?q=union+station HTTP/1.1" '
    '200 512 "-" "Mozilla/5.0"\n'
)
ATTACK = (
    '10.0.0.9 - - [27/Nov/2026:10:00:05 +0000] "GET /items?id=1%27%20UNION%20SELECT%20'
    'password%20FROM%20users-- HTTP/1.1" 200 512 "-" "sqlmap/1.7"\n'
)


def write_series(folder: Path) -> None:
    rows = ["time,version,requests,errors,latency_p95_ms,memory_mb"]
    for t in range(5, 305, 5):
        rows += [f"{t},stable,400,1,120,300", f"{t},canary,100,0,120,300"]
    (folder / "series.csv").write_text("\n".join(rows) + "\n")


async def test_an_attack_in_the_access_log_isolates_the_canary(tmp_path: Path) -> None:
    write_series(tmp_path)
    log = tmp_path / "access.log"
    log.write_text(BENIGN)
    policy = parse_policy(POLICY)
    seen: list[Evaluation] = []

    def attack_on_the_fourth(evaluation: Evaluation) -> None:
        seen.append(evaluation)
        with log.open("a") as handle:
            handle.write(BENIGN if len(seen) != 4 else ATTACK)

    audit = MemoryAuditSink()
    watcher = assemble(
        policy,
        Overrides(
            base_dir=tmp_path,
            audit=audit,
            notifier=LogNotifier(),
            on_evaluation=attack_on_the_fourth,
        ),
    )
    try:
        result = await watcher.run(duration_seconds=300)
    finally:
        await watcher.provider.aclose()
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.action is Action.TRAFFIC_ISOLATION_AND_ROLLBACK
    assert result.trigger == "runtime_security.suspicious_patterns"
    assert result.evaluations == 5  # the attack written after the 4th is read by the 5th
    statuses = {r.trigger: r.status.value for r in seen[2].results}
    assert statuses["runtime_security.suspicious_patterns"] == "ok"
    assert statuses["runtime_security.unauthorized_access_attempts"] == "ok"


async def test_a_command_executor_sees_the_decision_in_its_environment(tmp_path: Path) -> None:
    write_series(tmp_path)
    series = tmp_path / "series.csv"
    series.write_text(series.read_text().replace(",canary,100,0,", ",canary,100,30,"))
    out = tmp_path / "env.txt"
    policy = parse_policy(
        POLICY.split("runtime_security:", maxsplit=1)[0].replace(
            "target: {deployment: shop}",
            "target:\n  deployment: shop\n  executor:\n    type: command\n"
            f"    rollback: [sh, -c, 'env > {out}']",
        )
    )
    watcher = assemble(
        policy, Overrides(base_dir=tmp_path, audit=MemoryAuditSink(), notifier=LogNotifier())
    )
    result = await watcher.run(duration_seconds=300)
    assert result.outcome is Outcome.ROLLED_BACK
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["ROLLGUARD_ACTION"] == "rollback"
    assert env["ROLLGUARD_DEPLOYMENT"] == "shop"
    assert env["ROLLGUARD_TRIGGER"] == "error_rate_trigger"
    assert env["ROLLGUARD_SEVERITY"] == "critical"
    assert env["ROLLGUARD_REASON"].startswith("error_rate_percent 30 > limit 5")
