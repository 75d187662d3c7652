"""``affectedUsers``: an estimate, since rollguard never sees user identities.

Defined as the requests the bad (canary) version served from the start of the
firing trigger's measurement window until the action finished:

    affected = requests_in_window * (window_seconds + action_seconds) / window_seconds

It assumes the canary kept the request rate it had in the window until the
action ended, so it is an upper bound for gradual rollbacks (whose canary
share falls step by step). It counts requests, not people: one user may send
many. Without a request count (``None``) the estimate is 0 and says so in
the entry's evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollguard.engine.decision import Evidence


def estimate(evidence: Sequence[Evidence], *, trigger: str | None, action_seconds: float) -> int:
    """Requests the canary served from the trigger's window start to the action's end."""
    firing = next((e for e in evidence if e.trigger == trigger), None)
    if firing is None or firing.requests is None or firing.window_seconds <= 0:
        return 0
    span = firing.window_seconds + max(0.0, action_seconds)
    return round(firing.requests * span / firing.window_seconds)
