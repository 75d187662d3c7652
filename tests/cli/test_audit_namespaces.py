"""``audit list/export`` and ``report`` tell `cart` in `shop` from `cart` in `staging`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from cli.conftest import Invoke
from rollguard.audit.base import AuditRecord
from rollguard.audit.factory import open_store


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A rollback of `cart` in `shop`, in `staging`, and one recorded without a namespace."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url)
    for n, namespace in enumerate(["shop", "staging", ""]):
        common = {
            "deployment": "cart",
            "timestamp": f"2026-11-2{n}T09:00:00Z",
            "watch_id": f"w{n}",
            "namespace": namespace,
        }
        store.append(AuditRecord(kind="deployment_start", **common))
        store.append(
            AuditRecord(
                kind="action_result",
                trigger="error_rate_trigger",
                severity="critical",
                action="immediate_rollback",
                outcome="success",
                affected_users=100 + n,
                **common,
            )
        )
        store.append(AuditRecord(kind="deployment_end", outcome="rolled_back", **common))
    store.close()
    return url


def listed(invoke_cli: Invoke, db: str, *args: str) -> list[tuple[str | None, str]]:
    result = invoke_cli("audit", "list", "--db", db, "--kind", "action_result", "-o", "json", *args)
    assert result.returncode == 0, result.stderr
    return [(row["namespace"], row["watchId"]) for row in json.loads(result.stdout)]


def test_list_filters_by_namespace(invoke_cli: Invoke, db: str) -> None:
    everywhere = [("shop", "w0"), ("staging", "w1"), (None, "w2")]
    assert listed(invoke_cli, db, "--deployment", "cart") == everywhere
    assert listed(invoke_cli, db, "--deployment", "shop/cart") == [("shop", "w0")]
    assert listed(invoke_cli, db, "--deployment", "cart", "--namespace", "staging") == [
        ("staging", "w1")
    ]
    assert listed(invoke_cli, db, "--namespace", "shop") == [("shop", "w0")]
    text = invoke_cli("audit", "list", "--db", db, "--kind", "action_result")
    assert text.returncode == 0
    rows = [line.split()[2] for line in text.stdout.splitlines()[1:] if line.strip()]
    assert rows == ["shop/cart", "staging/cart", "cart"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--deployment", "shop/cart", "--namespace", "staging"), "names namespace 'shop'"),
        (("--deployment", "/cart"), "NAMESPACE/NAME"),
        (("--deployment", "a/b/c"), "NAMESPACE/NAME"),
        (("--namespace", "a/b"), "--namespace"),
    ],
)
def test_a_deployment_that_cannot_be_meant_is_exit_2(
    invoke_cli: Invoke, db: str, args: tuple[str, ...], says: str
) -> None:
    result = invoke_cli("audit", "list", "--db", db, *args)
    assert result.returncode == 2
    assert says in result.stderr


def test_export_csv_has_the_namespace(invoke_cli: Invoke, db: str) -> None:
    result = invoke_cli("audit", "export", "--db", db, "-o", "csv", "--deployment", "staging/cart")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["namespace"], row["deployment"]) for row in rows] == [("staging", "cart")] * 3


def test_report_for_one_namespaced_deployment(invoke_cli: Invoke, db: str) -> None:
    def report(*args: str) -> Any:
        result = invoke_cli("report", "--db", db, "--since", "2026-01-01", "-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    shop = report("--deployment", "shop/cart")
    assert shop["total_deployments"] == 1
    assert [(e["namespace"], e["affected_users"]) for e in shop["events"]] == [("shop", 100)]
    whole = report()
    assert whole["total_deployments"] == 3
    assert [e["namespace"] for e in whole["events"]] == ["shop", "staging", ""]
    html = invoke_cli("report", "--db", db, "--since", "2026-01-01", "-o", "html")
    assert "<td>shop/cart</td>" in html.stdout
    assert "<td>staging/cart</td>" in html.stdout
