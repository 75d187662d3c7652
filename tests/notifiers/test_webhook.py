"""Signed webhooks and apprise channels against a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest

from rollguard.errors import UsageError
from rollguard.notifiers.base import Delivery, Notification
from rollguard.notifiers.factory import make_notifier
from rollguard.notifiers.log import LogNotifier
from rollguard.notifiers.webhook import sign
from rollguard.policy import parse_policy
from servers.receiver import Receiver
from support import free_port

ROUTE_CHAT = "critical_alert: [chat]"
SECRET = "hmac-key-7d1f0c2e9a"
TOKEN = "T0KEN4f9e8d7c6b5a"

NOTE = Notification(
    route="critical_alert",
    deployment="checkout",
    title="rollguard: immediate_rollback of checkout",
    text="error_rate_exceeded (7.5% > 5%)",
    severity="critical",
    fields={"trigger": "error_rate_trigger", "action": "immediate_rollback"},
)


def _policy(channels: str, routes: str = "critical_alert: [hook]") -> str:
    return f"""
target: {{deployment: checkout}}
metrics: {{provider: scrape, stable: "http://127.0.0.1:1/m", canary: "http://127.0.0.1:2/m"}}
notifications:
  retries: 2
  retry_backoff: 0.5s
  channels:
{channels}
  routes:
    {routes}
error_rate_trigger: {{threshold: 5%}}
"""


class Sleeps:
    """Records backoff waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _webhook(url_env: str = "HOOK_URL") -> str:
    return f"    hook: {{type: webhook, url_env: {url_env}, secret_env: HOOK_SECRET, timeout: 2s}}"


async def test_the_webhook_is_signed_over_timestamp_and_body(receiver: Receiver) -> None:
    env = {"HOOK_URL": f"{receiver.url}/hooks/{TOKEN}", "HOOK_SECRET": SECRET}
    notifier = make_notifier(parse_policy(_policy(_webhook())), env=env)
    deliveries = await notifier.notify(NOTE)
    assert deliveries == [Delivery(channel="hook", ok=True, detail="HTTP 200")]
    (request,) = receiver.requests
    assert request.path == f"/hooks/{TOKEN}"
    timestamp = request.headers["X-Rollguard-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 300
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Rollguard-Signature"] == "sha256=" + expected.hexdigest()
    assert sign(SECRET, timestamp, request.body) == request.headers["X-Rollguard-Signature"]
    body = json.loads(request.body)
    assert body["route"] == "critical_alert"
    assert body["severity"] == "critical"
    assert body["fields"] == {"trigger": "error_rate_trigger", "action": "immediate_rollback"}
    assert body["id"] == request.headers["X-Rollguard-Delivery"]


async def test_server_errors_are_retried_with_backoff_under_one_delivery_id(
    receiver: Receiver,
) -> None:
    receiver.statuses = [503, 429]
    sleeps = Sleeps()
    env = {"HOOK_URL": receiver.url, "HOOK_SECRET": SECRET}
    notifier = make_notifier(parse_policy(_policy(_webhook())), env=env, sleep=sleeps)
    (delivery,) = await notifier.notify(NOTE)
    assert delivery.ok
    assert sleeps.waits == [0.5, 1.0]
    assert len(receiver.requests) == 3
    assert len({r.headers["X-Rollguard-Delivery"] for r in receiver.requests}) == 1


async def test_a_receiver_asking_to_wait_gets_its_retry_after(receiver: Receiver) -> None:
    receiver.statuses, receiver.retry_after = [429, 503], "3"
    sleeps = Sleeps()
    env = {"HOOK_URL": receiver.url, "HOOK_SECRET": SECRET}
    notifier = make_notifier(parse_policy(_policy(_webhook())), env=env, sleep=sleeps)
    (delivery,) = await notifier.notify(NOTE)
    assert delivery.ok
    assert sleeps.waits == [3.0, 3.0]  # not the 0.5, 1.0 backoff
    assert len(receiver.requests) == 3


async def test_a_refusal_is_not_retried_and_the_other_channel_still_delivers(
    receiver: Receiver,
) -> None:
    receiver.statuses_by_path = {"/primary": [401]}
    channels = _webhook() + f"\n    backup: {{type: webhook, url: '{receiver.url}/backup'}}"
    env = {"HOOK_URL": f"{receiver.url}/primary", "HOOK_SECRET": SECRET}
    notifier = make_notifier(
        parse_policy(_policy(channels, "critical_alert: [hook, backup]")), env=env, sleep=Sleeps()
    )
    hook, backup = await notifier.notify(NOTE)
    assert (hook.channel, hook.ok) == ("hook", False)
    assert "HTTP 401" in hook.detail
    assert "after 1 attempts" in hook.detail
    assert (backup.channel, backup.ok) == ("backup", True)
    assert sorted(r.path for r in receiver.requests) == ["/backup", "/primary"]
    assert (
        "X-Rollguard-Signature"
        not in next(r for r in receiver.requests if r.path == "/backup").headers
    )


async def test_a_redirect_is_a_failed_delivery_not_followed(receiver: Receiver) -> None:
    receiver.statuses = [302]
    env = {"HOOK_URL": f"{receiver.url}/moved", "HOOK_SECRET": SECRET}
    notifier = make_notifier(parse_policy(_policy(_webhook())), env=env, sleep=Sleeps())
    (hook,) = await notifier.notify(NOTE)
    assert (hook.channel, hook.ok) == ("hook", False)
    assert "HTTP 302" in hook.detail
    assert [r.path for r in receiver.requests] == ["/moved"]


async def test_failures_never_raise_and_never_show_secrets(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}"
    receiver.statuses = [500, 500, 500]
    channels = (
        _webhook()
        + "\n    down: {type: webhook, url_env: DOWN_URL, timeout: 1s}"
        + "\n    chat: {type: apprise, url_env: CHAT_URL}"
    )
    env = {
        "HOOK_URL": f"{receiver.url}/hooks/{TOKEN}",
        "HOOK_SECRET": SECRET,
        "DOWN_URL": dead,
        "CHAT_URL": f"json://user:{TOKEN}@127.0.0.1:{free_port()}/chat",
    }
    notifier = make_notifier(
        parse_policy(_policy(channels, "critical_alert: [hook, down, chat]")),
        env=env,
        sleep=Sleeps(),
    )
    deliveries = await notifier.notify(NOTE)
    assert [(d.channel, d.ok) for d in deliveries] == [
        ("hook", False),
        ("down", False),
        ("chat", False),
    ]
    assert "HTTP 500" in deliveries[0].detail
    assert "after 3 attempts" in deliveries[1].detail
    captured = capsys.readouterr()
    shown = " ".join(
        [caplog.text, captured.out, captured.err, *(d.detail for d in deliveries), repr(notifier)]
    )
    assert "failed after 3 attempt(s)" in caplog.text
    for secret in (SECRET, TOKEN, dead, env["HOOK_URL"], env["CHAT_URL"]):
        assert secret not in shown


async def test_apprise_posts_to_a_real_receiver(receiver: Receiver) -> None:
    host = receiver.url.removeprefix("http://")
    env = {"CHAT_URL": f"json://{host}/apprise"}
    notifier = make_notifier(
        parse_policy(
            _policy("    chat: {type: apprise, url_env: CHAT_URL}", "critical_alert: [chat]")
        ),
        env=env,
    )
    (delivery,) = await notifier.notify(NOTE)
    assert delivery.ok, delivery.detail
    (request,) = receiver.requests
    assert request.path == "/apprise"
    body = json.loads(request.body)
    assert body["title"] == NOTE.title
    assert "error_rate_exceeded" in body["message"]
    assert body["type"] == "failure"


async def test_an_unrouted_notification_is_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"HOOK_URL": receiver.url, "HOOK_SECRET": SECRET}
    notifier = make_notifier(parse_policy(_policy(_webhook())), env=env)
    warning = Notification("warning_alert", "checkout", "latency", "p95 up 40%", "warning")
    with caplog.at_level(logging.WARNING, logger="rollguard.notify"):
        (delivery,) = await notifier.notify(warning)
    assert (delivery.channel, delivery.ok) == ("log", True)
    assert "no channels for route warning_alert" in delivery.detail
    assert "p95 up 40%" in caplog.text
    assert receiver.requests == []


def test_a_missing_secret_variable_is_a_usage_error_naming_it() -> None:
    with pytest.raises(
        UsageError,
        match=r"channels.hook.secret_env: environment variable HOOK_SECRET is not set",
    ):
        make_notifier(parse_policy(_policy(_webhook())), env={"HOOK_URL": "http://127.0.0.1:9/x"})


def test_an_unknown_apprise_url_is_refused_at_start() -> None:
    policy = parse_policy(
        _policy("    chat: {type: apprise, url: 'nosuchservice://abc'}", "critical_alert: [chat]")
    )
    with pytest.raises(UsageError, match="apprise does not recognise"):
        make_notifier(policy, env={})


def test_a_broken_apprise_url_is_refused_without_logging_its_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    second = "second-token-3c4d5e"  # apprise logs this part of the URL in clear
    url = f"slack://{TOKEN}/{second}"
    policy = parse_policy(
        _policy("    chat: {type: apprise, url_env: CHAT_URL}", "critical_alert: [chat]")
    )
    with pytest.raises(UsageError, match="apprise does not recognise") as caught:
        make_notifier(policy, env={"CHAT_URL": url})
    assert "apprise" in {record.name for record in caplog.records}
    for secret in (TOKEN, second):
        assert secret not in caplog.text
        assert secret not in str(caught.value)


def test_no_channels_means_the_log_notifier() -> None:
    policy = parse_policy(
        'target: {deployment: c}\nmetrics: {provider: scrape, stable: "http://a/m", canary: "http://b/m"}\n'
        "error_rate_trigger: {threshold: 5%}\n"
    )
    assert isinstance(make_notifier(policy), LogNotifier)
