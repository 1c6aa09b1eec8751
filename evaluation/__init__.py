"""Noise sweeps, the statistics of noise preference, and their plots."""

from evaluation.plots import plot_sweep, save_figure
from evaluation.stats import Preference, bootstrap_ci, preference, preference_table
from evaluation.sweep import LevelSummary, SweepResult, check_levels, summary_table, sweep_noise

__all__ = [
    "LevelSummary",
    "Preference",
    "SweepResult",
    "bootstrap_ci",
    "check_levels",
    "plot_sweep",
    "preference",
    "preference_table",
    "save_figure",
    "summary_table",
    "sweep_noise",
]
