"""Scientific regression test of noise preference on 2-D path integration, on tiny networks.

The core claim (tests/science/test_core_preference.py): noise-in CTRNNs trained at sigma do best
near sigma and clearly worse at zero; noise-out CTRNNs do best at (nearly) zero. Here 32-unit
CTRNNs (dt/tau = 0.2, Adam 3e-3, batch 64, 400 iterations) learn 20-step paths at sigma = 1.

What we measured (position_mse, 128 episodes per level):

* tanh, sigma 1: noise-in best at 1.0 in both seeds (bootstrap intervals [1, 1] and [0.75, 1]),
  2.75x and 3.06x worse at zero, significant; noise-out best at zero. The claim holds.
* tanh, sigma 0.5: noise-in best at 0.25, only 1.07-1.09x better than at zero ("large enough
  training noise", as on the maze).
* relu: no preference. Noise-in is best at zero at sigma 0.5 and 1 (also with place-cell targets,
  speed-and-heading inputs or softplus); at sigma 2, or with 64 units at sigma 1, it is best at
  half its training noise and at most 1.37x better there than at zero. Unlike tanh, relu does not
  saturate above its kink, so units that integrate can sit in its linear range, where noise shifts
  nothing.

The tanh networks are the scientific regression test; the relu one asserts its measured direction,
so that a change in it is noticed.
"""

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from evaluation import preference, preference_table, sweep_noise
from noise_envs import make_task

pytestmark = pytest.mark.science

SIGMA = 1.0
LEVELS = np.linspace(0.0, 2.0 * SIGMA, 9)


@pytest.fixture(scope="module")
def measured():
    """``get(activation, placement, seed)``: the preference on position_mse of a trained network."""
    task = make_task("NoisyPathIntegration-v0", steps=20)
    cache = {}

    def get(activation: str, placement: str, seed: int):
        key = (activation, placement, seed)
        if key not in cache:
            config = CTRNNConfig(
                input_size=task.obs_size,
                output_size=task.action_size,
                hidden_size=32,
                activation=activation,
                placement=placement,
                dt=20.0,
                tau=100.0,
            )
            model = CTRNN(config, generator=torch.Generator().manual_seed(seed))
            training = TrainConfig(sigma=SIGMA, iterations=400, batch_size=64, seed=seed)
            train(model, task, training, progress=False)
            sweep = sweep_noise(model, task, LEVELS, episodes=128, seed=seed)
            cache[key] = preference(sweep, seed=0)
        return cache[key]

    return get


def table(label, found):
    return preference_table({label: found}, {label: SIGMA})


@pytest.mark.parametrize("seed", [0, 1])
def test_tanh_noise_in_prefers_its_training_noise(seed, measured):
    noise_in = measured("tanh", "in", seed)
    assert noise_in.metric == "position_mse"
    shown = table(f"tanh noise-in, seed {seed}", noise_in)
    assert 0.5 * SIGMA <= noise_in.sigma_star <= 1.5 * SIGMA, shown
    assert noise_in.ratio >= 2.0, shown
    assert noise_in.significant, shown


@pytest.mark.parametrize("seed", [0, 1])
def test_tanh_noise_out_prefers_zero_noise(seed, measured):
    noise_out = measured("tanh", "out", seed)
    assert noise_out.sigma_star <= 0.25 * SIGMA, table(f"tanh noise-out, seed {seed}", noise_out)


def test_relu_noise_in_does_not_prefer_its_training_noise(measured):
    """The measured direction for relu (see the module docstring): best at zero.

    If this starts to fail because relu networks now prefer their training noise too, the claim
    holds for relu on this task after all: replace this test by the tanh assertions.
    """
    noise_in = measured("relu", "in", 0)
    assert noise_in.sigma_star <= 0.25 * SIGMA, table("relu noise-in, seed 0", noise_in)
