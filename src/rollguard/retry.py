"""One way to retry a call that may fail for a while: the metrics providers, the
notifier and the Kubernetes executor all go through :func:`call_with_retries`.

Built on tenacity (rather than stamina, its opinionated wrapper) because the
sleep is injected here, as the clock is everywhere in rollguard, so tests see
the exact waits without waiting; and because stamina counts retries in
prometheus_client's global registry when that package is installed, while
rollguard keeps its metrics in registries it passes in.

The waits double from ``backoff_seconds`` up to ``max_backoff_seconds``. An
error that carries ``retry_after_seconds`` (an HTTP 429 or 503 with a
``Retry-After`` header) waits that long instead, up to
``max_retry_after_seconds``, so a server that asks for a pause gets it. Every
backend's default settings are in :data:`SETTINGS`.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class RetrySettings:
    """How often and how patiently one backend retries."""

    retries: int  # after the first attempt; 0 never retries
    backoff_seconds: float  # the first wait; it doubles with each retry
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 60.0

    def with_retries(self, retries: int, *, backoff_seconds: float | None = None) -> RetrySettings:
        """These settings with the count (and first wait) a policy chose."""
        backoff = self.backoff_seconds if backoff_seconds is None else backoff_seconds
        return RetrySettings(
            retries, backoff, self.max_backoff_seconds, self.max_retry_after_seconds
        )

    def wait_seconds(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            return min(retry_after, self.max_retry_after_seconds)
        backoff: float = self.backoff_seconds * 2 ** (retry - 1)
        return min(backoff, self.max_backoff_seconds)


#: Every backend's retry settings, in one place; policies may change the counts.
SETTINGS = {
    # metrics.prometheus: timeouts, unreachable, HTTP 429 and 5xx
    "prometheus": RetrySettings(retries=2, backoff_seconds=0.2, max_backoff_seconds=5.0),
    # every other metrics provider (InfluxDB, Graphite, Loki, CloudWatch, Datadog, New Relic,
    # web): timeouts, unreachable, HTTP 429 and 5xx (metrics.retries)
    "metrics": RetrySettings(retries=2, backoff_seconds=0.2, max_backoff_seconds=5.0),
    # notifiers: timeouts, HTTP 429 and 5xx, apprise failures (notifications.retries/retry_backoff)
    "notifications": RetrySettings(retries=2, backoff_seconds=0.5, max_backoff_seconds=30.0),
    # executors.kubernetes: 409 Conflict on a write, re-read and retried (conflict_retries)
    "kubernetes_conflict": RetrySettings(retries=5, backoff_seconds=0.05, max_backoff_seconds=1.0),
}


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    settings: RetrySettings,
    retry_on: Callable[[BaseException], bool],
    sleep: Sleep = asyncio.sleep,
    on_attempt: Callable[[int], None] | None = None,
) -> T:
    """``call()``'s result; its last error once retries are spent or ``retry_on`` says no.

    ``on_attempt`` hears the number of each attempt as it starts (1 for the first).
    """

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(failure, "retry_after_seconds", None)
        return settings.wait_seconds(state.attempt_number, retry_after)

    def before(state: tenacity.RetryCallState) -> None:
        if on_attempt is not None:
            on_attempt(state.attempt_number)

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(settings.retries + 1),
        wait=wait,
        retry=tenacity.retry_if_exception(retry_on),
        before=before,
        sleep=sleep,
        reraise=True,
    )

    async def attempt() -> T:  # tenacity awaits only coroutine functions, not lambdas
        return await call()

    return await retrying(attempt)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header's wait in seconds (delay-seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
