"""``rollguard serve``'s API against a real uvicorn: status, commands, auth, bad input."""

from __future__ import annotations

import re
from pathlib import Path

from serve_harness import TOKEN, Served, policy

from rollguard.executors import recording
from support import wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The harness's policies use the noop executor: its split is what it was told, never read.
NOOP = recording.ASSUMED


def _metric(served: Served, pattern: str) -> float:
    text = served.client.get("/metrics").text
    match = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{pattern} not in /metrics"
    return float(match.group(1))


def test_health_and_readiness(served: Served) -> None:
    assert served.client.get("/healthz").json() == {"status": "ok"}
    ready = served.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "deployments": 2, "policy_errors": 1}


def test_bad_policy_is_reported_with_file_and_line_while_others_run(served: Served) -> None:
    body = served.client.get("/api/v1/deployments").json()
    assert sorted(d["name"] for d in body["deployments"]) == ["cart", "shop"]
    [error] = body["policy_errors"]
    assert error["location"] == f"{served.folder / 'broken.yaml'}:4:3"
    assert error["field"] == "error_rate_trigger.threshold"
    assert "five percent" in error["message"]
    served.wait_status("cart", "watching")
    assert (
        _metric(served, f'rollguard_policy_errors{{file="{served.folder / "broken.yaml"}"}}') == 1
    )


def test_a_deployment_going_bad_is_rolled_back_with_evidence(served: Served) -> None:
    shop = served.wait_status("shop", "rolled_back")
    assert shop["weights"] == {"stable": 100, "canary": 0, "assumed": NOOP}
    decision = shop["last_decision"]
    assert isinstance(decision, dict)
    assert decision["action"] == "immediate_rollback"
    assert decision["trigger"] == "error_rate_trigger"
    evidence = next(e for e in decision["evidence"] if e["trigger"] == "error_rate_trigger")
    assert evidence["value"] > evidence["limit"] == 5
    timeline = shop["timeline"]
    assert isinstance(timeline, list)
    kinds = [item["kind"] for item in timeline]
    assert "decision" in kinds
    assert "action" in kinds
    signals = {row["trigger"]: row for row in shop["signals"]}
    assert signals["error_rate_trigger"]["status"] == "firing"
    seed = served.client.get("/rollback/status").json()
    assert seed["rolled_back"] is True
    assert {row["name"]: row["rolled_back"] for row in seed["deployments"]} == {
        "shop": True,
        "cart": False,
    }
    labels = 'action="immediate_rollback",deployment="shop",trigger="error_rate_trigger"'
    assert _metric(served, f"rollguard_rollbacks_total{{{labels}}}") == 1
    assert _metric(served, f"rollguard_decisions_total{{{labels}}}") >= 1
    assert _metric(served, 'rollguard_canary_weight_percent{deployment="shop"}') == 0
    assert _metric(served, "rollguard_evaluation_duration_seconds_count") >= 2
    canary = 'deployment="shop",signal="error_rate_percent",version="canary"'
    assert _metric(served, f"rollguard_signal_value{{{canary}}}") > 5
    audit = served.client.get("/api/v1/audit", params={"deployment": "shop"}).json()
    assert audit["backend"] == "memory"
    assert "action_result" in [entry["kind"] for entry in audit["entries"]]


def test_commands_need_the_bearer_token_and_failures_are_counted(served: Served) -> None:
    served.wait_status("cart", "watching")
    missing = served.client.post("/api/v1/deployments/cart/pause")
    wrong = served.client.post(
        "/api/v1/deployments/cart/abort", headers={"Authorization": "Bearer nope-nope-nope-nope"}
    )
    basic = served.client.post(
        "/api/v1/deployments/cart/abort", headers={"Authorization": f"Basic {TOKEN}"}
    )
    # Refused before the command or the body is looked at: no 422 telling how the API works.
    probe = served.client.post("/api/v1/deployments/cart/explode", json={"force": True})
    for response in (missing, wrong, basic, probe):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
        assert "nope-nope" not in response.text
    assert served.detail("cart")["status"] == "watching"
    assert _metric(served, 'rollguard_api_unauthorized_total{command="pause"}') == 1
    assert _metric(served, 'rollguard_api_unauthorized_total{command="abort"}') == 2
    assert _metric(served, 'rollguard_api_unauthorized_total{command="unknown"}') == 1


def test_pause_resume_abort(served: Served) -> None:
    served.wait_status("cart", "watching")
    paused = served.client.post("/api/v1/deployments/cart/pause", headers=AUTH)
    assert paused.json() == {"deployment": "cart", "command": "pause", "status": "paused"}
    count = served.detail("cart")["evaluations"]
    again = served.client.post("/api/v1/deployments/cart/pause", headers=AUTH)
    assert again.status_code == 409
    assert "paused" in again.json()["detail"]
    resumed = served.client.post("/api/v1/deployments/cart/resume", headers=AUTH)
    assert resumed.json()["status"] == "watching"
    wait_until(lambda: served.detail("cart")["evaluations"] > count, what="evaluations to resume")
    aborted = served.client.post(
        "/api/v1/deployments/cart/abort", headers=AUTH, json={"reason": "bad release notes"}
    )
    assert aborted.json()["status"] == "aborted"
    cart = served.detail("cart")
    assert cart["weights"] == {"stable": 100, "canary": 0, "assumed": NOOP}
    entries = served.client.get("/api/v1/audit", params={"deployment": "cart"}).json()["entries"]
    assert entries[0]["trigger"] == "operator"
    assert entries[0]["reason"] == "abort by operator: bad release notes"
    assert entries[0]["namespace"] == ""  # a noop target has none
    elsewhere = {"deployment": "cart", "namespace": "prod"}
    assert served.client.get("/api/v1/audit", params=elsewhere).json()["entries"] == []
    assert served.client.post("/api/v1/deployments/cart/promote", headers=AUTH).status_code == 409
    seed = {row["name"]: row for row in served.client.get("/rollback/status").json()["deployments"]}
    assert seed["cart"]["rolled_back"] is True
    assert (seed["cart"]["action"], seed["cart"]["trigger"]) == ("abort", "operator")


def test_promote_sends_all_traffic_to_the_canary(served: Served) -> None:
    served.wait_status("cart", "watching")
    promoted = served.client.post("/api/v1/deployments/cart/promote", headers=AUTH)
    assert promoted.json()["status"] == "promoted"
    assert served.detail("cart")["weights"] == {"stable": 0, "canary": 100, "assumed": NOOP}


def test_unknown_deployment_is_404_json(served: Served) -> None:
    response = served.client.get("/api/v1/deployments/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "no watched deployment named 'nope'"}
    command = served.client.post("/api/v1/deployments/nope/abort", headers=AUTH)
    assert command.status_code == 404
    assert served.client.get("/no/such/path").json()["error"] == "not_found"


def test_malformed_and_oversized_bodies_are_4xx_json(served: Served) -> None:
    url = "/api/v1/deployments/cart/pause"
    headers = {**AUTH, "Content-Type": "application/json"}
    malformed = served.client.post(url, headers=headers, content=b'{"reason": ')
    assert malformed.status_code == 422
    assert malformed.json()["error"] == "unprocessable_entity"
    unknown = served.client.post(url, headers=AUTH, json={"reason": "x", "force": True})
    assert unknown.status_code == 422
    oversized = served.client.post(
        url, headers=headers, content=b'{"reason": "' + b"x" * 40_000 + b'"}'
    )
    assert oversized.status_code == 413
    assert oversized.json()["error"] == "content_too_large"

    def chunks() -> object:
        for _ in range(40):
            yield b"x" * 1024

    streamed = served.client.post(url, headers=headers, content=chunks())
    assert streamed.status_code == 413
    bad_command = served.client.post("/api/v1/deployments/cart/explode", headers=AUTH)
    assert bad_command.status_code == 422
    assert served.detail("cart")["status"] == "watching"


def test_policy_changes_are_picked_up_without_restart(served: Served) -> None:
    served.wait_status("cart", "watching")
    folder: Path = served.folder
    (folder / "cart.yaml").write_text(policy("cart", "healthy.csv", name="cart-v2"))
    wait_until(lambda: served.detail("cart")["policy"] == "cart-v2", what="cart's new policy")
    (folder / "broken.yaml").write_text(policy("basket", "healthy.csv"))
    wait_until(
        lambda: not served.client.get("/api/v1/deployments").json()["policy_errors"],
        what="the fixed policy to load",
    )
    served.wait_status("basket", "watching")
    (folder / "shop.yaml").unlink()
    wait_until(
        lambda: served.client.get("/api/v1/deployments/shop").status_code == 404,
        what="shop to be dropped",
    )
    (folder / "dup.yaml").write_text(policy("cart", "healthy.csv"))
    errors = wait_until(
        lambda: served.client.get("/api/v1/deployments").json()["policy_errors"],
        what="the duplicate to be reported",
    )
    assert errors[0]["field"] == "target.deployment"
    assert "already watched" in errors[0]["message"]
