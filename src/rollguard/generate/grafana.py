"""A Grafana dashboard generated from a policy, built with Grafana's own model.

``grafana-foundation-sdk`` holds Grafana's dashboard schema as typed Python
builders, so a dashboard that builds is a dashboard Grafana's model accepts.
Panels show the three signals done right (the error rate as a ratio,
p95 latency and memory against the baseline and the trigger's limit), stable
and canary side by side, over the same windows the triggers use. rollguard's
decisions and rollbacks, read from its own metrics, are annotations.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import AnnotationQuery as AnnotationQueryModel
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableOption,
)

from rollguard.generate import own_metrics
from rollguard.generate.selectors import Selectors
from rollguard.generate.source import PolicySource
from rollguard.policy.triggers import Trigger
from rollguard.policy.units import Comparison
from rollguard.promql import duration, series
from rollguard.signals import Signal, Version

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_UNIT = {
    Signal.ERROR_RATE_PERCENT: "percent",
    Signal.LATENCY_P95_MS: "ms",
    Signal.MEMORY_MB: "decmbytes",
}
_TITLE = {
    Signal.ERROR_RATE_PERCENT: "Error rate (5xx / all requests)",
    Signal.LATENCY_P95_MS: "p95 latency",
    Signal.MEMORY_MB: "Memory (resident)",
}


def _trigger_for(source: PolicySource, signal: Signal) -> Trigger | None:
    return next((rule for rule in source.policy.rules if rule.signal is signal), None)


def _window_seconds(source: PolicySource, signal: Signal) -> float:
    """The trigger's window, so a panel shows what the trigger judges; 5 minutes without one."""
    rule = _trigger_for(source, signal)
    return rule.window_seconds if rule else 300.0


def _query(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def _steps(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def limit_of(source: PolicySource, rule: Trigger) -> float | None:
    """The value the canary must stay under, when it does not depend on live stable data."""
    if rule.threshold.comparison is Comparison.ABOVE:
        return rule.threshold.value
    reference = source.baseline_value(rule)
    return None if reference is None else rule.threshold.limit(reference)


def error_rate_stat(source: PolicySource, version: Version, selectors: Selectors) -> stat.Panel:
    """The error-rate stat, as a ratio: green, yellow from the recovery level, red at the limit."""
    rule = _trigger_for(source, Signal.ERROR_RATE_PERCENT)
    red = limit_of(source, rule) if rule else None
    seconds = _window_seconds(source, Signal.ERROR_RATE_PERCENT)
    window = duration(seconds)
    expr = selectors.expr(Signal.ERROR_RATE_PERCENT, version, seconds)
    return (
        stat.Panel()
        .title(f"Error rate, {version.value}")
        .description(f"100 * 5xx / all requests over {window}.")
        .datasource(DATASOURCE)
        .with_target(_query(expr, f"{version.value} error rate %", "A"))
        .unit("percent")
        .decimals(2)
        .no_value("no data")
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(
            _steps(
                (None, "green"),
                (source.policy.rollback.recovered_below_error_rate_percent, "yellow"),
                (red if red is not None else 5.0, "red"),
            )
        )
        .height(5)
        .span(6)
    )


def side_by_side(source: PolicySource, signal: Signal, selectors: Selectors) -> timeseries.Panel:
    """Stable and canary on one graph, with the baseline and the trigger's limit as lines."""
    seconds = _window_seconds(source, signal)
    window = duration(seconds)
    panel = (
        timeseries.Panel()
        .title(f"{_TITLE[signal]}: stable vs canary")
        .datasource(DATASOURCE)
        .unit(_UNIT[signal])
        .with_target(_query(selectors.expr(signal, Version.STABLE, seconds), "stable", "A"))
        .with_target(_query(selectors.expr(signal, Version.CANARY, seconds), "canary", "B"))
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .line_width(2)
        .height(8)
        .span(8)
    )
    baseline = source.baseline.value_for(signal) if source.baseline else None
    if baseline is not None:
        panel = panel.with_target(_query(f"vector({baseline:g})", "baseline", "C"))
    rule = _trigger_for(source, signal)
    limit = limit_of(source, rule) if rule else None
    description = f"Measured over {window}, as the trigger does."
    if limit is not None:
        panel = panel.thresholds(_steps((None, "transparent"), (limit, "red"))).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphTresholdsStyleMode.LINE_AND_AREA
            )
        )
        description += f" Red: the limit {limit:g} above which rollguard acts."
    return panel.description(description)


def rollguard_panels(source: PolicySource) -> list[timeseries.Panel | stat.Panel]:
    """rollguard's own view: canary weight and decisions per evaluation."""
    deployment = f'deployment="{source.policy.target.deployment}"'
    weight = (
        stat.Panel()
        .title("Canary traffic weight (rollguard)")
        .datasource(DATASOURCE)
        .with_target(_query(series(own_metrics.CANARY_WEIGHT, deployment), "canary %", "A"))
        .unit("percent")
        .min(0)
        .max(100)
        .no_value("not watched")
        .thresholds(_steps((None, "blue")))
        .height(5)
        .span(6)
    )
    decisions = (
        timeseries.Panel()
        .title("rollguard decisions by action")
        .datasource(DATASOURCE)
        .with_target(
            _query(
                f"sum by (action) (increase({series(own_metrics.DECISIONS, deployment)}[5m]))",
                "{{action}}",
                "A",
            )
        )
        .unit("short")
        .height(8)
        .span(12)
    )
    signals = (
        timeseries.Panel()
        .title("Signals as rollguard measured them")
        .datasource(DATASOURCE)
        .with_target(
            _query(series(own_metrics.SIGNAL_VALUE, deployment), "{{signal}} {{version}}", "A")
        )
        .height(8)
        .span(12)
    )
    return [weight, decisions, signals]


def _annotations(source: PolicySource) -> list[Builder[AnnotationQueryModel]]:
    deployment = f'deployment="{source.policy.target.deployment}"'
    decided = series(own_metrics.DECISIONS, deployment, 'action!="continue"')
    rolled_back = series(own_metrics.ROLLBACKS, deployment)
    return [
        dash.AnnotationQuery()
        .name("rollguard decisions")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("orange")
        .expr(f"sum by (action, trigger) (increase({decided}[1m])) > 0"),
        dash.AnnotationQuery()
        .name("rollguard rollbacks")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr(f"sum by (action, trigger) (increase({rolled_back}[1m])) > 0"),
    ]


def dashboard(source: PolicySource) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    policy = source.policy
    selectors = Selectors.for_policy(policy)
    datasource = (
        dash.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(VariableOption(selected=True, text="Prometheus", value="prometheus"))
    )
    builder = (
        dash.Dashboard(f"rollguard: {policy.target.deployment}")
        .uid(f"rollguard-{policy.name}"[:40])
        .description(f"Generated by `rollguard generate grafana` from policy {policy.name!r}.")
        .tags(["rollguard", policy.target.deployment])
        .time("now-1h", "now")
        .refresh("10s")
        .with_variable(datasource)
        .annotations(_annotations(source))
    )
    builder = builder.with_row(dash.Row("Now"))
    for version in (Version.STABLE, Version.CANARY):
        builder = builder.with_panel(error_rate_stat(source, version, selectors))
    own = rollguard_panels(source)
    builder = builder.with_panel(own[0])
    builder = builder.with_row(dash.Row("Stable vs canary"))
    for signal in (Signal.ERROR_RATE_PERCENT, Signal.LATENCY_P95_MS, Signal.MEMORY_MB):
        builder = builder.with_panel(side_by_side(source, signal, selectors))
    builder = builder.with_row(dash.Row("rollguard"))
    for panel in own[1:]:
        builder = builder.with_panel(panel)
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for annotation in model.get("annotations", {}).get("list", []):
        # Grafana's Prometheus annotation options, which the generic model does not type.
        annotation.update(step="60s", titleFormat="{{action}}", tagKeys="action,trigger")
        annotation["textFormat"] = "rollguard: {{action}} because of {{trigger}}"
    return model


def render(model: dict[str, Any]) -> str:
    """Indented JSON, ready to import into Grafana or provision from a file."""
    return json.dumps(model, indent=2, sort_keys=False) + "\n"
