"""``serve`` runs runtime security as ``watch`` does: the access log reaches the triggers."""

from __future__ import annotations

from pathlib import Path

from serve_harness import policy, recording, start_serve

from support import wait_until

ATTACK = (
    '10.0.0.9 - - [27/Nov/2026:10:00:05 +0000] "GET /items?id=1%27%20UNION%20SELECT%20'
    'password%20FROM%20users-- HTTP/1.1" 200 512 "-" "sqlmap/1.7"\n'
)
RUNTIME_SECURITY = """\
runtime_security:
  suspicious_patterns: immediate_detection
  access_log: access.log
"""


def test_an_attack_in_the_access_log_isolates_the_canary_under_serve(tmp_path: Path) -> None:
    (tmp_path / "healthy.csv").write_text(recording(seconds=3600, bad_after=None))
    log = tmp_path / "access.log"
    log.write_text("")  # read from its end, as tail -f does: the attack comes later
    (tmp_path / "shop.yaml").write_text(policy("shop", "healthy.csv") + RUNTIME_SECURITY)
    with start_serve(tmp_path) as served:
        wait_until(
            lambda: served.detail("shop")["evaluations"] >= 2, timeout=20, what="shop watched"
        )
        with log.open("a") as handle:
            handle.write(ATTACK)
        shop = served.wait_status("shop", "rolled_back")
    decision = shop["last_decision"]
    assert isinstance(decision, dict)
    assert decision["trigger"] == "runtime_security.suspicious_patterns"
    assert decision["action"] == "traffic_isolation_and_rollback"
    evidence = next(e for e in decision["evidence"] if e["trigger"] == decision["trigger"])
    assert evidence["value"] >= 1  # the sqlmap request, read from the access log
