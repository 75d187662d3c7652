"""Which series are the stable and which the canary version, for the generators.

The PromQL itself comes from :mod:`rollguard.promql`, the builder the
Prometheus provider runs, so an alert or a panel measures exactly what
rollguard decides on. This module only answers what the builder needs from a
policy: each version's label matchers and the exporter's metric names. A
policy whose metrics come from elsewhere (scrape, replay) still gets rules,
written for the conventional ``version="stable"`` / ``version="canary"`` labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rollguard import promql
from rollguard.policy.model import MetricNames, Policy, PrometheusSource
from rollguard.policy.sources import CustomSignalSpec
from rollguard.signals import AnySignal, Query, Version


@dataclass(frozen=True)
class Selectors:
    """Label matchers (no braces) for each version, and the metric names of the exporter."""

    stable: str
    canary: str
    names: MetricNames
    signals: Mapping[str, CustomSignalSpec[str]] = field(default_factory=dict)

    @classmethod
    def for_policy(cls, policy: Policy) -> Selectors:
        """The policy's own selectors for a Prometheus source; ``version=...`` otherwise."""
        source = policy.metrics
        if isinstance(source, PrometheusSource):
            return cls(
                promql.version_selector(source, Version.STABLE),
                promql.version_selector(source, Version.CANARY),
                source.names,
                source.signals,
            )
        names = getattr(source, "names", MetricNames())
        return cls('version="stable"', 'version="canary"', names)

    def of(self, version: Version) -> str:
        """The matcher text for one version."""
        return self.stable if version is Version.STABLE else self.canary

    def build(
        self, signal: AnySignal, version: Version, window_seconds: float, own: str | None = None
    ) -> promql.Expressions:
        """What rollguard measures for ``signal`` (or a trigger's ``own`` PromQL)."""
        query = Query(signal, version, window_seconds, own)
        return promql.for_query(
            query, names=self.names, selector=self.of(version), signals=self.signals
        )

    def expr(
        self, signal: AnySignal, version: Version, window_seconds: float, own: str | None = None
    ) -> str:
        """Just the value's expression."""
        return self.build(signal, version, window_seconds, own).value
