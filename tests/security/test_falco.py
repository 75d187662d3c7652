"""Falco alerts: the real JSON output, the priority floor, and the HTTP receiver."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollguard.errors import InputError, ProviderError
from rollguard.security.events import EventLog
from rollguard.security.falco import FalcoIntake, FalcoReceiver, falco_secret, parse_alerts
from rollguard.security.listener import Limits
from slow_clients import slow_clients, wait_all_closed


@pytest.fixture
def falco_lines(fixtures_dir: Path) -> list[str]:
    text = (fixtures_dir / "falco" / "single_rule_with_cat_write.json").read_text()
    return [line for line in text.splitlines() if line.strip()]


def test_fixture_parses_as_eight_warnings(falco_lines: list[str]) -> None:
    alerts = parse_alerts("\n".join(falco_lines), where="single_rule_with_cat_write.json")
    assert len(alerts) == 8
    assert {alert.priority for alert in alerts} == {"Warning"}
    assert {alert.rule for alert in alerts} == {"open_from_cat"}


@pytest.mark.parametrize(
    ("floor", "recorded"),
    [("warning", 8), ("Notice", 8), ("debug", 8), ("error", 0), ("critical", 0)],
)
def test_alerts_below_the_floor_are_ignored(
    falco_lines: list[str], floor: str, recorded: int
) -> None:
    events = EventLog()
    intake = FalcoIntake(events, min_priority=floor)
    assert intake.take(parse_alerts("\n".join(falco_lines)), now=10.0) == recorded
    assert intake.ignored == 8 - recorded
    assert len(events.events(start=0, end=10)) == recorded


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty body"),
        ('{"priority": "Warning"', "not valid JSON"),
        ('{"level": "warn", "msg": "x"}', "not a Falco alert"),
        ('{"priority": "Severe", "rule": "r", "output": "o"}', "unknown Falco priority"),
    ],
)
def test_bad_alerts(body: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_alerts(body)


SECRET = "falco-secret-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {SECRET}"}


def _receiver(events: EventLog | None = None, **options: Any) -> FalcoReceiver:
    intake = FalcoIntake(events if events is not None else EventLog(), min_priority="warning")
    return FalcoReceiver(intake, secret=SECRET, **options)


def test_receiver_takes_falco_http_output(falco_lines: list[str]) -> None:
    events = EventLog()
    receiver = _receiver(events, clock=lambda: 50.0)
    receiver.start()
    try:
        host, port = receiver.address
        url = f"http://{host}:{port}/"
        with httpx.Client(timeout=5, headers=BEARER) as client:
            for line in falco_lines:  # Falco's http_output posts one alert per request
                response = client.post(
                    url, content=line, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 200
                assert response.json() == {"received": 1, "recorded": 1}
            bad = client.post(url, content="not json")
            assert bad.status_code == 400
            assert "not valid JSON" in bad.json()["error"]
            low = client.post(
                url, content='{"priority": "Informational", "rule": "r", "output": "o"}'
            )
            assert low.json() == {"received": 1, "recorded": 0}
    finally:
        receiver.stop()
    assert len(events.events(start=0, end=60)) == 8
    with pytest.raises(httpx.ConnectError):  # stopped means the port is closed
        httpx.post(url, content=falco_lines[0], headers=BEARER, timeout=2)


def test_receiver_refuses_a_bad_content_length() -> None:
    """A negative length would make the handler read until the client hangs up."""
    import socket

    receiver = _receiver()
    receiver.start()
    try:
        with socket.create_connection(receiver.address, timeout=5) as conn:
            conn.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + SECRET.encode()
                + b"\r\nContent-Length: -1\r\n\r\n"
            )
            answer = conn.recv(4096).decode()
    finally:
        receiver.stop()
    assert answer.startswith("HTTP/1.1 400")


def test_receiver_that_never_started_stops_at_once_and_frees_its_port() -> None:
    """stop() used to wait forever for a serve_forever that never ran."""
    receiver = _receiver()
    host, port = receiver.address
    receiver.stop()
    again = _receiver(host=host, port=port)
    again.stop()


def test_a_taken_port_is_a_provider_error_naming_the_field() -> None:
    holder = _receiver()
    host, port = holder.address
    try:
        with pytest.raises(ProviderError, match=r"runtime_security\.falco_listen .*cannot listen"):
            _receiver(host=host, port=port)
    finally:
        holder.stop()


CRITICAL = '{"priority": "Critical", "rule": "Terminal shell in container", "output": "sh"}'


def test_a_forged_alert_without_the_secret_is_refused_and_never_recorded() -> None:
    events = EventLog()
    receiver = _receiver(events)
    receiver.start()
    try:
        host, port = receiver.address
        url = f"http://{host}:{port}/"
        forged = [
            {},
            {"Authorization": "Bearer not-the-secret-0123456789"},
            {"Authorization": f"Bearer {SECRET}x"},
            {"Authorization": f"Token {SECRET}"},
            {"Authorization": "Basic !!!not-base64"},
        ]
        for headers in forged:
            answer = httpx.post(url, content=CRITICAL, headers=headers, timeout=5)
            assert answer.status_code == 401, headers
            assert "falco_secret_env" in answer.json()["error"]
        assert events.events(start=0, end=2**40) == []
        # Falco's http_output sends the URL's password as Basic auth: accepted.
        basic = f"http://falco:{SECRET}@{host}:{port}/"
        assert httpx.post(basic, content=CRITICAL, timeout=5).json() == {
            "received": 1,
            "recorded": 1,
        }
    finally:
        receiver.stop()


def test_the_secret_comes_from_the_named_variable() -> None:
    assert falco_secret("FALCO_SECRET", environ={"FALCO_SECRET": f" {SECRET}\n"}) == SECRET
    for environ in ({}, {"FALCO_SECRET": "  "}):
        with pytest.raises(ProviderError, match=r"falco_secret_env: \$FALCO_SECRET holds no"):
            falco_secret("FALCO_SECRET", environ=environ)
    with pytest.raises(ProviderError, match="at least 16 characters"):
        FalcoReceiver(FalcoIntake(EventLog()), secret="short")


def test_slow_clients_are_closed_and_falco_still_gets_through(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    fast = Limits(header_seconds=0.5, body_seconds=0.5, max_connections=40)
    threads_before = threading.active_count()
    events = EventLog()
    receiver = _receiver(events, limits=fast)
    receiver.start()
    try:
        host, port = receiver.address
        with slow_clients(port, idle=100, headers=100, bodies=100) as held:
            # one thread for the receiver (and its loop's helpers), none per held connection
            assert threading.active_count() - threads_before < 5
            answer = httpx.post(f"http://{host}:{port}/", content=CRITICAL, headers=BEARER)
            assert answer.json() == {"received": 1, "recorded": 1}
            assert wait_all_closed(held, timeout=30) == len(held)
    finally:
        receiver.stop()
    assert len(events.events(start=0, end=2**40)) == 1
    assert "Traceback" not in caplog.text + capfd.readouterr().err
