"""Scientific regression test of noise preference in closed-loop maze navigation.

Two CTRNNs learn the shortest-path oracle of a fixed 3 x 3 maze by closed-loop imitation at the
same large training noise, one with the noise inside its activation, one outside. Judged by path
efficiency (the task's primary metric), the noise-in network navigates best near its training
noise and clearly worse at zero noise; the noise-out network navigates best at zero noise.

Success alone is not asserted: noise also shakes a network that is stuck against a wall loose, so
at moderate test noise even the noise-out network reaches the goal about as often as at zero.
"""

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig, TrainConfig, train
from evaluation import preference, preference_table, sweep_noise
from noise_envs import make_task

pytestmark = pytest.mark.science

SIGMA = 1.0
TASK = {"size": 3, "max_speed": 0.25, "horizon_factor": 2.0}
"""The fixed 3 x 3 maze of maze_seed 0, with a horizon of 2x its longest path (64 steps)."""


def trained_sweep(placement, seed):
    task = make_task("NoisyMaze-v0", **TASK)
    config = CTRNNConfig(
        input_size=task.obs_size,
        output_size=task.action_size,
        hidden_size=128,
        placement=placement,
        dt=20.0,
        tau=100.0,
    )
    model = CTRNN(config, generator=torch.Generator().manual_seed(seed))
    train(
        model,
        task,
        TrainConfig(sigma=SIGMA, iterations=150, batch_size=64, seed=seed),
        progress=False,
    )
    return sweep_noise(model, task, np.linspace(0.0, 2.0 * SIGMA, 9), episodes=256, seed=seed)


def test_maze_noise_in_prefers_its_training_noise_and_noise_out_zero():
    sweeps = {f"noise-{p}": trained_sweep(p, seed=0) for p in ("in", "out")}
    prefs = {label: preference(sweep, "path_efficiency") for label, sweep in sweeps.items()}
    table = preference_table(prefs, dict.fromkeys(prefs, SIGMA))
    noise_in, noise_out = prefs["noise-in"], prefs["noise-out"]

    assert 0.5 * SIGMA <= noise_in.sigma_star <= 1.5 * SIGMA, table
    assert noise_in.significant, table
    assert noise_in.ratio >= 1.3, table
    assert noise_out.sigma_star <= 0.25 * SIGMA, table
    at_train = sweeps["noise-out"].values("path_efficiency")[4].mean()  # level 4 is SIGMA
    assert noise_out.metric_at_zero >= at_train + 0.1, table
