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

__all__ = ["plot_sweep", "save_figure"]


def plot_sweep(
    results: Mapping[str, SweepResult],
    *,
    metric: str | None = None,
    train_sigma: Mapping[str, float] | float | None = None,
    ax: Axes | None = None,
    log_y: bool = True,
    confidence: float = 0.95,
) -> Figure:
    """Metric against test noise: one curve per label with its confidence band.

    Each curve is the per-level mean with a shaded ``confidence`` interval (normal approximation,
    see :meth:`~evaluation.sweep_result.SweepResult.summary`); a star marks its best level sigma*, and a
    dashed vertical line in the curve's colour marks its training sigma.

    Args:
        results: sweeps by label, e.g. ``{"noise in, sigma 0.3": result}``.
        metric: the metric to plot (the first result's primary metric by default).
        train_sigma: training noise by label, or one level for every curve (drawn once, grey).
        ax: axes to draw on; a new figure is made when None.
        log_y: log-scale the y axis (ignored, with a warning, if a mean is <= 0).
        confidence: coverage of the bands.

    Returns:
        The figure holding ``ax``.
    """
    if not results:
        raise ValueError("`results` must hold at least one SweepResult")
    if ax is None:
        ax = Figure(figsize=(5.5, 3.8), layout="constrained").add_subplot()
    name = next(iter(results.values())).resolve_metric(metric)
    positive = True
    for label, result in results.items():
        summary = result.summary(name, confidence)
        (line,) = ax.plot(summary.levels, summary.mean, marker="o", markersize=3, label=label)
        color = line.get_color()
        ax.fill_between(summary.levels, summary.ci_low, summary.ci_high, color=color, alpha=0.2)
        best = result.best_index(name)
        ax.plot(summary.levels[best], summary.mean[best], "*", color=color, markersize=12)
        if isinstance(train_sigma, Mapping) and label in train_sigma:
            ax.axvline(train_sigma[label], color=color, linestyle="--", linewidth=1)
        positive &= bool((summary.mean > 0).all())
    if train_sigma is not None and not isinstance(train_sigma, Mapping):
        ax.axvline(float(train_sigma), color="0.4", linestyle="--", linewidth=1)
    _label_axes(ax, results, name, log_y and positive)
    if log_y and not positive:
        warnings.warn(
            f"`log_y` ignored: some means of {name!r} are <= 0; pass log_y=False to silence this",
            UserWarning,
            stacklevel=2,
        )
    return ax.figure


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
    """Axis labels, title, scale and legend."""
    first = next(iter(results.values()))
    direction = "higher" if first.higher_is_better(metric) else "lower"
    ax.set_xlabel(r"test noise $\sigma$")
    ax.set_ylabel(f"{metric} ({direction} is better)")
    task_ids = list(dict.fromkeys(result.task_id for result in results.values()))
    ax.set_title(", ".join(task_ids))
    if log_y:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
