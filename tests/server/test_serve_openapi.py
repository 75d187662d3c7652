"""Property-based tests of the OpenAPI spec against the running server (schemathesis).

Every operation is called with generated paths, queries, headers and bodies;
each response must be declared in the spec, match its schema and content
type, and never be a server error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry
from serve_harness import TOKEN, Served, start_serve, write_policies

from rollguard.server.app import create_app
from rollguard.server.audit_view import AuditView
from rollguard.server.auth import TokenAuth
from rollguard.server.manager import ControllerManager
from rollguard.server.telemetry import Telemetry
from rollguard.server.wiring import default_factory


@pytest.fixture(scope="module")
def module_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("policies")
    write_policies(folder)
    with start_serve(folder) as running:
        yield running


def _spec() -> dict[str, Any]:
    """The spec the app publishes; calls go to the live server (a lazy fixture schema does
    not work with this pytest, so the spec is taken from an app that is never started)."""
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    audit = AuditView()
    manager = ControllerManager(
        Path("."), factory=default_factory(audit), telemetry=telemetry, audit=audit
    )
    app = create_app(manager, telemetry=telemetry, auth=TokenAuth(None), audit=audit)
    return app.openapi()


schema = schemathesis.openapi.from_dict(_spec())


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_openapi_spec(case: schemathesis.Case, module_served: Served) -> None:
    case.call_and_validate(base_url=module_served.url)


@schema.include(method="POST").parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_commands_with_the_token_conform_too(
    case: schemathesis.Case, module_served: Served
) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    case.call_and_validate(base_url=module_served.url)


def test_spec_declares_every_endpoint_and_the_bearer_scheme(module_served: Served) -> None:
    spec = module_served.client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/deployments",
        "/api/v1/deployments/{name}",
        "/api/v1/deployments/{name}/{command}",
        "/api/v1/audit",
        "/rollback/status",
        "/deployment/status",
    } <= paths
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    post = spec["paths"]["/api/v1/deployments/{name}/{command}"]["post"]
    assert {"401", "404", "409", "413", "422"} <= set(post["responses"])
