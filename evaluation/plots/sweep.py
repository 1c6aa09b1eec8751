"""Figures of noise sweeps, drawn on ``matplotlib.figure.Figure`` objects (no pyplot state).

Figures are built without :mod:`matplotlib.pyplot`, so plotting works headless and from threads
whatever backend is configured, and nothing is left open in a global figure registry.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from agents.atomic import atomic_write_bytes
from evaluation.sweep_result import SweepResult
from noise_envs._checks import check_choice
from noise_envs.registration import task_class

__all__ = ["metric_bounds", "plot_sweep", "save_figure"]


def plot_sweep(
    results: Mapping[str, SweepResult],
    *,
    metric: str | None = None,
    train_sigma: Mapping[str, float] | float | None = None,
    ax: Axes | None = None,
    log_y: bool | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Metric against test noise: one curve per label with its confidence band.

    Each curve is the per-level mean with a shaded ``confidence`` interval of the mean (normal
    approximation, see :meth:`~evaluation.sweep_result.SweepResult.summary`); a star marks its
    best level sigma*. A dashed vertical line marks each distinct training sigma, in the curve's
    colour when one curve has it, grey when several share it. The legend explains the band, the
    star and the dashed lines.

    Args:
        results: sweeps by label, e.g. ``{"noise in, sigma 0.3": result}``.
        metric: the metric to plot (the first result's primary metric by default).
        train_sigma: training noise by label, or one level for every curve.
        ax: axes to draw on; a new figure is made when None.
        log_y: log-scale the y axis; None (the default) chooses: linear for a bounded metric (the
            task's :class:`~noise_envs.core.Metric` declares ``bounds``: success, path
            efficiency) and for higher-is-better ones, log for errors (lower is better) whose
            means are all > 0. True with a mean <= 0 falls back to linear with a warning.
        confidence: coverage of the bands.

    Returns:
        The figure holding ``ax``.
    """
    if not results:
        raise ValueError("`results` must hold at least one SweepResult")
    if ax is None:
        ax = Figure(figsize=(6.0, 4.0), layout="constrained").add_subplot()
    first = next(iter(results.values()))
    name = first.resolve_metric(metric)
    colors, positive = {}, True
    for label, result in results.items():
        summary = result.summary(name, confidence)
        (line,) = ax.plot(summary.levels, summary.mean, marker="o", markersize=3, label=label)
        colors[label] = line.get_color()
        ax.fill_between(
            summary.levels, summary.ci_low, summary.ci_high, color=colors[label], alpha=0.2
        )
        best = result.best_index(name)
        ax.plot(summary.levels[best], summary.mean[best], "*", color=colors[label], markersize=12)
        positive &= bool((summary.mean > 0).all())
    _draw_train_sigma(ax, _train_sigma_lines(train_sigma, colors))
    _add_legend_keys(ax, confidence)
    use_log = _default_log_y(first, name) if log_y is None else log_y
    if log_y and not positive:
        warnings.warn(
            f"`log_y` ignored: some means of {name!r} are <= 0; pass log_y=False to silence this",
            UserWarning,
            stacklevel=2,
        )
    _label_axes(ax, results, name, use_log and positive)
    return ax.figure


def metric_bounds(task_id: str, metric: str) -> tuple[float, float] | None:
    """The ``bounds`` the task ``task_id`` declares for ``metric``; None if unbounded or unknown."""
    try:
        declared = task_class(task_id).metrics
    except ValueError:
        return None
    return next((m.bounds for m in declared if m.name == metric), None)


def _default_log_y(result: SweepResult, metric: str) -> bool:
    """Log scale for unbounded errors (lower is better), linear for the rest."""
    if metric_bounds(result.task_id, metric) is not None:
        return False
    return not result.higher_is_better(metric)


def _train_sigma_lines(
    train_sigma: Mapping[str, float] | float | None, colors: Mapping[str, str]
) -> dict[float, str]:
    """One colour per distinct training sigma: its curve's if only one curve has it, else grey."""
    if train_sigma is None:
        return {}
    if not isinstance(train_sigma, Mapping):
        return {float(train_sigma): "0.4"}
    by_sigma: dict[float, list[str]] = {}
    for label, sigma in train_sigma.items():
        if label in colors:
            by_sigma.setdefault(float(sigma), []).append(colors[label])
    return {sigma: found[0] if len(found) == 1 else "0.4" for sigma, found in by_sigma.items()}


def _draw_train_sigma(ax: Axes, lines: Mapping[float, str]) -> None:
    for sigma, color in sorted(lines.items()):
        label = rf"dashed: training noise $\sigma$ = {sigma:g}"
        ax.axvline(sigma, color=color, linestyle="--", linewidth=1, label=label)


def _add_legend_keys(ax: Axes, confidence: float) -> None:
    """Legend entries for the star and the band, which every curve draws in its own colour."""
    ax.plot([], [], "*", color="0.3", markersize=10, label=r"star: best level $\sigma^*$")
    ax.fill_between(
        [], [], [], color="0.3", alpha=0.2, label=f"band: {confidence:.0%} CI of the mean"
    )


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Save ``fig`` atomically, in the format named by the file's extension (``.png``, ``.pdf``…).

    The figure is drawn into memory and written with
    :func:`~agents.atomic.atomic_write_bytes`, so a reader never sees half a file.
    """
    path = Path(path)
    file_format = check_choice(
        "path extension", path.suffix.lstrip(".").lower(), fig.canvas.get_supported_filetypes()
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format=file_format, dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _label_axes(ax: Axes, results: Mapping[str, SweepResult], metric: str, log_y: bool) -> None:
    """Axis labels (with units), title, scale and legend."""
    first = next(iter(results.values()))
    direction = "higher" if first.higher_is_better(metric) else "lower"
    ax.set_xlabel(r"test noise $\sigma$ (per-step std)")
    ax.set_ylabel(f"{metric} ({direction} is better)")
    task_ids = list(dict.fromkeys(result.task_id for result in results.values()))
    ax.set_title(", ".join(task_ids), fontsize="medium")
    if log_y:
        ax.set_yscale("log")
    ax.legend(fontsize="x-small")
