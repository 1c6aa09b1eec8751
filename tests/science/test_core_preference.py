"""Scientific regression tests of the core claim, on tiny networks trained inside the test.

Noise-in CTRNNs trained at sigma do best near sigma and much worse at zero; noise-out CTRNNs do
best at (nearly) zero. And the single-neuron regulator's noise-induced shift of its stationary
mean output is what the closed-form mean field predicts.
"""

import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from evaluation import preference, sweep_noise
from evaluation.demo import PlacementComparison, PlacementConfig, demo_verdicts
from evaluation.mechanism.mean_field import mean_field_state
from evaluation.mechanism.stationary import simulate_stationary_mean
from noise_envs import make_task

pytestmark = pytest.mark.science


@pytest.mark.parametrize("seed", [0, 1])
def test_function_approximation_noise_in_prefers_its_training_noise(seed, trained_function_approx):
    config = PlacementConfig(hidden_size=32, iterations=400, batch_size=64, episodes=128, seed=seed)
    task = make_task(config.task)
    models = {f"noise-{p}": trained_function_approx(p, seed) for p in ("in", "out")}
    sweeps = {
        label: sweep_noise(model, task, config.levels, episodes=config.episodes, seed=seed)
        for label, model in models.items()
    }
    preferences = {label: preference(result, seed=seed) for label, result in sweeps.items()}
    comparison = PlacementComparison(config, models, sweeps, preferences)
    noise_in, noise_out = preferences["noise-in"], preferences["noise-out"]

    assert 0.5 * config.sigma <= noise_in.sigma_star <= 1.5 * config.sigma, comparison.table()
    assert noise_in.ratio >= 2.0, comparison.table()
    assert noise_in.significant, comparison.table()
    assert noise_out.sigma_star <= 0.25 * config.sigma, comparison.table()
    assert all(ok for _, ok in demo_verdicts(comparison))


@pytest.mark.parametrize("seed", [0, 1])
def test_single_neuron_regulator_shift_matches_the_closed_form(seed):
    sigma = 1.0
    model = CTRNN(
        CTRNNConfig(input_size=1, output_size=1, hidden_size=1, dt=10.0, tau=100.0),
        generator=torch.Generator().manual_seed(seed),
    )
    task = make_task("NoisyRegulator-v0")
    config = TrainConfig(sigma=sigma, iterations=300, batch_size=64, learning_rate=1e-2, seed=seed)
    train(model, task, config, progress=False)

    setpoints = torch.linspace(0.2, 1.0, 5)[:, None]
    _, noisy = simulate_stationary_mean(
        model, setpoints, sigma, steps=3000, burn_in=300, replicas=64
    )
    _, clean = simulate_stationary_mean(model, setpoints, 0.0, steps=10, burn_in=300, replicas=1)
    simulated = (noisy - clean).double().flatten()

    shift = mean_field_state(model, setpoints, sigma) - mean_field_state(model, setpoints, 0.0)
    predicted = (shift @ model.W_out.detach().double().T).flatten()

    scale = predicted.abs().max()
    assert scale > 0.02, f"the trained neuron shows no noise-induced shift: {predicted.tolist()}"
    largest = predicted.abs().argmax()
    assert abs(simulated[largest] - predicted[largest]) <= 0.1 * scale, (simulated, predicted)
    assert (simulated - predicted).abs().max() <= 0.1 * scale, (simulated, predicted)
