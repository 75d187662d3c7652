"""Pick the metrics provider a policy names (Flagger's factory, without its fallback).

The policy schema already rejects unknown providers; this module only builds
the one chosen. Backends are imported here, lazily, so that using one never
loads another's client library.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx

from rollguard.errors import ProviderError
from rollguard.metrics.base import Provider
from rollguard.policy.model import Policy, PrometheusSource, ReplaySource, ScrapeSource
from rollguard.policy.sources import QuerySource

#: Scrapes kept beyond the longest window, so a window is always full.
RETENTION_MARGIN_SECONDS = 60.0
DEFAULT_WINDOW_SECONDS = 300.0


def make_provider(
    policy: Policy, *, base_dir: Path, http_client: httpx.AsyncClient | None = None
) -> Provider:
    """The provider for ``policy.metrics``; relative replay paths resolve against ``base_dir``.

    Raises :class:`~rollguard.errors.InputError` for a replay file that does not
    parse and :class:`ProviderError` for a provider that is not available.
    """
    source = policy.metrics
    if isinstance(source, ScrapeSource):
        from rollguard.metrics.scrape import ScrapeProvider

        retention = longest_window(policy) + RETENTION_MARGIN_SECONDS
        # Calls closer than half an interval are skipped, so this bounds the ring.
        max_scrapes = int(retention / (source.scrape_interval / 2)) + 2
        return ScrapeProvider(
            source,
            http_client=http_client,
            retention_seconds=retention,
            max_scrapes=max_scrapes,
        )
    if isinstance(source, ReplaySource):
        from rollguard.metrics.replay import ReplayProvider

        path = Path(source.file)
        return ReplayProvider.from_file(path if path.is_absolute() else base_dir / path)
    if isinstance(source, PrometheusSource):
        return _prometheus(source, http_client)
    return _query_provider(source, http_client, base_dir)


def longest_window(policy: Policy) -> float:
    """The longest measurement window any rule asks for (a default without rules)."""
    windows = [rule.window_seconds for rule in policy.rules]
    return max(windows, default=DEFAULT_WINDOW_SECONDS)


def _prometheus(source: PrometheusSource, http_client: httpx.AsyncClient | None) -> Provider:
    """The PromQL provider lives in its own module; say so plainly when it is absent."""
    try:
        from rollguard.metrics.prometheus import PrometheusProvider
    except ModuleNotFoundError as exc:
        if exc.name != "rollguard.metrics.prometheus":
            raise
        raise ProviderError(
            "the prometheus metrics provider is not available in this build "
            "(rollguard.metrics.prometheus is missing); use provider: scrape or replay"
        ) from exc
    return PrometheusProvider(source, client=http_client)


#: The module and class of each provider that runs the policy's own queries.
QUERY_PROVIDERS = {
    "influxdb": ("rollguard.metrics.influxdb", "InfluxDBProvider"),
    "graphite": ("rollguard.metrics.graphite", "GraphiteProvider"),
    "loki": ("rollguard.metrics.loki", "LokiProvider"),
    "cloudwatch": ("rollguard.metrics.cloudwatch", "CloudWatchProvider"),
    "datadog": ("rollguard.metrics.datadog", "DatadogProvider"),
    "newrelic": ("rollguard.metrics.newrelic", "NewRelicProvider"),
    "web": ("rollguard.metrics.web", "WebProvider"),
    "command": ("rollguard.metrics.command", "CommandProvider"),
}


def _query_provider(
    source: QuerySource, http_client: httpx.AsyncClient | None, base_dir: Path
) -> Provider:
    """One of the providers that run the policy's queries, imported only when chosen."""
    module_name, class_name = QUERY_PROVIDERS[source.provider]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ProviderError(
                f"the {source.provider} metrics provider is not available in this build"
            ) from exc
        raise ProviderError(
            f"the {source.provider} metrics provider needs the Python package {exc.name!r}; "
            f"install it with: pip install 'rollguard[{source.provider}]'"
        ) from exc
    provider_class = getattr(module, class_name)
    options: dict[str, object] = {"base_dir": base_dir} if source.provider == "command" else {}
    if http_client is not None and source.provider not in ("cloudwatch", "command"):
        options["client"] = http_client
    provider: Provider = provider_class(source, **options)
    return provider
