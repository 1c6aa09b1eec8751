"""Tests of the noise-induced shift and the output bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.mechanism.gaussian import gaussian_relu_mean
from evaluation.mechanism.shift import noise_shift, output_bias
from noise_envs import FunctionApproxTask

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
