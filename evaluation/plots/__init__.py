"""Figures: noise sweeps, maze trajectories, path-integration paths, multitask trials, mechanism.

Every figure is drawn headless (matplotlib's Agg) and written atomically by :func:`save_figure`.
"""

from evaluation.plots.maze import (
    MazeTrajectories,
    draw_maze,
    maze_trajectories,
    plot_maze_trajectories,
)
from evaluation.plots.mechanism import (
    plot_kink_distances,
    plot_kink_occupancy,
    plot_output_bias,
    plot_stationary_mean,
)
from evaluation.plots.multitask import FAMILIES, perf_by_task, plot_perf_by_task, plot_trials
from evaluation.plots.path import PathTraces, plot_paths, trace_paths
from evaluation.plots.sweep import metric_bounds, plot_sweep, save_figure

__all__ = [
    "FAMILIES",
    "MazeTrajectories",
    "PathTraces",
    "draw_maze",
    "maze_trajectories",
    "metric_bounds",
    "perf_by_task",
    "plot_kink_distances",
    "plot_kink_occupancy",
    "plot_maze_trajectories",
    "plot_output_bias",
    "plot_paths",
    "plot_perf_by_task",
    "plot_stationary_mean",
    "plot_sweep",
    "plot_trials",
    "save_figure",
    "trace_paths",
]
