"""``rollguard serve``: the long-running controller with its API and web page."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rollguard.errors import UsageError


class LogLevel(StrEnum):
    """The levels ``--log-level`` accepts; click refuses others with exit 2."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); a clear error otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def serve(  # noqa: PLR0917 (typer maps each parameter to one CLI option)
    policies: Annotated[Path, typer.Option("--policies", help="Folder of policy files to watch.")],
    listen: Annotated[
        str, typer.Option(help="Address to serve the API and page on.")
    ] = "127.0.0.1:8080",
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="File of API tokens, one NAME:TOKEN (or TOKEN) per line (else "
            "$ROLLGUARD_API_TOKEN); the name is who asked, in the audit trail."
        ),
    ] = None,
    audit_url: Annotated[
        str | None,
        typer.Option(
            help="Audit store URL (sqlite:///PATH or postgresql://...); memory when unset."
        ),
    ] = None,
    audit_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the audit key, for a keyed trail (docs/audit.md)."
        ),
    ] = None,
    reload_seconds: Annotated[
        float, typer.Option(min=0.1, help="How often to re-read the folder.")
    ] = 1.0,
    replay_speed: Annotated[
        float,
        typer.Option(
            min=0.001, help="Replay providers play their recording this many times real time."
        ),
    ] = 1.0,
    log_level: Annotated[LogLevel, typer.Option(help="How much to log.")] = LogLevel.INFO,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host name the API answers (repeat it; '*' for any). Default: the loopback "
            "names when --listen is loopback, the --listen address itself otherwise.",
        ),
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option(
            min=1, help="Open connections at most; past it the slowest idle one is closed."
        ),
    ] = 256,
) -> None:
    """Watch every deployment whose policy is in --policies; serve the API, metrics and page.

    Runs until interrupted (Ctrl-C).

    Exit codes: 0 stopped · 2 invalid input · 6 the audit store cannot be opened
    (or is keyed with another key than --audit-key-env's).
    """
    if not policies.is_dir():
        raise UsageError(f"--policies {policies}: not a folder")
    host, port = parse_listen(listen)
    import logging

    from prometheus_client import CollectorRegistry, disable_created_metrics

    from rollguard.metrics import query_counts
    from rollguard.metrics.batching import QueryBatcher
    from rollguard.security.listener import Limits
    from rollguard.server.app import create_app
    from rollguard.server.audit_view import AuditView
    from rollguard.server.auth import TokenAuth
    from rollguard.server.hosts import allowed_hosts
    from rollguard.server.manager import ControllerManager
    from rollguard.server.run import serve_app
    from rollguard.server.telemetry import Telemetry
    from rollguard.server.wiring import default_factory

    auth = TokenAuth.load(token_file)
    store = None
    if audit_url is not None:
        from rollguard.audit.factory import open_store
        from rollguard.audit.keys import key_from_env

        key = None
        if audit_key_env is not None:
            key = key_from_env(audit_key_env, field="--audit-key-env")
        store = open_store(audit_url, base_dir=Path.cwd(), field="--audit-url", key=key)
        store.check_key()  # a wrong or missing key stops serve now, not at the first append
    audit = AuditView(store)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise here
    telemetry = Telemetry(CollectorRegistry())
    batcher = QueryBatcher()
    query_counts.register(telemetry.registry, batcher, prefix="rollguard")
    manager = ControllerManager(
        policies,
        factory=default_factory(audit.durable(), replay_speed=replay_speed, batcher=batcher),
        telemetry=telemetry,
        audit=audit,
        reload_seconds=reload_seconds,
        freeze_gc_after_load=True,
    )
    # run() already configured logging at WARNING; force=True applies --log-level anyway.
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if log_level is not LogLevel.DEBUG:  # one "HTTP Request" line per scrape is debugging
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if not auth.configured:
        logging.getLogger("rollguard.serve").warning(
            "no API token configured: abort/pause/resume/promote will answer 401"
        )
    hosts = allowed_hosts(host, allowed_host or [])
    if hosts is None:
        logging.getLogger("rollguard.serve").warning(
            "any Host header is answered (listening on every address): set --allowed-host "
            "to the names clients use, against DNS rebinding"
        )
    app = create_app(manager, telemetry=telemetry, auth=auth, audit=audit, allowed_hosts=hosts)
    try:
        serve_app(
            app,
            host=host,
            port=port,
            limits=Limits(max_connections=max_connections),
            log_level=log_level.value,
        )
    finally:
        audit.close()  # queued audit writes land before the process ends
