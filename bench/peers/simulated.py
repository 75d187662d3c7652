"""The detection benchmark's simulated peers, on exactly the series a real run played.

``bench.detection.strategies`` simulates Argo Rollouts and Flagger. Fed the same
seed, ``bench.detection.simulate.scrapes`` yields the very draws the exporter
served to the real controllers (``bench.peers.feed.play``), so each real run has
a simulated twin given the same settings (in 5 s scrapes); where they disagree,
the simulation is wrong about the real controller.
"""

from __future__ import annotations

import numpy as np

from bench.detection.simulate import SCRAPE_SECONDS, Scenario, scrapes
from bench.detection.strategies import SETUP_TICKS, Argo, Flagger, Strategy
from bench.peers.harness import Case, watch_seconds
from bench.peers.manifests import ARGO, FLAGGER, Config


def _scrapes(seconds: float) -> int:
    return max(1, round(seconds / SCRAPE_SECONDS))


def strategies(config: Config) -> dict[str, tuple[Strategy, float]]:
    """Each simulated peer with ``config``'s settings, and how long its canary lasts."""
    argo = Argo(
        1,
        interval=_scrapes(config.argo_interval),
        failure_limit=config.argo_failure_limit,
        window=1,  # irate: the last two samples of the range
        error_limit=round(1 - config.argo_success_floor, 9),
        first=0,  # the first measurement when the analysis starts, at the release
        series_from_start=True,  # the exporter serves the canary's zeros from the start
        p99_max=0.5,
        p99_window=_scrapes(config.argo_interval),
    )
    flagger = Flagger(
        1,
        interval=_scrapes(config.flagger_interval),
        threshold=config.flagger_threshold,
        success_window=_scrapes(config.flagger_success_window),
        duration_window=_scrapes(config.flagger_duration_window),
        success_min=config.flagger_success_min / 100,
    )
    # Flagger's two ticks before its first check lengthen its canary by as much
    flagger_seconds = config.flagger_canary_seconds() + SETUP_TICKS * config.flagger_interval
    return {
        ARGO: (argo, config.argo_canary_seconds()),
        FLAGGER: (flagger, flagger_seconds),
    }


def simulate(case: Case) -> dict[str, float | None]:
    """Seconds from the onset to each simulated peer's rollback on ``case``'s draws
    (None: none within its canary or the run's watch)."""
    horizon = watch_seconds(case)
    scenario = Scenario(**{**case.scenario.__dict__, "seconds": horizon})
    found: dict[str, float | None] = {}
    runs = strategies(case.config)
    fired: dict[str, float] = {}
    for scrape in scrapes(scenario, 1, np.random.default_rng(case.seed)):
        at = (scrape.t + 1) * SCRAPE_SECONDS
        for tool, (strategy, length) in runs.items():
            if tool not in fired and at <= length and strategy.step(scrape)[0]:
                fired[tool] = at
    for tool in runs:
        at = fired.get(tool)
        found[tool] = None if at is None else at - case.scenario.onset_seconds
    return found
