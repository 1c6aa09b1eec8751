"""Figures of an experiment grid, per task and sweep axis (matplotlib ``Figure``s, no pyplot).

* :func:`plot_grid_curves`: the metric against test noise, one curve per training sigma, noise-in
  and noise-out side by side; mean over seeds with a 95% interval of that mean (one seed: the
  interval over episodes).
* :func:`plot_grid_heatmap`: training sigma x test noise, each row's metric relative to its best
  level (1 = best, starred).
* :func:`plot_sigma_star`: sigma* against training sigma (against the training observation noise
  for the ``env`` axis), every seed and their mean, with the identity line.

A training-noise distribution (a ``train_sigmas`` entry such as ``uniform:0,1``) is its own curve
and heat-map row, labelled by its spec and sorted at its mean; the sigma* figure places it at its
mean as its own marker, outside the fixed levels' line (the legend says "at its mean").
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from evaluation.grid.cell_run import CELL_FILE, SWEEP_FILES, read_cell
from evaluation.grid.cells import Cell
from evaluation.plots.sweep import save_figure
from evaluation.sweep_result import SweepResult

__all__ = [
    "GridSweep",
    "load_grid_sweeps",
    "plot_grid_curves",
    "plot_grid_heatmap",
    "plot_sigma_star",
    "write_grid_figures",
]

_Z95 = 1.959963984540054
_AXIS_LABEL = {
    "model": r"test noise $\sigma$ (per-step std)",
    "env": "test observation noise (std)",
}


@dataclasses.dataclass(frozen=True)
class GridSweep:
    """One done cell's sweep along one axis."""

    cell: Cell
    axis: str
    result: SweepResult
    sigma_star: float

    @property
    def metric(self) -> str:
        """The metric sigma* is judged on (the cell's, else the task's primary one)."""
        return self.result.resolve_metric(self.cell.sweep.get("metric"))

    def values(self) -> np.ndarray:
        """Per-episode values ``[L, E]`` of :attr:`metric`."""
        return self.result.values(self.metric)

    @property
    def higher_is_better(self) -> bool:
        """Whether larger values of :attr:`metric` are better."""
        return self.result.higher_is_better(self.metric)


def load_grid_sweeps(cells: Sequence[Cell], out_dir: str | Path) -> list[GridSweep]:
    """The sweeps of every done cell of ``cells`` in ``out_dir`` (cells not done are left out)."""
    found = []
    for cell in cells:
        folder = Path(out_dir) / cell.folder_name
        if not (folder / CELL_FILE).is_file() or read_cell(cell, folder) is None:
            continue
        for axis in cell.sweep["axes"]:
            result = SweepResult.from_csv(folder / SWEEP_FILES[axis])
            metric = result.resolve_metric(cell.sweep.get("metric"))
            found.append(GridSweep(cell, axis, result, result.best_level(metric)))
    return found


def _curve_key(sweep: GridSweep) -> tuple[float, str, float]:
    """Training level (a distribution's mean), training noise label, training obs noise."""
    cell = sweep.cell
    return cell.train_sigma, cell.train_noise_label, cell.train_obs_noise


def _curve_label(key: tuple[float, str, float], several_obs: bool) -> str:
    level, noise, obs = key
    label = rf"train $\sigma$ = {noise}" if noise == f"{level:g}" else f"train {noise}"
    return label + (f", obs noise {obs:g}" if several_obs else "")


def _placements(sweeps: Sequence[GridSweep]) -> list[str]:
    return [p for p in ("in", "out") if any(s.cell.placement == p for s in sweeps)]


def _seed_band(group: Sequence[GridSweep]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Levels, mean over seeds, and the 95% interval of that mean (episodes' if one seed)."""
    levels = group[0].result.levels
    if len(group) == 1:
        summary = group[0].result.summary(group[0].metric)
        return levels, summary.mean, summary.ci_low, summary.ci_high
    means = np.stack([g.values().mean(axis=1) for g in group])
    mean = means.mean(axis=0)
    half = _Z95 * means.std(axis=0, ddof=1) / math.sqrt(len(group))
    return levels, mean, mean - half, mean + half


def _groups(sweeps: Sequence[GridSweep], placement: str) -> dict[tuple[float, str, float], list]:
    groups: dict[tuple[float, str, float], list[GridSweep]] = {}
    for sweep in sweeps:
        if sweep.cell.placement == placement:
            groups.setdefault(_curve_key(sweep), []).append(sweep)
    return dict(sorted(groups.items()))


def plot_grid_curves(sweeps: Sequence[GridSweep]) -> Figure:
    """Metric against test noise, noise-in and noise-out side by side (one task, one axis)."""
    placements = _placements(sweeps)
    figure = Figure(figsize=(5.0 * len(placements), 4.0), layout="constrained")
    axes = figure.subplots(1, len(placements), sharey=True, squeeze=False)[0]
    first = sweeps[0]
    several_obs = len({s.cell.train_obs_noise for s in sweeps}) > 1
    positive = all((s.values() > 0).all() for s in sweeps)
    for ax, placement in zip(axes, placements, strict=True):
        for key, group in _groups(sweeps, placement).items():
            levels, mean, low, high = _seed_band(group)
            (line,) = ax.plot(
                levels, mean, marker="o", markersize=3, label=_curve_label(key, several_obs)
            )
            ax.fill_between(levels, low, high, color=line.get_color(), alpha=0.2)
            best = int(np.argmax(mean) if first.higher_is_better else np.argmin(mean))
            ax.plot(levels[best], mean[best], "*", color=line.get_color(), markersize=12)
            trained = key[0] if first.axis == "model" else key[2]  # dashed: the training level
            fixed = key[1] == f"{key[0]:g}"  # a distribution: dotted, at its mean
            ax.axvline(trained, color=line.get_color(), linestyle="--" if fixed else ":", lw=0.8)
        seeds = len({s.cell.seed for s in sweeps})
        ax.set_title(
            f"noise-{placement} ({seeds} seed{'s' if seeds > 1 else ''})", fontsize="medium"
        )
        ax.set_xlabel(_AXIS_LABEL[first.axis])
        if positive and not first.higher_is_better:
            ax.set_yscale("log")
        ax.legend(
            fontsize="x-small",
            title="star: best; band: 95% CI over seeds;\ndashed: training level (dotted: its mean)",
            title_fontsize="x-small",
        )
    direction = "higher" if first.higher_is_better else "lower"
    axes[0].set_ylabel(f"{first.metric} ({direction} is better)")
    figure.suptitle(f"{first.cell.label}: metric against test noise ({first.axis} axis)")
    return figure


def plot_grid_heatmap(sweeps: Sequence[GridSweep]) -> Figure:
    """Training sigma x test level, each row's mean metric over seeds relative to its best."""
    placements = _placements(sweeps)
    figure = Figure(figsize=(5.0 * len(placements), 3.6), layout="constrained")
    axes = figure.subplots(1, len(placements), squeeze=False)[0]
    higher = sweeps[0].higher_is_better
    for ax, placement in zip(axes, placements, strict=True):
        groups = _groups(sweeps, placement)
        levels = next(iter(groups.values()))[0].result.levels
        rows = np.stack([_seed_band(group)[1] for group in groups.values()])
        best = rows.max(axis=1, keepdims=True) if higher else rows.min(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = best / rows if higher else rows / best
        relative = np.where(np.isfinite(relative) & (relative > 0), relative, np.nan)
        image = ax.imshow(
            relative, aspect="auto", origin="lower", cmap="viridis_r", norm=LogNorm(vmin=1.0)
        )
        for row in range(rows.shape[0]):
            column = int(np.nanargmin(relative[row]))
            ax.plot(column, row, "*", color="white", markersize=10, markeredgecolor="black")
        ax.set_xticks(range(levels.size), [f"{x:g}" for x in levels], fontsize="x-small")
        ax.set_yticks(range(len(groups)), [k[1] for k in groups], fontsize="x-small")
        ax.set_xlabel(_AXIS_LABEL[sweeps[0].axis])
        ax.set_ylabel(r"training $\sigma$")
        ax.set_title(f"noise-{placement}", fontsize="medium")
        figure.colorbar(image, ax=ax, label="metric / best of its row (1 = best, star)")
    figure.suptitle(f"{sweeps[0].cell.label}: training x test noise ({sweeps[0].axis} axis)")
    return figure


def plot_sigma_star(sweeps: Sequence[GridSweep]) -> Figure:
    """sigma* against the training level, every seed and their mean, with the identity line.

    On the ``model`` axis a training-noise distribution is drawn at its mean, one marker per
    distribution, and left out of the fixed levels' mean line.
    """
    figure = Figure(figsize=(5.0, 4.0), layout="constrained")
    ax = figure.add_subplot()
    env = sweeps[0].axis == "env"
    trained = [(s.cell.train_obs_noise if env else s.cell.train_sigma) for s in sweeps]
    top = max([*trained, *(s.sigma_star for s in sweeps)]) or 1.0
    ax.plot([0, top], [0, top], color="0.5", linestyle=":", label="identity: sigma* = training")
    for offset, placement in zip((-0.01, 0.01), _placements(sweeps), strict=False):
        mine = [s for s in sweeps if s.cell.placement == placement]
        if not env:
            _plot_distributions(ax, [s for s in mine if not _is_fixed(s)], placement)
            mine = [s for s in mine if _is_fixed(s)]
            if not mine:
                continue
        xs = np.array([(s.cell.train_obs_noise if env else s.cell.train_sigma) for s in mine])
        ys = np.array([s.sigma_star for s in mine])
        (points,) = ax.plot(
            xs + offset * top, ys, "o", alpha=0.4, label=f"noise-{placement}, each seed"
        )
        unique = np.unique(xs)
        ax.plot(unique, [ys[xs == x].mean() for x in unique], "-", color=points.get_color(),
                label=f"noise-{placement}, mean over seeds")  # fmt: skip
    ax.set_xlabel("training observation noise" if env else r"training $\sigma$")
    ax.set_ylabel(r"best test level $\sigma^*$")
    ax.set_title(f"{sweeps[0].cell.label}: sigma* against training noise ({sweeps[0].axis} axis)",
                 fontsize="medium")  # fmt: skip
    ax.legend(fontsize="x-small")
    return figure


def _is_fixed(sweep: GridSweep) -> bool:
    return sweep.cell.train_noise.kind == "fixed"


def _plot_distributions(ax: Axes, sweeps: Sequence[GridSweep], placement: str) -> None:
    """Each distribution's sigma* (every seed), at the distribution's mean level."""
    labels = dict.fromkeys(s.cell.train_noise_label for s in sweeps)
    for label, marker in zip(labels, itertools.cycle("DsP^v"), strict=False):
        mine = [s for s in sweeps if s.cell.train_noise_label == label]
        ax.plot(
            [s.cell.train_sigma for s in mine],
            [s.sigma_star for s in mine],
            marker,
            alpha=0.6,
            label=f"noise-{placement}, {label} (at its mean)",
        )


def write_grid_figures(cells: Sequence[Cell], out_dir: str | Path) -> list[Path]:
    """Draw the three figures of every task and axis into ``out_dir``; the paths written.

    Names: ``<task>-<axis>-curves.png``, ``-heatmap.png``, ``-sigma_star.png``.
    """
    out_dir = Path(out_dir)
    sweeps = load_grid_sweeps(cells, out_dir)
    keys = dict.fromkeys((s.cell.label, s.axis) for s in sweeps)
    written = []
    for label, axis in keys:
        mine = [s for s in sweeps if (s.cell.label, s.axis) == (label, axis)]
        for name, plot in (
            ("curves", plot_grid_curves),
            ("heatmap", plot_grid_heatmap),
            ("sigma_star", plot_sigma_star),
        ):
            written.append(save_figure(plot(mine), out_dir / f"{label}-{axis}-{name}.png"))
    return written
