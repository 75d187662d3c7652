"""Falco alerts: the real JSON output, the priority floor, and the HTTP receiver."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rollguard.errors import InputError, ProviderError
from rollguard.security.events import EventLog
from rollguard.security.falco import FalcoIntake, FalcoReceiver, parse_alerts


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


def test_receiver_takes_falco_http_output(falco_lines: list[str]) -> None:
    events = EventLog()
    receiver = FalcoReceiver(FalcoIntake(events, min_priority="warning"), clock=lambda: 50.0)
    receiver.start()
    try:
        host, port = receiver.address
        url = f"http://{host}:{port}/"
        with httpx.Client(timeout=5) as client:
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
        httpx.post(url, content=falco_lines[0], timeout=2)


def test_receiver_refuses_a_bad_content_length() -> None:
    """A negative length would make the handler read until the client hangs up."""
    import socket

    receiver = FalcoReceiver(FalcoIntake(EventLog()))
    receiver.start()
    try:
        with socket.create_connection(receiver.address, timeout=5) as conn:
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
            answer = conn.recv(4096).decode()
    finally:
        receiver.stop()
    assert answer.startswith("HTTP/1.0 400")
    assert "Content-Length" in answer


def test_receiver_that_never_started_stops_at_once_and_frees_its_port() -> None:
    """stop() used to wait forever for a serve_forever that never ran."""
    receiver = FalcoReceiver(FalcoIntake(EventLog()))
    host, port = receiver.address
    receiver.stop()
    again = FalcoReceiver(FalcoIntake(EventLog()), host=host, port=port)
    again.stop()


def test_a_taken_port_is_a_provider_error_naming_the_field() -> None:
    holder = FalcoReceiver(FalcoIntake(EventLog()))
    host, port = holder.address
    try:
        with pytest.raises(ProviderError, match=r"runtime_security\.falco_listen .*cannot listen"):
            FalcoReceiver(FalcoIntake(EventLog()), host=host, port=port)
    finally:
        holder.stop()
