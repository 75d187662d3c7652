"""A picture of a backtest for people: the series, the limits, the evidence, the decision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rollguard.controller.backtest import BacktestResult
from rollguard.errors import InputError, UsageError
from rollguard.metrics import series
from rollguard.metrics.recording import Row
from rollguard.metrics.replay import ReplayProvider
from rollguard.policy.units import Comparison
from rollguard.signals import Signal, Version

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_format(path: Path) -> str:
    """The image format ``path``'s suffix names (PNG without one); UsageError if unknown.

    Checked before the backtest runs, and passed to matplotlib explicitly: left to
    itself, matplotlib appends ``.png`` to a path without a suffix.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = path.suffix.removeprefix(".").lower()
    if not suffix:
        return "png"
    known = sorted(FigureCanvasAgg.get_supported_filetypes())
    if suffix not in known:
        raise UsageError(
            f"--plot {path}: unknown image format {suffix!r}; "
            f"use a name ending in one of .{', .'.join(known)} (or no suffix for PNG)"
        )
    return suffix


def plot_backtest(result: BacktestResult, provider: ReplayProvider, path: Path) -> None:
    """Write :func:`backtest_figure` at exactly ``path``; the suffix picks the format."""
    image_format = plot_format(path)
    import matplotlib.pyplot as plt

    fig = backtest_figure(result, provider)
    try:
        fig.savefig(path, format=image_format, dpi=100)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the plot: {exc.strerror}") from exc
    except RuntimeError as exc:  # pgf without a LaTeX installed
        raise UsageError(f"--plot {path}: cannot write {image_format}: {exc}") from exc
    finally:
        plt.close(fig)


def backtest_figure(result: BacktestResult, provider: ReplayProvider) -> Figure:
    """Error rate and p95 latency per version against the threshold rules' limits, the
    sequential tests' e-values against 1/alpha (a panel only when the policy has such a
    test), and the first action. The x-axis is the recording's own time, so the picture
    and the text name the same moments.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Seconds as the CSV gives them; RFC 3339 recordings count from their first row.
    offset = provider.start if result.rfc3339 else 0.0
    evidence = _evidence(result, offset)
    fig, axes = plt.subplots(
        3 if evidence else 2, 1, figsize=(10, 9 if evidence else 6.5), sharex=True
    )
    errors_ax, latency_ax = axes[0], axes[1]
    for version, colour in ((Version.STABLE, "tab:blue"), (Version.CANARY, "tab:red")):
        rows = [r for r in provider.rows if r.version == version]
        times = [r.time - offset for r in rows]
        rates = [100 * r.errors / r.requests if r.requests > 0 else float("nan") for r in rows]
        errors_ax.plot(times, rates, color=colour, label=f"{version.value} error rate %")
        p95 = [_p95_ms(r) for r in rows]
        latency_ax.plot(times, p95, color=colour, label=f"{version.value} p95 ms")
    panels = {Signal.ERROR_RATE_PERCENT: errors_ax, Signal.LATENCY_P95_MS: latency_ax}
    for rule in result.policy.rules:
        panel = panels.get(rule.signal) if isinstance(rule.signal, Signal) else None
        judged = rule.detection.method in ("threshold", "both")
        if panel is not None and judged and rule.threshold.comparison is Comparison.ABOVE:
            panel.axhline(
                rule.threshold.value,
                color="grey",
                linestyle="--",
                label=f"{rule.name} limit {rule.threshold.value:g}",
            )
    if evidence:
        evidence_ax = axes[2]
        for name, (xs, ys, _) in sorted(evidence.items()):
            evidence_ax.plot(xs, ys, label=f"{name} e-value")
        for bound in sorted({bound for _, _, bound in evidence.values()}):
            evidence_ax.axhline(bound, linestyle=":", color="grey", label=f"1/alpha = {bound:g}")
        evidence_ax.set_yscale("log")
    first = result.first_action
    for ax in axes:
        if first is not None:
            ax.axvline(
                first.at - offset,
                color="black",
                label=f"{first.decision.action.value} at {result.time_label(first.at)}",
            )
        ax.legend(loc="upper left", fontsize="small")
    axes[-1].set_xlabel(
        f"seconds since {result.time_label(provider.start)}"
        if result.rfc3339
        else "time in the recording (s)"
    )
    fig.suptitle(f"rollguard backtest: {result.policy.name}")
    fig.tight_layout()
    return fig


def _evidence(
    result: BacktestResult, offset: float
) -> dict[str, tuple[list[float], list[float], float]]:
    """Per sequential trigger: its e-values over time and the 1/alpha they must reach."""
    found: dict[str, tuple[list[float], list[float], float]] = {}
    for evaluation in result.evaluations:
        for item in evaluation.results:
            statistic = item.evidence.statistic
            if "e_value" not in statistic:
                continue
            xs, ys, _ = found.setdefault(item.trigger, ([], [], 0.0))
            xs.append(evaluation.at - offset)
            ys.append(statistic["e_value"])
            found[item.trigger] = (xs, ys, statistic["threshold"])
    return found


def _p95_ms(row: Row) -> float:
    """The row's p95: from its buckets when it has them, else its column (NaN if empty)."""
    if row.buckets:
        return series.histogram_quantile(0.95, dict(row.buckets)) * 1000.0
    return row.latency_p95_ms if row.latency_p95_ms is not None else float("nan")
