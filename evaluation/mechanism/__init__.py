"""Why networks prefer noise: fixed points, stationary statistics, noise-induced shifts, the kink.

- :mod:`~evaluation.mechanism.gaussian`: closed-form Gaussian expectations through the activations.
- :mod:`~evaluation.mechanism.single_neuron`: the one-unit regulator's mean field and simulation.
- :mod:`~evaluation.mechanism.mean_field`: the mean-field stationary state of a whole CTRNN.
- :mod:`~evaluation.mechanism.stationary`: simulated stationary statistics under noise.
- :mod:`~evaluation.mechanism.shift`: the noise-induced shift of the mean state and the output bias.
- :mod:`~evaluation.mechanism.kink`: how many units sit near the activation's nonlinearity.
- :mod:`~evaluation.mechanism.fixed_points`: deterministic fixed points (noise-free network).
- :mod:`~evaluation.mechanism.analysis`: all of the above for a trained run, as one report.
"""

from evaluation.mechanism.analysis import (
    AnalysisConfig,
    MechanismReport,
    analyze_model,
    analyze_run,
)
from evaluation.mechanism.fixed_points import (
    FixedPoint,
    NoiseFreeRNN,
    find_fixed_points,
    sample_states,
)
from evaluation.mechanism.gaussian import (
    gaussian_activation_mean,
    gaussian_activation_slope,
    gaussian_activation_variance,
)
from evaluation.mechanism.kink import KinkOccupancy, kink_occupancy, measure_kink_occupancy
from evaluation.mechanism.mean_field import (
    MeanFieldStatistics,
    mean_field_state,
    mean_field_statistics,
)
from evaluation.mechanism.shift import NoiseShift, OutputBias, noise_shift, output_bias
from evaluation.mechanism.single_neuron import (
    SingleNeuronPrediction,
    predict_single_neuron,
    single_neuron_stationary,
)
from evaluation.mechanism.stationary import StationaryStatistics, stationary_statistics

__all__ = [
    "AnalysisConfig",
    "FixedPoint",
    "KinkOccupancy",
    "MeanFieldStatistics",
    "MechanismReport",
    "NoiseFreeRNN",
    "NoiseShift",
    "OutputBias",
    "SingleNeuronPrediction",
    "StationaryStatistics",
    "analyze_model",
    "analyze_run",
    "find_fixed_points",
    "gaussian_activation_mean",
    "gaussian_activation_slope",
    "gaussian_activation_variance",
    "kink_occupancy",
    "mean_field_state",
    "mean_field_statistics",
    "measure_kink_occupancy",
    "noise_shift",
    "output_bias",
    "predict_single_neuron",
    "sample_states",
    "single_neuron_stationary",
    "stationary_statistics",
]
