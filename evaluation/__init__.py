"""Noise sweeps, the statistics of noise preference, the mechanism analysis, and their plots."""

from evaluation.analysis import AnalysisConfig, MechanismReport, analyze_model, analyze_run
from evaluation.fixed_points import FixedPoint, NoiseFreeRNN, find_fixed_points, sample_states
from evaluation.gaussian import (
    gaussian_activation_mean,
    gaussian_activation_slope,
    gaussian_activation_variance,
)
from evaluation.kink import KinkOccupancy, kink_occupancy, measure_kink_occupancy
from evaluation.maze_plots import (
    MazeTrajectories,
    draw_maze,
    maze_trajectories,
    plot_maze_trajectories,
)
from evaluation.mechanism import MeanFieldStatistics, mean_field_state, mean_field_statistics
from evaluation.mechanism_plots import (
    plot_kink_distances,
    plot_kink_occupancy,
    plot_output_bias,
    plot_stationary_mean,
)
from evaluation.plots import plot_sweep, save_figure
from evaluation.shift import NoiseShift, OutputBias, noise_shift, output_bias
from evaluation.single_neuron import (
    SingleNeuronPrediction,
    predict_single_neuron,
    single_neuron_stationary,
)
from evaluation.stationary import StationaryStatistics, stationary_statistics
from evaluation.stats import Preference, bootstrap_ci, preference, preference_table
from evaluation.sweep import sweep_noise
from evaluation.sweep_result import LevelSummary, SweepResult, check_levels, summary_table

__all__ = [
    "AnalysisConfig",
    "FixedPoint",
    "KinkOccupancy",
    "LevelSummary",
    "MazeTrajectories",
    "MeanFieldStatistics",
    "MechanismReport",
    "NoiseFreeRNN",
    "NoiseShift",
    "OutputBias",
    "Preference",
    "SingleNeuronPrediction",
    "StationaryStatistics",
    "SweepResult",
    "analyze_model",
    "analyze_run",
    "bootstrap_ci",
    "check_levels",
    "draw_maze",
    "find_fixed_points",
    "gaussian_activation_mean",
    "gaussian_activation_slope",
    "gaussian_activation_variance",
    "kink_occupancy",
    "maze_trajectories",
    "mean_field_state",
    "mean_field_statistics",
    "measure_kink_occupancy",
    "noise_shift",
    "output_bias",
    "plot_kink_distances",
    "plot_kink_occupancy",
    "plot_maze_trajectories",
    "plot_output_bias",
    "plot_stationary_mean",
    "plot_sweep",
    "predict_single_neuron",
    "preference",
    "preference_table",
    "sample_states",
    "save_figure",
    "single_neuron_stationary",
    "stationary_statistics",
    "summary_table",
    "sweep_noise",
]
