"""A picture of a backtest for people: the series, the limits, the evidence, the decision."""

from __future__ import annotations

from pathlib import Path

from rollguard.controller.backtest import BacktestResult
from rollguard.errors import InputError, UsageError
from rollguard.metrics import series
from rollguard.metrics.recording import Row
from rollguard.metrics.replay import ReplayProvider
from rollguard.policy.units import Comparison
from rollguard.signals import Signal, Version


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
    """Write the image at exactly ``path``: error rate and p95 latency per version,
    e-values, and the first action. The suffix picks the format (PNG without one).
    """
    image_format = plot_format(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = provider.start
    fig, (errors_ax, latency_ax, evidence_ax) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for version, colour in ((Version.STABLE, "tab:blue"), (Version.CANARY, "tab:red")):
        rows = [r for r in provider.rows if r.version == version]
        times = [r.time - start for r in rows]
        rates = [100 * r.errors / r.requests if r.requests > 0 else float("nan") for r in rows]
        errors_ax.plot(times, rates, color=colour, label=f"{version.value} error rate %")
        p95 = [_p95_ms(r) for r in rows]
        latency_ax.plot(times, p95, color=colour, label=f"{version.value} p95 ms")
    for rule in result.policy.rules:
        above = rule.threshold.comparison is Comparison.ABOVE
        if above and rule.signal is Signal.ERROR_RATE_PERCENT:
            errors_ax.axhline(rule.threshold.value, color="grey", linestyle="--", label="threshold")
    for name in {r.trigger for e in result.evaluations for r in e.results}:
        points = [
            (e.at - start, r.evidence.statistic["e_value"], r.evidence.statistic["threshold"])
            for e in result.evaluations
            for r in e.results
            if r.trigger == name and "e_value" in r.evidence.statistic
        ]
        if points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            evidence_ax.plot(xs, ys, label=f"{name} e-value")
            evidence_ax.axhline(points[-1][2], linestyle=":", color="grey")
    evidence_ax.set_yscale("log")
    first = result.first_action
    for ax in (errors_ax, latency_ax, evidence_ax):
        if first is not None:
            ax.axvline(first.at - start, color="black", label=f"{first.decision.action.value}")
        ax.legend(loc="upper left", fontsize="small")
    evidence_ax.set_xlabel("seconds since the first row")
    fig.suptitle(f"rollguard backtest: {result.policy.name}")
    fig.tight_layout()
    try:
        fig.savefig(path, format=image_format, dpi=100)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the plot: {exc.strerror}") from exc
    except RuntimeError as exc:  # pgf without a LaTeX installed
        raise UsageError(f"--plot {path}: cannot write {image_format}: {exc}") from exc
    finally:
        plt.close(fig)


def _p95_ms(row: Row) -> float:
    """The row's p95: from its buckets when it has them, else its column (NaN if empty)."""
    if row.buckets:
        return series.histogram_quantile(0.95, dict(row.buckets)) * 1000.0
    return row.latency_p95_ms if row.latency_p95_ms is not None else float("nan")
