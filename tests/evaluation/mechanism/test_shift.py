"""Tests of the noise-induced shift and the output bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig
from agents.rollout import rollout
from evaluation.mechanism.gaussian import gaussian_relu_mean
from evaluation.mechanism.shift import noise_shift, output_bias
from evaluation.sweep import sweep_noise
from noise_envs import FunctionApproxTask, make_task
from noise_envs.random import RandomSource

BETA = 0.5


class ShiftedOracle:
    """Outputs target + BETA * sigma + sigma * eps: bias^2 = BETA^2 sigma^2, Var = sigma^2."""

    def __init__(self, task):
        self.task = task

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, 1, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        sigma = torch.as_tensor(sigma, dtype=obs.dtype).expand(obs.shape[0])[:, None]
        eps = noise.normal(obs.shape[0], 1)
        return self.task.target_of(obs) + BETA * sigma + sigma * eps, state


@pytest.fixture
def task():
    return FunctionApproxTask(steps=6, response_steps=3)


def test_output_bias_of_a_known_policy(task):
    """bias and mean error BETA^2 sigma^2, variance sigma^2, mse their sum; level 0 is added."""
    levels = np.array([0.5, 1.0])
    result = output_bias(ShiftedOracle(task), task, levels, episodes=64, replicas=16, seed=1)
    assert result.levels.tolist() == [0.0, 0.5, 1.0]
    expected_bias = BETA**2 * np.array([0.0, 0.25, 1.0])
    assert np.allclose(result.bias, expected_bias, atol=0.01)
    assert np.allclose(result.mean_error, expected_bias, atol=0.01)
    assert np.allclose(result.variance, [0.0, 0.25, 1.0], rtol=0.05)
    assert np.allclose(result.mse, result.mean_error + result.variance)
    assert result.error_zero == pytest.approx(0.0, abs=1e-12)
    assert result.level_index(0.9) == 2


def test_output_bias_of_an_unbiased_noisy_policy_is_zero_on_average(task):
    """With BETA = 0 the replica-corrected bias estimate averages to 0, not to Var / R."""
    global BETA
    saved, BETA = BETA, 0.0
    try:
        result = output_bias(ShiftedOracle(task), task, [1.0], episodes=256, replicas=4, seed=2)
    finally:
        BETA = saved
    assert abs(result.bias[1]) < 0.02  # the uncorrected estimate would be 1 / 4


def test_output_bias_of_a_ctrnn_at_zero_noise_only(task):
    """A network tested at level 0 alone: no bias, no variance, mean error = its mse."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=4))
    result = output_bias(model, task, [0.0], episodes=8, replicas=2)
    assert result.levels.tolist() == [0.0]
    assert result.bias.tolist() == [0.0]
    assert result.variance.tolist() == [0.0]
    assert result.mean_error[0] > 0


def _task_mse(policy, task, levels, episodes, replicas, seed):
    """The task's own per-episode teacher error, averaged per level, on output_bias's rows."""
    rows = len(levels) * replicas * episodes
    sigma = torch.as_tensor(levels, dtype=torch.float32).repeat_interleave(replicas * episodes)
    trials = RandomSource(torch.Generator().manual_seed(seed), repeats=len(levels) * replicas)
    noise = RandomSource(torch.Generator().manual_seed(seed + 1), repeats=len(levels))
    with torch.no_grad():
        state = rollout(policy, task, rows, sigma=sigma, env_rng=trials, noise=noise).state
    return state.teacher_mse.double().reshape(len(levels), -1).mean(1).numpy()


@pytest.mark.parametrize(
    "task_id", ["NoisyFunctionApprox-v0", "NoisyMaze-v0", "NoisyPathIntegration-v0"]
)
def test_output_bias_mse_is_the_tasks_own_per_episode_error(task_id):
    """mse = the mean of the task's per-episode teacher_mse (the number the sweep reports).

    Before, the maze's mse pooled steps over episodes of different lengths and averaged the
    targets over replicas that walked different paths: 0.171 at sigma 1 against the sweep's 0.514.
    """
    task = make_task(task_id)
    torch.manual_seed(0)
    model = CTRNN(CTRNNConfig(input_size=task.obs_size, output_size=task.action_size))
    levels = [0.0, 0.5, 1.5]
    result = output_bias(model, task, levels, episodes=16, replicas=3, seed=4)
    assert result.closed_loop == (not task.open_loop)
    assert np.allclose(result.mse, _task_mse(model, task, levels, 16, 3, 4), rtol=1e-6)
    if task.open_loop:
        assert np.allclose(result.mse, result.mean_error + result.variance)
    else:  # replicas of one episode meet different targets: no shared-target decomposition
        assert np.isnan(result.bias).all() and np.isnan(result.mean_error).all()
        assert np.isnan(result.variance).all()
    assert result.error_zero == pytest.approx(result.mse[0])


def test_output_bias_mse_agrees_with_the_maze_sweep():
    """On the closed-loop maze, analysis and sweep measure the same oracle_mse within noise."""
    task = make_task("NoisyMaze-v0")
    torch.manual_seed(1)
    model = CTRNN(CTRNNConfig(input_size=8, output_size=2, hidden_size=16, placement="out"))
    levels = [0.0, 1.0, 2.0]
    result = output_bias(model, task, levels, episodes=128, replicas=2, seed=0)
    summary = sweep_noise(model, task, levels, episodes=256, seed=5).summary("oracle_mse")
    # output_bias has 128 episodes (replicas of one episode are not independent): 2x the sem
    tolerance = 4.0 * np.sqrt(summary.sem**2 + (2.0 * summary.sem) ** 2)
    assert np.all(np.abs(result.mse - summary.mean) < tolerance), (result.mse, summary.mean)
    assert np.argmin(result.mse) == np.argmin(summary.mean)


def test_output_bias_validation(task):
    with pytest.raises(ValueError, match="`replicas` must be >= 2, got 1"):
        output_bias(ShiftedOracle(task), task, [0.5], replicas=1)
    with pytest.raises(ValueError, match="`episodes` must be an integer >= 1"):
        output_bias(ShiftedOracle(task), task, [0.5], episodes=0)


def test_noise_shift_of_uncoupled_units():
    """W = 0: the simulated shift, both predictions and the closed form E[relu(c + s xi)] agree."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=2, dt=50.0))
    with torch.no_grad():
        model.W.zero_()
        model.U.copy_(torch.tensor([[1.0], [-1.0]]))
        model.b.zero_()
        model.W_out.fill_(1.0)
        model.b_out.zero_()
    inputs = torch.tensor([[0.0], [0.3]])
    shift = noise_shift(model, inputs, [0.0, 0.5], steps=300, burn_in=20, replicas=32)
    c = inputs @ model.U.T.detach()
    expected = gaussian_relu_mean(c, 0.5).sum(-1) - torch.relu(c).sum(-1)
    assert torch.allclose(
        shift.predicted_output_mean[1, :, 0] - shift.predicted_output_mean[0, :, 0], expected
    )
    assert torch.allclose(shift.plain_output_mean, shift.predicted_output_mean)
    measured = shift.output_shift()[1, :, 0]
    assert torch.allclose(measured, expected, atol=4 * float(shift.simulated.output_sem.max()))
    assert shift.predicted_state_mean.shape == (2, 2, 2)


def test_failed_prediction_warns_and_gives_nan():
    """An unstable network has no mean-field prediction: NaN, with a warning."""
    model = CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=1, dt=10.0))
    with torch.no_grad():
        model.W.fill_(1.05)
        model.U.zero_()
        model.b.fill_(0.1)
    with pytest.warns(UserWarning, match="no mean-field prediction at sigma=0"):
        shift = noise_shift(model, torch.zeros(1, 1), [0.0], steps=5, burn_in=0, replicas=2)
    assert torch.isnan(shift.predicted_output_mean).all()
