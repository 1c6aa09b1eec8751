"""Scientific regression test of noise preference on 2-D path integration, on tiny networks.

The core claim (tests/science/test_core_preference.py): noise-in CTRNNs trained at sigma do best
near sigma and clearly worse at zero; noise-out CTRNNs do best at (nearly) zero. Both networks
here are trained inside the test with the core demo's recipe (32 relu units, dt/tau = 0.2,
sigma = 0.5, Adam 3e-3, batch 64, 400 iterations) on 20-step episodes, within the time budget.

What we found: noise-out prefers zero noise, as claimed, but so does noise-in: its position_mse
is lowest at zero test noise (0.00089; sigma* = 0 with a bootstrap interval [0, 0]) and rises with
the test noise. The same held with 600 iterations, with sigma = 1, and for a 128-unit network on
100-step episodes (1000 iterations). The test asserts that measured direction, so a change in it
is noticed.
"""

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from evaluation import preference, preference_table, sweep_noise
from noise_envs import make_task

pytestmark = pytest.mark.science

SIGMA = 0.5
LEVELS = np.linspace(0.0, 2.0 * SIGMA, 9)


@pytest.fixture(scope="module")
def preferences():
    """Preference on position_mse of a noise-in and a noise-out network, trained at SIGMA."""
    task = make_task("NoisyPathIntegration-v0", steps=20)
    found = {}
    for placement in ("in", "out"):
        config = CTRNNConfig(
            input_size=task.obs_size,
            output_size=task.action_size,
            hidden_size=32,
            placement=placement,
            dt=20.0,
            tau=100.0,
        )
        model = CTRNN(config, generator=torch.Generator().manual_seed(0))
        training = TrainConfig(sigma=SIGMA, iterations=400, batch_size=64, seed=0)
        train(model, task, training, progress=False)
        sweep = sweep_noise(model, task, LEVELS, episodes=128, seed=0)
        found[f"noise-{placement}"] = preference(sweep, seed=0)
    return found


def table(preferences):
    return preference_table(preferences, dict.fromkeys(preferences, SIGMA))


def test_noise_out_prefers_zero_noise(preferences):
    noise_out = preferences["noise-out"]
    assert noise_out.metric == "position_mse"
    assert noise_out.sigma_star <= 0.25 * SIGMA, table(preferences)


def test_noise_in_does_not_prefer_noise_at_this_size(preferences):
    """The measured direction (see the module docstring): no noise preference on this task yet.

    If this starts to fail because noise-in networks now prefer their training noise, the claim
    holds here after all: replace this test by the core assertion.
    """
    noise_in = preferences["noise-in"]
    assert noise_in.sigma_star <= 0.25 * SIGMA, table(preferences)
