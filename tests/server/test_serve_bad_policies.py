"""One policy file no parser can read (YAML nested 1,000 deep) never stops ``serve`` from
loading or reloading the others; it is reported on its own, and never blamed on --listen."""

from __future__ import annotations

from pathlib import Path

import httpx
from serve_harness import policy, start_serve, write_policies
from serve_process import serve_process, stop

from support import wait_until

DEEP = "name: deep\ntarget: {deployment: deep}\nmetrics: " + "[" * 1000 + "]" * 1000 + "\n"


def _errors(listing: dict[str, object]) -> dict[str, str]:
    found = listing["policy_errors"]
    assert isinstance(found, list)
    return {Path(e["file"]).name: e["message"] for e in found}


def _names(listing: dict[str, object]) -> set[str]:
    found = listing["deployments"]
    assert isinstance(found, list)
    return {d["name"] for d in found}


def test_a_bad_file_is_reported_alone_and_later_files_still_load(tmp_path: Path) -> None:
    write_policies(tmp_path)
    (tmp_path / "deep.yaml").write_text(DEEP)
    with start_serve(tmp_path) as served:
        assert served.client.get("/readyz").status_code == 200
        listing = served.client.get("/api/v1/deployments").json()
        assert _names(listing) == {"shop", "cart"}
        assert "64 deep" in _errors(listing)["deep.yaml"]
        # At run time: a second bad file, a new good one, an edited threshold.
        (tmp_path / "deeper.yaml").write_text(DEEP.replace("deep}", "deeper}"))
        before = served.detail("cart")["policy_digest"]
        (tmp_path / "web.yaml").write_text(policy("web", "healthy.csv"))
        (tmp_path / "cart.yaml").write_text(
            policy("cart", "healthy.csv").replace("threshold: 5%", "threshold: 7%")
        )

        def reloaded() -> bool:
            now = served.client.get("/api/v1/deployments").json()
            return (
                "web" in _names(now)
                and "deeper.yaml" in _errors(now)
                and served.detail("cart")["policy_digest"] != before
            )

        wait_until(reloaded, timeout=180, what="the new policy, the edit and the report")
        assert served.detail("web")["status"] in ("starting", "watching")


def test_rollguard_serve_starts_beside_a_bad_file_and_never_blames_the_address(
    tmp_path: Path, rollguard_cmd: list[str], cli_env: dict[str, str]
) -> None:
    write_policies(tmp_path)
    (tmp_path / "deep.yaml").write_text(DEEP)
    # Failing on YAML nested 1,000 deep takes the YAML library seconds (tens under load).
    with serve_process(tmp_path, rollguard_cmd, cli_env, ready_within=180) as (process, url):
        listing = httpx.get(f"{url}/api/v1/deployments", timeout=5).json()
        assert _names(listing) == {"shop", "cart"}
        assert "deep.yaml" in _errors(listing)
        exposed = httpx.get(f"{url}/metrics", timeout=5).text
        # replay policies ask no Prometheus; the batcher's counts are there, at zero
        assert 'rollguard_prometheus_queries_total{mode="batched"} 0.0' in exposed
        stderr = stop(process)
    assert "deep.yaml:3:266: (yaml): the policy nests mappings or lists more than 64 deep" in stderr
    assert "--listen" not in stderr
    assert "Traceback" not in stderr
